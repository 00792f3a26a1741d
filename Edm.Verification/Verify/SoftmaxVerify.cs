// verify rows for Softmax (Edm.Kernels/Softmax.cs): the float32 op (CPU fast path or ILGPU kernel,
// whichever the device runs) against the float64 reference in Edm.Verification/References/SoftmaxReference.cs.
// Odd shapes, small enough for the ILGPU kernels on the CPU accelerator (verify --no-fast-paths);
// larger ones added on a GPU.
using Edm.Verification;
using Edm.Kernels;

namespace Edm.Verification;

/// <summary>Softmax forward and backward along the last axis.</summary>
public sealed class SoftmaxVerify : IVerifySuite
{
    /// <inheritdoc/>
    public string Family => "softmax";

    /// <inheritdoc/>
    public IEnumerable<VerifyRow> Run(EdmDevice d)
    {
        foreach (var row in Check(d, 37, 300, 8)) yield return row;
        foreach (var row in Check(d, 5, 7, 500)) yield return row; // logits up to 500: needs the max shift
        if (!d.IsCpu) foreach (var row in Check(d, 16384, 256, 8)) yield return row;
    }

    /// <summary>Softmax of (rows, cols) logits in [-range, range].</summary>
    public static IEnumerable<VerifyRow> Check(EdmDevice d, int rows, int cols, double range)
    {
        var x = Compare.Random(rows * cols, 5, -range, range);
        var gy = Compare.Random(rows * cols, 6);
        using var tx = Tensor.FromArray(d, x, rows, cols);
        using var tg = Tensor.FromArray(d, gy, rows, cols);
        using var y = Ops.Softmax(tx);
        using var dx = Ops.SoftmaxBackward(y, tg);
        var yRef = SoftmaxReference.Forward(Array.ConvertAll(x, v => (double)v), rows, cols);
        string shape = Shapes.Format([rows, cols]) + $" |x|<={range}";
        yield return Compare.Row("softmax", shape, y.ToArray(), yRef, 1e-5);
        yield return Compare.Row("softmax_backward", shape, dx.ToArray(), SoftmaxReference.Backward(yRef, Array.ConvertAll(gy, v => (double)v), rows, cols), 1e-5);
    }
}

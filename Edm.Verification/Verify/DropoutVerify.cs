// verify rows for Dropout (Edm.Kernels/Dropout.cs): the float32 op (CPU fast path or ILGPU kernel,
// whichever the device runs) against the float64 reference in Edm.Verification/References/DropoutReference.cs.
// Odd shapes, small enough for the ILGPU kernels on the CPU accelerator (verify --no-fast-paths);
// larger ones added on a GPU.
using Edm.Verification;
using Edm.Kernels;

namespace Edm.Verification;

/// <summary>Dropout forward and backward (mask from Philox).</summary>
public sealed class DropoutVerify : IVerifySuite
{
    /// <inheritdoc/>
    public string Family => "dropout";

    /// <inheritdoc/>
    public IEnumerable<VerifyRow> Run(EdmDevice d)
    {
        int n = 100003;
        var x = Compare.Random(n, 11);
        using var tx = Tensor.FromArray(d, x, n);
        using var y = Ops.Dropout(tx, 0.13f, 1234, 5);
        using var dx = Ops.DropoutBackward(tx, 0.13f, 1234, 5);
        var yRef = DropoutReference.Apply(Array.ConvertAll(x, v => (double)v), 0.13, 1234, 5);
        var got = y.ToArray();
        double kept = got.Count(v => v != 0) / (double)n;
        yield return Compare.Row("dropout", $"({n}) p=0.13", got, yRef, 1e-6, $"kept {kept:F4} (expected 0.87)");
        yield return Compare.Row("dropout_backward", $"({n}) p=0.13", dx.ToArray(), yRef, 1e-6);
    }
}

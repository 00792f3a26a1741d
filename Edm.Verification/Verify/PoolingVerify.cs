// verify rows for Pooling (Edm.Kernels/Pooling.cs): the float32 op (CPU fast path or ILGPU kernel,
// whichever the device runs) against the float64 reference in Edm.Verification/References/PoolingReference.cs.
// Odd shapes, small enough for the ILGPU kernels on the CPU accelerator (verify --no-fast-paths);
// larger ones added on a GPU.
using Edm.Verification;
using Edm.Kernels;

namespace Edm.Verification;

/// <summary>Nearest upsampling x2 and 2x2 average pooling, forward and backward.</summary>
public sealed class PoolingVerify : IVerifySuite
{
    /// <inheritdoc/>
    public string Family => "pooling";

    /// <inheritdoc/>
    public IEnumerable<VerifyRow> Run(EdmDevice d)
    {
        int n = 2, c = 33, h = 10, w = 6, p = n * c;
        var x = Compare.Random(p * h * w, 12);
        var big = Compare.Random(p * 4 * h * w, 13);
        static double[] D(float[] a) => Array.ConvertAll(a, v => (double)v);
        using var tx = Tensor.FromArray(d, x, n, c, h, w);
        using var tb = Tensor.FromArray(d, big, n, c, 2 * h, 2 * w);
        using var up = Ops.UpsampleNearest2x(tx);
        using var upB = Ops.UpsampleNearest2xBackward(tb);
        using var pool = Ops.AvgPool2x(tb);
        using var poolB = Ops.AvgPool2xBackward(tx);
        string small = Shapes.Format([n, c, h, w]), large = Shapes.Format([n, c, 2 * h, 2 * w]);
        yield return Compare.Row("upsample2x", small, up.ToArray(), PoolingReference.UpsampleNearest2x(D(x), p, h, w), 1e-7);
        yield return Compare.Row("upsample2x_backward", large, upB.ToArray(), PoolingReference.UpsampleNearest2xBackward(D(big), p, h, w), 1e-6);
        yield return Compare.Row("avgpool2x", large, pool.ToArray(), PoolingReference.AvgPool2x(D(big), p, 2 * h, 2 * w), 1e-6);
        yield return Compare.Row("avgpool2x_backward", small, poolB.ToArray(), PoolingReference.AvgPool2xBackward(D(x), p, 2 * h, 2 * w), 1e-7);
    }
}

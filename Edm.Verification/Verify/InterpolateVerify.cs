// verify rows for the bilinear resize (Edm.Kernels/Interpolate.cs) against
// References/InterpolateReference.cs: the FID input sizes (28 -> 299, 32 -> 299), downsizing, a
// 1-pixel axis, odd sizes; ILGPU-kernel rows on the CPU accelerator.
using Edm.Kernels;

namespace Edm.Verification;

/// <summary>Bilinear resize, forward and backward.</summary>
public sealed class InterpolateVerify : IVerifySuite
{
    /// <inheritdoc/>
    public string Family => "interpolate";

    /// <inheritdoc/>
    public IEnumerable<VerifyRow> Run(EdmDevice d)
    {
        foreach (var (n, c, h, w, oh, ow) in new[] { (2, 3, 28, 28, 299, 299), (1, 3, 32, 32, 299, 299), (2, 5, 17, 13, 7, 9), (2, 2, 1, 6, 5, 3) })
            foreach (var r in Rows(d, n, c, h, w, oh, ow, "")) yield return r;
        if (d.IsCpu)
        {
            var keep = d.CpuFastPaths;
            d.CpuFastPaths = false;
            try
            {
                foreach (var (n, c, h, w, oh, ow) in new[] { (1, 2, 7, 5, 23, 19), (1, 2, 13, 11, 4, 6) })
                    foreach (var r in Rows(d, n, c, h, w, oh, ow, " kernel")) yield return r;
            }
            finally { d.CpuFastPaths = keep; }
        }
    }

    /// <summary>Forward and backward rows of one resize.</summary>
    public static IEnumerable<VerifyRow> Rows(EdmDevice d, int n, int c, int h, int w, int oh, int ow, string tag)
    {
        int planes = n * c;
        var x = Compare.Random(planes * h * w, 81);
        var dy = Compare.Random(planes * oh * ow, 82);
        static double[] D(float[] a) => Array.ConvertAll(a, v => (double)v);
        using var tx = Tensor.FromArray(d, x, n, c, h, w);
        using var tdy = Tensor.FromArray(d, dy, n, c, oh, ow);
        string shape = $"{tx.ShapeString} -> ({oh}, {ow})";
        using var y = Ops.InterpolateBilinear(tx, oh, ow);
        using var dx = Ops.InterpolateBilinearBackward(tdy, h, w);
        // dx sums about (oh/h)(ow/w) terms per input.
        double fan = Math.Max(1.0, (double)oh / h) * Math.Max(1.0, (double)ow / w);
        yield return Compare.Row("bilinear" + tag, shape, y.ToArray(), InterpolateReference.Forward(D(x), planes, h, w, oh, ow), 1e-6);
        yield return Compare.Row("bilinear backward" + tag, shape, dx.ToArray(), InterpolateReference.Backward(D(dy), planes, h, w, oh, ow), 1e-6 * fan);
    }
}

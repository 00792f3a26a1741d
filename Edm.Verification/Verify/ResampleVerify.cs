// verify rows for EDM's FIR resampling (networks.py Conv2d up/down): FirDownsample2d,
// FirUpsample2d and their backward passes with filters [1, 1] and [1, 3, 3, 1], and the composite
// ResampleConv2d (sequential and fused) forward, against ResampleReference (float64).
using Edm.Verification;
using Edm.Kernels;

namespace Edm.Verification;

/// <summary>Checks of the FIR resampling kernels.</summary>
public sealed class ResampleVerify : IVerifySuite
{
    /// <inheritdoc/>
    public string Family => "resample";

    const double Tol = 1e-5;

    /// <inheritdoc/>
    public IEnumerable<VerifyRow> Run(EdmDevice d)
    {
        foreach (var f in new[] { new float[] { 1, 1 }, [1, 3, 3, 1] })
        {
            yield return Down(d, f, 2, 5, 17, 13);
            yield return Up(d, f, 2, 5, 9, 7);
        }
        yield return Composite(d, "down", true, 3, [1, 3, 3, 1]);
        yield return Composite(d, "down", false, 3, [1, 1]);
        yield return Composite(d, "up", false, 3, [1, 1]);
        yield return Composite(d, "up", false, 1, [1, 3, 3, 1]);
        if (d.IsCpu)
        {
            var keep = d.CpuFastPaths;
            d.CpuFastPaths = false;
            try
            {
                yield return Down(d, [1, 3, 3, 1], 1, 3, 7, 6, " kernel");
                yield return Up(d, [1, 1], 1, 3, 5, 4, " kernel");
            }
            finally { d.CpuFastPaths = keep; }
        }
    }

    static double[] D(float[] v) => Array.ConvertAll(v, f => (double)f);
    static string F(float[] f) => "[" + string.Join(",", f) + "]";

    /// <summary>Down forward and backward (one row).</summary>
    public static VerifyRow Down(EdmDevice d, float[] f, int n, int c, int h, int w, string tag = "")
    {
        int p = (f.Length - 1) / 2;
        int ho = ResampleReference.DownSize(h, f.Length, p), wo = ResampleReference.DownSize(w, f.Length, p);
        var x = Compare.Random(n * c * h * w, 21);
        var dy = Compare.Random(n * c * ho * wo, 22);
        using var tx = Tensor.FromArray(d, x, n, c, h, w);
        using var tdy = Tensor.FromArray(d, dy, n, c, ho, wo);
        using var y = Ops.FirDownsample2d(tx, f);
        using var dx = Ops.FirDownsample2dBackward(tdy, f, h, w);
        string shapes = $"{tx.ShapeString} -> {y.ShapeString}";
        return GemmVerify.Worst($"fir-down {F(f)} fwd+bwd{tag}", shapes,
            Compare.Row("forward", shapes, y.ToArray(), ResampleReference.Down(D(x), n * c, h, w, f, p), Tol),
            Compare.Row("backward", shapes, dx.ToArray(), ResampleReference.DownBackward(D(dy), n * c, h, w, f, p), Tol));
    }

    /// <summary>Up forward and backward (one row).</summary>
    public static VerifyRow Up(EdmDevice d, float[] f, int n, int c, int h, int w, string tag = "")
    {
        int p = (f.Length - 1) / 2;
        int ho = ResampleReference.UpSize(h, f.Length, p), wo = ResampleReference.UpSize(w, f.Length, p);
        var x = Compare.Random(n * c * h * w, 23);
        var dy = Compare.Random(n * c * ho * wo, 24);
        using var tx = Tensor.FromArray(d, x, n, c, h, w);
        using var tdy = Tensor.FromArray(d, dy, n, c, ho, wo);
        using var y = Ops.FirUpsample2d(tx, f);
        using var dx = Ops.FirUpsample2dBackward(tdy, f, h, w);
        string shapes = $"{tx.ShapeString} -> {y.ShapeString}";
        return GemmVerify.Worst($"fir-up {F(f)} fwd+bwd{tag}", shapes,
            Compare.Row("forward", shapes, y.ToArray(), ResampleReference.Up(D(x), n * c, h, w, f, p), Tol),
            Compare.Row("backward", shapes, dx.ToArray(), ResampleReference.UpBackward(D(dy), n * c, h, w, f, p), Tol));
    }

    /// <summary>networks.py Conv2d with up/down and a k x k kernel, forward, vs the float64 composite.</summary>
    public static VerifyRow Composite(EdmDevice d, string mode, bool fused, int k, float[] f)
    {
        var s = new ResampleReference.Img(2, 6, 10, 10);
        int cout = 9;
        var x = Compare.Random(s.N * s.C * s.H * s.W, 25);
        var w = Compare.Random(cout * s.C * k * k, 26);
        var b = Compare.Random(cout, 27);
        using var tx = Tensor.FromArray(d, x, s.N, s.C, s.H, s.W);
        using var tw = Tensor.FromArray(d, w, cout, s.C, k, k);
        using var tb = Tensor.FromArray(d, b, cout);
        using var y = Ops.ResampleConv2d(tx, tw, tb, mode == "up" ? Resample.Up : Resample.Down, f, fused);
        var (r, _) = ResampleReference.Conv(D(x), s, D(w), cout, k, D(b), mode, f, fused);
        return Compare.Row($"resample-conv {mode}{(fused ? " fused" : "")} {k}x{k} {F(f)}", $"{tx.ShapeString} -> {y.ShapeString}", y.ToArray(), r, 1e-5 * Math.Sqrt(s.C * k * k));
    }
}

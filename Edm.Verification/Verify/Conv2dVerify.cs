// verify rows for Conv2d: forward, backward-data, backward-weight and bias gradient against the
// float64 reference (Conv2dReference), odd shapes; on the CPU accelerator "kernel" rows run the
// ILGPU im2col/col2im + tiled GEMM path at tiny sizes.
using Edm.Verification;
using Edm.Kernels;

namespace Edm.Verification;

/// <summary>Checks of Conv2d.</summary>
public sealed class Conv2dVerify : IVerifySuite
{
    /// <inheritdoc/>
    public string Family => "conv2d";

    /// <inheritdoc/>
    public IEnumerable<VerifyRow> Run(EdmDevice d)
    {
        foreach (var row in Conv(d, 2, 37, 9, 11, 45, 3, -1)) yield return row;
        foreach (var row in Conv(d, 1, 33, 1, 1, 7, 3, -1)) yield return row;
        foreach (var row in Conv(d, 3, 20, 8, 8, 36, 1, -1)) yield return row;
        foreach (var row in Conv(d, 2, 5, 7, 6, 4, 5, -1)) yield return row;
        foreach (var row in Conv(d, 2, 6, 6, 5, 3, 3, 0)) yield return row;
        if (d.IsCpu)
        {
            var keep = d.CpuFastPaths;
            d.CpuFastPaths = false;
            try
            {
                foreach (var row in Conv(d, 2, 3, 5, 4, 5, 3, -1, " kernel")) yield return row;
            }
            finally { d.CpuFastPaths = keep; }
        }
    }

    /// <summary>The four conv ops on one shape, one row each.</summary>
    public static IEnumerable<VerifyRow> Conv(EdmDevice d, int b, int cin, int h, int w, int cout, int k, int padding, string tag = "")
    {
        int pad = padding < 0 ? k / 2 : padding;
        int ho = h + 2 * pad - k + 1, wo = w + 2 * pad - k + 1;
        var x = Compare.Random(b * cin * h * w, 11);
        var wt = Compare.Random(cout * cin * k * k, 12);
        var bias = Compare.Random(cout, 13);
        var dy = Compare.Random(b * cout * ho * wo, 14);
        double[] D(float[] v) => Array.ConvertAll(v, f => (double)f);
        using var tx = Tensor.FromArray(d, x, b, cin, h, w);
        using var tw = Tensor.FromArray(d, wt, cout, cin, k, k);
        using var tb = Tensor.FromArray(d, bias, cout);
        using var tdy = Tensor.FromArray(d, dy, b, cout, ho, wo);
        string shapes = $"x {tx.ShapeString}, W {tw.ShapeString}, pad {pad}";
        string kk = $"conv{k}x{k}";
        var (rdx, rdw, rdb) = Conv2dReference.Backward(D(x), D(wt), D(dy), b, cin, h, w, cout, k, pad);
        using (var y = Ops.Conv2d(tx, tw, tb, padding))
            yield return Compare.Row($"{kk} forward{tag}", shapes, y.ToArray(), Conv2dReference.Forward(D(x), D(wt), D(bias), b, cin, h, w, cout, k, pad), 1e-5 * Math.Sqrt(cin * k * k));
        using (var dx = Ops.Conv2dBackwardData(tdy, tw, padding))
            yield return Compare.Row($"{kk} backward-data{tag}", shapes, dx.ToArray(), rdx, 1e-5 * Math.Sqrt(cout * k * k));
        using (var dw = Ops.Conv2dBackwardWeight(tx, tdy, k, padding))
            yield return Compare.Row($"{kk} backward-weight{tag}", shapes, dw.ToArray(), rdw, 1e-5 * Math.Sqrt(b * ho * wo));
        using (var db = Ops.Conv2dBackwardBias(tdy))
            yield return Compare.Row($"{kk} backward-bias{tag}", shapes, db.ToArray(), rdb, 1e-5 * Math.Sqrt(b * ho * wo));
    }
}

// verify rows for batch norm (Edm.Kernels/BatchNorm.cs): training and inference forward (y and the
// updated running statistics) and backward, against References/BatchNormReference.cs. Odd channel
// counts and planes; an offset of 20 in x tests the two-pass mean.
using Edm.Kernels;

namespace Edm.Verification;

/// <summary>Batch norm, training and inference.</summary>
public sealed class BatchNormVerify : IVerifySuite
{
    /// <inheritdoc/>
    public string Family => "batchnorm";

    /// <inheritdoc/>
    public IEnumerable<VerifyRow> Run(EdmDevice d)
    {
        foreach (var r in Rows(d, 3, 37, 7, 5, 20)) yield return r;
        foreach (var r in Rows(d, 2, 5, 1, 1, 0)) yield return r;   // one value per (n, c): BatchNorm2d on 1x1 maps
        if (d.IsCpu)
        {
            var keep = d.CpuFastPaths;
            d.CpuFastPaths = false;
            try { foreach (var r in Rows(d, 2, 3, 3, 5, 0, " kernel")) yield return r; }
            finally { d.CpuFastPaths = keep; }
        }
    }

    /// <summary>Training and inference rows on one shape.</summary>
    public static IEnumerable<VerifyRow> Rows(EdmDevice d, int n, int c, int h, int w, double offset, string tag = "")
    {
        int hw = h * w;
        var x = Array.ConvertAll(Compare.Random(n * c * hw, 31), v => (float)(v + offset));
        var wt = Compare.Random(c, 32, 0.5, 1.5);
        var b = Compare.Random(c, 33);
        var rm = Compare.Random(c, 34);
        var rv = Compare.Random(c, 35, 0.5, 2);
        var dy = Compare.Random(n * c * hw, 36);
        static double[] D(float[] a) => Array.ConvertAll(a, v => (double)v);
        string shape = $"{Shapes.Format([n, c, h, w])} offset {offset}";
        const float momentum = 0.1f, eps = 1e-3f;
        using var tx = Tensor.FromArray(d, x, n, c, h, w);
        using var tw = Tensor.FromArray(d, wt, c);
        using var tb = Tensor.FromArray(d, b, c);
        using var tdy = Tensor.FromArray(d, dy, n, c, h, w);
        foreach (bool training in new[] { true, false })
        {
            string mode = training ? "train" : "eval";
            using var trm = Tensor.FromArray(d, rm, c);
            using var trv = Tensor.FromArray(d, rv, c);
            var (ry, rrm, rrv) = BatchNormReference.Forward(D(x), D(wt), D(b), D(rm), D(rv), n, c, hw, training, momentum, eps);
            var (rdx, rdw, rdb) = BatchNormReference.Backward(D(x), D(wt), D(dy), D(rm), D(rv), n, c, hw, training, eps);
            var o = BatchNormForward(d, tx, tw, tb, trm, trv, training, momentum, eps);
            if (o is null) continue;   // training on one value per channel is an error, as in PyTorch
            using (o.Y)
            using (o.Mean)
            using (o.Rstd)
            {
                yield return Compare.Row($"batchnorm-{mode}{tag}", shape, o.Y.ToArray(), ry, 1e-5 * (1 + offset));
                if (training)
                {
                    yield return Compare.Row($"batchnorm-{mode} running_mean{tag}", shape, trm.ToArray(), rrm, 1e-5 * (1 + offset));
                    yield return Compare.Row($"batchnorm-{mode} running_var{tag}", shape, trv.ToArray(), rrv, 1e-5);
                }
                var g = Ops.BatchNormBackward(tx, tdy, o.Mean, o.Rstd, tw, training);
                using (g.Dx) using (g.DWeight) using (g.DBias)
                {
                    double sq = Math.Sqrt(n * hw);
                    yield return Compare.Row($"batchnorm-{mode} backward dx{tag}", shape, g.Dx.ToArray(), rdx, 1e-5 * (1 + offset) * sq);
                    yield return Compare.Row($"batchnorm-{mode} backward dw{tag}", shape, g.DWeight!.ToArray(), rdw, 1e-5 * sq);
                    yield return Compare.Row($"batchnorm-{mode} backward db{tag}", shape, g.DBias!.ToArray(), rdb, 1e-5 * sq);
                }
            }
        }
    }

    static BatchNormOutput? BatchNormForward(EdmDevice d, Tensor x, Tensor w, Tensor b, Tensor rm, Tensor rv, bool training, float momentum, float eps)
    {
        if (training && x.Length / x.Shape[1] < 2) return null;
        return Ops.BatchNormForward(x, w, b, rm, rv, training, momentum, eps);
    }
}

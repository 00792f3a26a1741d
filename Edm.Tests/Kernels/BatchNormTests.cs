// Batch norm against the float64 reference on both CPU paths (training and inference, with and
// without affine, 1x1 maps, an offset for the two-pass mean), the verify rows, finite differences
// of the reference backward, and bad input.
using Edm.Kernels;
using Edm.Verification;
using Xunit;
using static Edm.Tests.TestData;

namespace Edm.Tests.Kernels;

public sealed class BatchNormTests(CpuDevice fx) : IClassFixture<CpuDevice>
{
    readonly EdmDevice _d = fx.Device;

    [Theory]
    [InlineData(3, 5, 4, 3, true, true, 0.0)]
    [InlineData(3, 5, 4, 3, false, true, 0.0)]
    [InlineData(2, 33, 7, 9, true, true, 50.0)]   // offset: the two-pass mean
    [InlineData(2, 33, 7, 9, false, true, 50.0)]
    [InlineData(4, 3, 1, 1, true, false, 0.0)]    // 1x1 maps, no affine
    [InlineData(1, 2, 1, 1, false, true, 0.0)]    // inference on a single value per channel
    public void MatchesReference_BothPaths(int n, int c, int h, int w, bool training, bool affine, double offset)
    {
        foreach (bool fast in new[] { true, false })
        {
            _d.CpuFastPaths = fast;
            try
            {
                int hw = h * w;
                var x = Array.ConvertAll(Rand(n * c * hw, 1), v => (float)(v + offset));
                var wt = Random(c, 2, 0.5, 1.5);
                var b = Rand(c, 3);
                var rm = Rand(c, 4);
                var rv = Random(c, 5, 0.5, 2);
                var dy = Rand(n * c * hw, 6);
                const float eps = 1e-3f, mom = 0.3f;
                using var tx = T(_d, x, n, c, h, w);
                using var tw = T(_d, wt, c);
                using var tb = T(_d, b, c);
                using var trm = T(_d, rm, c);
                using var trv = T(_d, rv, c);
                using var tdy = T(_d, dy, n, c, h, w);
                string name = $"bn ({n},{c},{h},{w}) train={training} affine={affine} fast={fast}";
                var (ry, rrm, rrv) = BatchNormReference.Forward(D(x), affine ? D(wt) : null, affine ? D(b) : null, D(rm), D(rv), n, c, hw, training, mom, eps);
                var o = Ops.BatchNormForward(tx, affine ? tw : null, affine ? tb : null, trm, trv, training, mom, eps);
                using (o.Y) using (o.Mean) using (o.Rstd)
                {
                    Close(name + " y", o.Y.ToArray(), ry, 1e-5 * (1 + offset), 1e-5);
                    Close(name + " running_mean", trm.ToArray(), rrm, 1e-5 * (1 + offset), 1e-5);
                    Close(name + " running_var", trv.ToArray(), rrv, 1e-5, 1e-5);
                    var (rdx, rdw, rdb) = BatchNormReference.Backward(D(x), affine ? D(wt) : null, D(dy), D(rm), D(rv), n, c, hw, training, eps);
                    var g = Ops.BatchNormBackward(tx, tdy, o.Mean, o.Rstd, affine ? tw : null, training);
                    using (g.Dx) using (g.DWeight) using (g.DBias)
                    {
                        double tol = 1e-5 * Math.Sqrt(n * hw) * (1 + offset);
                        Close(name + " dx", g.Dx.ToArray(), rdx, tol, 1e-4);
                        if (affine)
                        {
                            Close(name + " dw", g.DWeight!.ToArray(), rdw, tol, 1e-4);
                            Close(name + " db", g.DBias!.ToArray(), rdb, tol, 1e-4);
                        }
                        else Assert.Null(g.DWeight);
                    }
                }
            }
            finally { _d.CpuFastPaths = true; }
        }
    }

    [Fact]
    public void VerifyRows_Pass()
    {
        foreach (var r in new BatchNormVerify().Run(_d))
            Assert.True(r.Passed, $"{r.Name} {r.Shapes}: max abs {r.MaxAbsError:E3} > tol {r.Tolerance:E1}");
    }

    [Fact]
    public void ReferenceBackward_MatchesFiniteDifferences()
    {
        int n = 3, c = 2, hw = 4;
        var x = D(Rand(n * c * hw, 11));
        var w = D(Random(c, 12, 0.5, 1.5));
        var b = D(Rand(c, 13));
        var rm = D(Rand(c, 14));
        var rv = D(Random(c, 15, 0.5, 2));
        var r = D(Rand(n * c * hw, 16));
        foreach (bool training in new[] { true, false })
        {
            var (dx, dw, db) = BatchNormReference.Backward(x, w, r, rm, rv, n, c, hw, training, 1e-3);
            double[] F(double[] xx, double[] ww, double[] bb) => BatchNormReference.Forward(xx, ww, bb, rm, rv, n, c, hw, training, 0.1, 1e-3).Y;
            FiniteDifference($"dx train={training}", x, v => F(v, w, b), r, dx);
            FiniteDifference($"dw train={training}", w, v => F(x, v, b), r, dw);
            FiniteDifference($"db train={training}", b, v => F(x, w, v), r, db);
        }
    }

    [Fact]
    public void BadInput_ThrowsNamingWhatIsAllowed()
    {
        using var x = Tensor.Zeros(_d, 2, 3, 4, 4);
        using var w3 = Tensor.Zeros(_d, 3);
        using var w4 = Tensor.Zeros(_d, 4);
        var e = Assert.Throws<ArgumentException>(() => Ops.BatchNorm(x, w4, w4, null, null, true));
        Assert.Contains("weight", e.Message);
        Assert.Contains("(4)", e.Message);
        e = Assert.Throws<ArgumentException>(() => Ops.BatchNorm(x, w3, w3, null, null, training: false));
        Assert.Contains("running_mean and running_var", e.Message);
        e = Assert.Throws<ArgumentException>(() => Ops.BatchNorm(x, w3, w3, w3, w3, true, momentum: 2f));
        Assert.Contains("0 <= momentum <= 1", e.Message);
        using var one = Tensor.Zeros(_d, 1, 3, 1, 1);
        e = Assert.Throws<ArgumentException>(() => Ops.BatchNorm(one, w3, w3, null, null, true));
        Assert.Contains("more than one value per channel", e.Message);
        using var flat = Tensor.Zeros(_d, 6);
        e = Assert.Throws<ArgumentException>(() => Ops.BatchNorm(flat, null, null, null, null, true));
        Assert.Contains("(N, C, *spatial)", e.Message);
    }
}

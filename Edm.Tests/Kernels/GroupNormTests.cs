using Edm.Verification;
using Edm.Kernels;
using Xunit;

namespace Edm.Tests.Kernels;

public sealed class GroupNormTests(CpuDevice fx) : IClassFixture<CpuDevice>
{
    readonly EdmDevice _device = fx.Device;

    [Theory]
    [InlineData(true, 2, 6, 3, 5, 3, true)]     // odd spatial size, Cg = 2
    [InlineData(true, 1, 1, 1, 1, 1, true)]     // batch 1, one channel, 1x1 image
    [InlineData(true, 1, 40, 8, 1, 1, false)]   // 1x1 image, C not a multiple of 32, no affine
    [InlineData(true, 3, 36, 12, 9, 11, true)]
    [InlineData(false, 1, 6, 3, 5, 3, true)]
    [InlineData(false, 1, 1, 1, 1, 1, true)]
    [InlineData(false, 1, 10, 5, 1, 1, false)]
    [InlineData(false, 2, 4, 2, 17, 9, true)]   // blocks longer than the group: several elements per thread
    public void ForwardAndBackwardMatchReference(bool fastPath, int n, int c, int g, int h, int w, bool affine)
    {
        _device.CpuFastPaths = fastPath;
        int hw = h * w;
        const float eps = 1e-5f;
        // A large common offset: a one-pass E[x^2] - E[x]^2 variance would lose most digits.
        var x = TestData.Random(n * c * hw, 1, 99, 101);
        var gy = TestData.Random(n * c * hw, 2);
        var wt = affine ? TestData.Random(c, 3, 0.5, 1.5) : null;
        var bs = affine ? TestData.Random(c, 4) : null;
        using var tx = Tensor.FromArray(_device, x, n, c, h, w);
        using var tg = Tensor.FromArray(_device, gy, n, c, h, w);
        using var tw = wt is null ? null : Tensor.FromArray(_device, wt, c);
        using var tb = bs is null ? null : Tensor.FromArray(_device, bs, c);
        var o = Ops.GroupNormForward(tx, g, tw, tb, eps);
        var grads = Ops.GroupNormBackward(tx, tg, o.Mean, o.Rstd, g, tw);
        try
        {
            var (y, mean, rstd) = GroupNormReference.Forward(TestData.D(x), n, c, hw, g, wt is null ? null : TestData.D(wt), bs is null ? null : TestData.D(bs), eps);
            // With 1 element per group (1x1, Cg = 1), y = bias exactly and rstd = 1/sqrt(eps).
            TestData.Close("groupnorm y", o.Y.ToArray(), y, 1e-4, 1e-4);
            TestData.Close("groupnorm mean", o.Mean.ToArray(), mean, 1e-5, 1e-6);
            TestData.Close("groupnorm rstd", o.Rstd.ToArray(), rstd, 1e-5, 1e-3);
            var (dx, dw, db) = GroupNormReference.Backward(TestData.D(x), TestData.D(gy), n, c, hw, g, wt is null ? null : TestData.D(wt), eps);
            // dx scales with rstd (up to 1/sqrt(eps) ~ 316 for constant groups).
            TestData.Close("groupnorm dx", grads.Dx.ToArray(), dx, 2e-3, 2e-3);
            TestData.Close("groupnorm dweight", grads.DWeight.ToArray(), dw, 1e-3, 1e-3);
            TestData.Close("groupnorm dbias", grads.DBias.ToArray(), db, 1e-4, 1e-4);
        }
        finally
        {
            o.Y.Dispose(); o.Mean.Dispose(); o.Rstd.Dispose();
            grads.Dx.Dispose(); grads.DWeight.Dispose(); grads.DBias.Dispose();
        }
    }

    [Theory]
    [InlineData(true)]
    [InlineData(false)]
    public void MeanAtALargeOffsetIsWithinOneUlp(bool fastPath)
    {
        // 8,192 values at 1000 + U(-1, 1) per group: a plain float32 sum loses about len ulps; the
        // residual-corrected mean must be within 1 ulp of the float64 mean (PyTorch's CPU group norm
        // accumulates in double, so this is its error too), and y within float32 rounding of it.
        _device.CpuFastPaths = fastPath;
        try
        {
            const int n = 1, c = 64, g = 2, h = 16, w = 16, hw = h * w;
            var x = TestData.Random(n * c * hw, 7, 999, 1001);
            using var tx = Tensor.FromArray(_device, x, n, c, h, w);
            var o = Ops.GroupNormForward(tx, g, null, null, 1e-6f);
            try
            {
                var (y, mean, _) = GroupNormReference.Forward(TestData.D(x), n, c, hw, g, null, null, 1e-6f);
                var got = o.Mean.ToArray();
                for (int i = 0; i < got.Length; i++)
                    Assert.True(Math.Abs(got[i] - mean[i]) <= MathF.BitIncrement((float)mean[i]) - (float)mean[i],
                        $"mean[{i}] {got[i]:R} vs {mean[i]:R}: more than 1 ulp");
                // xhat = (x - mu) * rstd: |x - mu| <= 1 carries the mean's error (<= 1 ulp of 1000, 6e-5) times rstd (~1.7).
                TestData.Close("groupnorm y at offset", o.Y.ToArray(), y, 2.5e-4, 0);
            }
            finally { o.Y.Dispose(); o.Mean.Dispose(); o.Rstd.Dispose(); }
        }
        finally { _device.CpuFastPaths = true; }
    }

    /// <summary>
    /// The fused SiLU(group norm) equals the float64 reference of the pair, forward and backward, on
    /// both paths, with several (n, g) blocks (each block's gradient comes from its own gy).
    /// </summary>
    [Theory]
    [InlineData(true, 3, 16, 4, 6, 5)]
    [InlineData(false, 2, 8, 2, 3, 3)]
    public void SiluFusedMatchesReference(bool fastPath, int n, int c, int g, int h, int w)
    {
        _device.CpuFastPaths = fastPath;
        try
        {
            int hw = h * w;
            const float eps = 1e-5f;
            var x = TestData.Random(n * c * hw, 11, -2, 3);
            var gy = TestData.Random(n * c * hw, 12);
            var wt = TestData.Random(c, 13, 0.5, 1.5);
            var bs = TestData.Random(c, 14);
            using var tx = Tensor.FromArray(_device, x, n, c, h, w);
            using var tg = Tensor.FromArray(_device, gy, n, c, h, w);
            using var tw = Tensor.FromArray(_device, wt, c);
            using var tb = Tensor.FromArray(_device, bs, c);
            var o = Ops.GroupNormSiluForward(tx, g, tw, tb, eps);
            using var y = o.Y;
            using var mean = o.Mean;
            using var rstd = o.Rstd;
            var D = (float[] a) => a.Select(v => (double)v).ToArray();
            var u = GroupNormReference.Forward(D(x), n, c, hw, g, D(wt), D(bs), eps).Y;
            var got = y.ToArray();
            var gu = new double[u.Length];
            for (int i = 0; i < u.Length; i++)
            {
                double sg = 1 / (1 + Math.Exp(-u[i]));
                Assert.True(Math.Abs(got[i] - u[i] * sg) <= 1e-5 * (1 + Math.Abs(u[i])), $"y[{i}] = {got[i]}, reference {u[i] * sg}");
                gu[i] = gy[i] * sg * (1 + u[i] * (1 - sg));
            }
            var (rdx, rdw, rdb) = GroupNormReference.Backward(D(x), gu, n, c, hw, g, D(wt), eps);
            var r = Ops.GroupNormSiluBackward(tx, tg, mean, rstd, g, tw, tb, eps);
            using var dx = r.Dx;
            using var dw = r.DWeight;
            using var db = r.DBias;
            foreach (var (name, t, want) in new[] { ("dx", dx, rdx), ("dweight", dw, rdw), ("dbias", db, rdb) })
            {
                var a = t.ToArray();
                for (int i = 0; i < a.Length; i++)
                    Assert.True(Math.Abs(a[i] - want[i]) <= 1e-4 * (1 + Math.Abs(want[i])), $"{name}[{i}] = {a[i]}, reference {want[i]}");
            }
        }
        finally { _device.CpuFastPaths = true; }
    }

    [Fact]
    public void ReferenceBackwardMatchesFiniteDifferences()
    {
        int n = 2, c = 4, g = 2, hw = 3;
        const double eps = 1e-5;
        var x = TestData.D(TestData.Random(n * c * hw, 5, -2, 2));
        var wt = TestData.D(TestData.Random(c, 6, 0.5, 1.5));
        var bs = TestData.D(TestData.Random(c, 7));
        var r = TestData.D(TestData.Random(n * c * hw, 8));
        var (dx, dw, db) = GroupNormReference.Backward(x, r, n, c, hw, g, wt, eps);
        TestData.FiniteDifference("groupnorm x", x, xx => GroupNormReference.Forward(xx, n, c, hw, g, wt, bs, eps).Y, r, dx);
        TestData.FiniteDifference("groupnorm weight", wt, ww => GroupNormReference.Forward(x, n, c, hw, g, ww, bs, eps).Y, r, dw);
        TestData.FiniteDifference("groupnorm bias", bs, bb => GroupNormReference.Forward(x, n, c, hw, g, wt, bb, eps).Y, r, db);
    }

    [Fact]
    public void ChannelsNotDivisibleByGroupsIsRejected()
    {
        using var x = Tensor.FromArray(_device, TestData.Random(2 * 6 * 4, 1), 2, 6, 2, 2);
        var e = Assert.Throws<ArgumentException>(() => Ops.GroupNorm(x, 4, null, null));
        Assert.Contains("GroupNorm", e.Message);
        Assert.Contains("(2, 6, 2, 2)", e.Message);
        Assert.Contains("groups = 4", e.Message);
    }

    [Fact]
    public void WrongWeightShapeIsRejected()
    {
        using var x = Tensor.FromArray(_device, TestData.Random(2 * 6 * 4, 1), 2, 6, 2, 2);
        using var w = Tensor.FromArray(_device, TestData.Random(5, 1), 5);
        using var b = Tensor.FromArray(_device, TestData.Random(6, 1), 6);
        var e = Assert.Throws<ArgumentException>(() => Ops.GroupNorm(x, 3, w, b));
        Assert.Contains("weight has shape (5), expected (6)", e.Message);
    }
    [Theory]
    [InlineData(true)]
    [InlineData(false)]
    public void SiluWithAddendMatchesReference(bool fastPath)
    {
        // SiLU(GroupNorm(x + e)) with e per (n, c): the verify rows (y, dx, dweight, dbias, daddend
        // against the float64 reference on the explicit sum), on both paths.
        _device.CpuFastPaths = fastPath;
        try
        {
            var rows = GroupNormVerify.CheckSiluAddend(_device, 2, 8, 2, 3, 5).ToList();
            Assert.Equal(5, rows.Count);
            foreach (var r in rows) Assert.True(r.Passed, $"{r.Name}: error {r.MaxAbsError:E2} > tolerance {r.Tolerance:E1}; {r.Note}");
        }
        finally { _device.CpuFastPaths = true; }
    }

    [Fact]
    public void AddendOfTheWrongShapeIsRejected()
    {
        using var x = Tensor.FromArray(_device, TestData.Random(2 * 4 * 9, 1), 2, 4, 3, 3);
        using var e = Tensor.FromArray(_device, TestData.Random(4 * 2, 2), 4, 2);
        var ex = Assert.Throws<ArgumentException>(() => Ops.GroupNormSiluForward(x, 2, null, null, 1e-5f, e));
        Assert.Contains("GroupNormSilu: addend has shape (4, 2); expected (N, C) = (2, 4)", ex.Message);
    }
}

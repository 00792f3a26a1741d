// Windowed max / average pooling and adaptive average pooling against the float64 reference on
// both CPU paths (Inception-v3's poolings, asymmetric padding, rectangular windows, count_include_pad
// both ways, 1x1 planes), the verify rows, PyTorch's tie and NaN rules for max, finite differences
// of the reference backwards, and bad input.
using Edm.Kernels;
using Edm.Verification;
using Xunit;
using static Edm.Tests.TestData;

namespace Edm.Tests.Kernels;

public sealed class Pool2dTests(CpuDevice fx) : IClassFixture<CpuDevice>
{
    readonly EdmDevice _d = fx.Device;

    void BothPaths(Action check)
    {
        foreach (bool fast in new[] { true, false })
        {
            _d.CpuFastPaths = fast;
            try { check(); }
            finally { _d.CpuFastPaths = true; }
        }
    }

    // (n, c, h, w, kh, kw, sh, sw, pt, pb, pl, pr)
    [Theory]
    [InlineData(2, 3, 11, 9, 3, 3, 2, 2, 0, 0, 0, 0)]    // max_pool2d(3, stride 2)
    [InlineData(2, 3, 7, 6, 3, 3, 1, 1, 1, 1, 1, 1)]     // avg_pool2d(3, stride 1, padding 1)
    [InlineData(1, 2, 6, 7, 2, 3, 2, 1, 1, 0, 0, 1)]     // asymmetric padding, rectangular
    [InlineData(1, 1, 1, 1, 1, 1, 1, 1, 0, 0, 0, 0)]     // 1x1 plane
    [InlineData(3, 2, 5, 5, 5, 5, 3, 3, 2, 2, 2, 2)]     // every window mostly padding
    public void Windowed_MatchReference_BothPaths(int n, int c, int h, int w, int kh, int kw, int sh, int sw, int pt, int pb, int pl, int pr)
    {
        var p = new Conv2dParams(sh, sw, pt, pb, pl, pr);
        var (ho, wo) = Pool2dReference.OutputSize(h, w, kh, kw, p);
        int planes = n * c;
        var x = Rand(planes * h * w, h + 3 * w);
        var dy = Rand(planes * ho * wo, h + 5 * w);
        BothPaths(() =>
        {
            using var tx = T(_d, x, n, c, h, w);
            using var tdy = T(_d, dy, n, c, ho, wo);
            foreach (var (max, inc) in new[] { (true, false), (false, true), (false, false) })
            {
                string name = $"{(max ? "max" : inc ? "avg incl" : "avg excl")} ({n},{c},{h},{w}) k({kh},{kw}) {p} fast={_d.CpuFastPaths}";
                using var y = max ? Ops.MaxPool2d(tx, kh, kw, p) : Ops.AvgPool2d(tx, kh, kw, p, inc);
                Assert.Equal(new[] { n, c, ho, wo }, y.Shape);
                Close(name + " y", y.ToArray(), Pool2dReference.Forward(D(x), planes, h, w, kh, kw, p, max, inc).Y, 1e-6, 1e-6);
                using var dx = max ? Ops.MaxPool2dBackward(tx, tdy, kh, kw, p) : Ops.AvgPool2dBackward(tx, tdy, kh, kw, p, inc);
                Close(name + " dx", dx.ToArray(), Pool2dReference.Backward(D(x), D(dy), planes, h, w, kh, kw, p, max, inc), 1e-6, 1e-6);
            }
        });
    }

    [Theory]
    [InlineData(2, 3, 8, 8, 1, 1)]     // global average (Inception's last pool)
    [InlineData(1, 2, 7, 5, 3, 2)]     // overlapping windows (7 -> 3)
    [InlineData(1, 2, 3, 4, 5, 6)]     // upsampling windows
    public void Adaptive_MatchReference_BothPaths(int n, int c, int h, int w, int oh, int ow)
    {
        int planes = n * c;
        var x = Rand(planes * h * w, 61);
        var dy = Rand(planes * oh * ow, 62);
        BothPaths(() =>
        {
            using var tx = T(_d, x, n, c, h, w);
            using var tdy = T(_d, dy, n, c, oh, ow);
            using var y = Ops.AdaptiveAvgPool2d(tx, oh, ow);
            Assert.Equal(new[] { n, c, oh, ow }, y.Shape);
            Close($"adaptive y fast={_d.CpuFastPaths}", y.ToArray(), Pool2dReference.Adaptive(D(x), planes, h, w, oh, ow), 1e-6, 1e-6);
            using var dx = Ops.AdaptiveAvgPool2dBackward(tdy, h, w);
            Close($"adaptive dx fast={_d.CpuFastPaths}", dx.ToArray(), Pool2dReference.AdaptiveBackward(D(dy), planes, h, w, oh, ow), 1e-6, 1e-6);
        });
    }

    [Fact]
    public void MaxPool_TiesGoToTheFirstTap_AndNaNPropagates()
    {
        BothPaths(() =>
        {
            // One 2x2 window holding 1 twice: the gradient goes to the first (index 1), as PyTorch.
            using var x = T(_d, [0f, 1f, 1f, -1f], 1, 1, 2, 2);
            using var dy = T(_d, [3f], 1, 1, 1, 1);
            using var dx = Ops.MaxPool2dBackward(x, dy, 2, 2, Conv2dParams.Pad(0));
            Assert.Equal(new[] { 0f, 3f, 0f, 0f }, dx.ToArray());
            using var xn = T(_d, [0f, float.NaN, 2f, -1f], 1, 1, 2, 2);
            using var y = Ops.MaxPool2d(xn, 2, 2, Conv2dParams.Pad(0));
            Assert.True(float.IsNaN(y.ToArray()[0]));
        });
    }

    [Fact]
    public void VerifyRows_Pass()
    {
        foreach (var r in new Pool2dVerify().Run(_d))
            Assert.True(r.Passed, $"{r.Name} {r.Shapes}: max abs {r.MaxAbsError:E3} > tol {r.Tolerance:E1}");
    }

    [Fact]
    public void ReferenceBackwards_MatchFiniteDifferences()
    {
        int planes = 2, h = 5, w = 4;
        var x = D(Rand(planes * h * w, 71));
        foreach (var (kh, kw, p) in new[] { (3, 3, Conv2dParams.Symmetric(2, 2, 1, 1)), (2, 3, new Conv2dParams(1, 2, 1, 0, 1, 0)) })
        {
            var (ho, wo) = Pool2dReference.OutputSize(h, w, kh, kw, p);
            var r = D(Rand(planes * ho * wo, 72));
            foreach (bool inc in new[] { true, false })
                FiniteDifference($"avg inc={inc}", x, v => Pool2dReference.Forward(v, planes, h, w, kh, kw, p, false, inc).Y, r,
                    Pool2dReference.Backward(x, r, planes, h, w, kh, kw, p, false, inc));
            // Random values are distinct to far more than the 1e-6 step: max is differentiable here.
            FiniteDifference("max", x, v => Pool2dReference.Forward(v, planes, h, w, kh, kw, p, true, false).Y, r,
                Pool2dReference.Backward(x, r, planes, h, w, kh, kw, p, true, false));
        }
        var ra = D(Rand(planes * 2 * 3, 73));
        FiniteDifference("adaptive", x, v => Pool2dReference.Adaptive(v, planes, h, w, 2, 3), ra, Pool2dReference.AdaptiveBackward(ra, planes, h, w, 2, 3));
    }

    [Fact]
    public void BadInput_ThrowsNamingWhatIsAllowed()
    {
        using var x = Tensor.Zeros(_d, 1, 2, 5, 5);
        var e = Assert.Throws<ArgumentException>(() => Ops.MaxPool2d(x, 3, 3, Conv2dParams.Symmetric(1, 1, 2, 1)));
        Assert.Contains("MaxPool2d", e.Message);
        Assert.Contains("half the kernel", e.Message);
        e = Assert.Throws<ArgumentException>(() => Ops.AvgPool2d(x, 7, 3, Conv2dParams.Pad(0), false));
        Assert.Contains("smaller than the kernel (7, 3)", e.Message);
        e = Assert.Throws<ArgumentException>(() => Ops.AvgPool2d(x, 3, 3, new Conv2dParams(0, 1, 0, 0, 0, 0), true));
        Assert.Contains("stride (0, 1)", e.Message);
        e = Assert.Throws<ArgumentException>(() => Ops.AdaptiveAvgPool2d(x, 0, 1));
        Assert.Contains("output size (0, 1)", e.Message);
        using var dy = Tensor.Zeros(_d, 1, 2, 3, 3);
        e = Assert.Throws<ArgumentException>(() => Ops.MaxPool2dBackward(x, dy, 3, 3, Conv2dParams.Symmetric(2, 2, 0, 0)));
        Assert.Contains("dy", e.Message);
    }
}

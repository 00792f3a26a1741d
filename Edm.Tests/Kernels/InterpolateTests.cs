// Bilinear resize (align_corners=False) against the float64 reference on both CPU paths (the FID
// sizes 28 -> 299 and 32 -> 299 on the fast path, up/down/mixed and 1-pixel axes on both), the
// verify rows, PyTorch values on a small case, finite differences of the reference backward, and
// bad input.
using Edm.Kernels;
using Edm.Verification;
using Xunit;
using static Edm.Tests.TestData;

namespace Edm.Tests.Kernels;

public sealed class InterpolateTests(CpuDevice fx) : IClassFixture<CpuDevice>
{
    readonly EdmDevice _d = fx.Device;

    [Theory]
    [InlineData(true, 1, 3, 28, 28, 299, 299)]
    [InlineData(true, 1, 1, 32, 32, 299, 299)]
    [InlineData(true, 2, 3, 9, 7, 4, 11)]
    [InlineData(false, 2, 3, 9, 7, 4, 11)]
    [InlineData(false, 1, 2, 1, 5, 3, 1)]     // 1-pixel axes
    [InlineData(false, 1, 2, 6, 6, 6, 6)]     // same size: the identity
    [InlineData(false, 1, 1, 5, 4, 17, 13)]
    [InlineData(true, 1, 1, 2, 40000, 3, 7)]     // an axis of 40,000: the taps' 64-bit branch
    [InlineData(false, 1, 1, 2, 40000, 3, 7)]
    public void MatchesReference(bool fast, int n, int c, int h, int w, int oh, int ow)
    {
        _d.CpuFastPaths = fast;
        try
        {
            int planes = n * c;
            var x = Rand(planes * h * w, 91);
            var dy = Rand(planes * oh * ow, 92);
            using var tx = T(_d, x, n, c, h, w);
            using var tdy = T(_d, dy, n, c, oh, ow);
            using var y = Ops.InterpolateBilinear(tx, oh, ow);
            Assert.Equal(new[] { n, c, oh, ow }, y.Shape);
            Close($"bilinear y fast={fast}", y.ToArray(), InterpolateReference.Forward(D(x), planes, h, w, oh, ow), 1e-6, 1e-6);
            using var dx = Ops.InterpolateBilinearBackward(tdy, h, w);
            double fan = Math.Max(1.0, (double)oh / h) * Math.Max(1.0, (double)ow / w);
            Close($"bilinear dx fast={fast}", dx.ToArray(), InterpolateReference.Backward(D(dy), planes, h, w, oh, ow), 1e-6 * fan, 1e-6);
            if (h == oh && w == ow) Assert.Equal(x, y.ToArray());
        }
        finally { _d.CpuFastPaths = true; }
    }

    [Fact]
    public void MatchesPyTorchOnASmallCase()
    {
        // torch.nn.functional.interpolate(torch.arange(6.).reshape(1, 1, 2, 3), size=(3, 4),
        // mode="bilinear", align_corners=False), PyTorch 1.13 on the CPU.
        float[] want = [0f, 0.625f, 1.375f, 2f, 1.5f, 2.125f, 2.875f, 3.5f, 3f, 3.625f, 4.375f, 5f];
        using var x = T(_d, [0f, 1f, 2f, 3f, 4f, 5f], 1, 1, 2, 3);
        using var y = Ops.InterpolateBilinear(x, 3, 4);
        Close("torch values", y.ToArray(), D(want), 1e-6, 0);
    }

    [Fact]
    public void VerifyRows_Pass()
    {
        foreach (var r in new InterpolateVerify().Run(_d))
            Assert.True(r.Passed, $"{r.Name} {r.Shapes}: max abs {r.MaxAbsError:E3} > tol {r.Tolerance:E1}");
    }

    [Fact]
    public void ReferenceBackward_MatchesFiniteDifferences()
    {
        int planes = 2, h = 4, w = 5;
        var x = D(Rand(planes * h * w, 93));
        foreach (var (oh, ow) in new[] { (7, 3), (2, 9) })
        {
            var r = D(Rand(planes * oh * ow, 94));
            FiniteDifference($"bilinear {oh}x{ow}", x, v => InterpolateReference.Forward(v, planes, h, w, oh, ow), r,
                InterpolateReference.Backward(r, planes, h, w, oh, ow));
        }
    }

    [Fact]
    public void BadInput_ThrowsNamingWhatIsAllowed()
    {
        using var x = Tensor.Zeros(_d, 1, 3, 4, 4);
        var e = Assert.Throws<ArgumentException>(() => Ops.InterpolateBilinear(x, 0, 299));
        Assert.Contains("InterpolateBilinear", e.Message);
        Assert.Contains("output size (0, 299)", e.Message);
        using var v = Tensor.Zeros(_d, 5);
        e = Assert.Throws<ArgumentException>(() => Ops.InterpolateBilinear(v, 3, 3));
        Assert.Contains("(..., H, W)", e.Message);
    }
}

using Edm.Verification;
using Edm.Kernels;
using Xunit;

namespace Edm.Tests.Kernels;

public sealed class PoolingTests(CpuDevice fx) : IClassFixture<CpuDevice>
{
    readonly EdmDevice _device = fx.Device;

    [Theory]
    [InlineData(true, 2, 3, 5, 3)]
    [InlineData(true, 1, 1, 1, 1)]
    [InlineData(true, 2, 33, 16, 16)]
    [InlineData(false, 2, 3, 5, 3)]
    [InlineData(false, 1, 1, 1, 1)]
    public void UpsampleMatchesReference(bool fastPath, int n, int c, int h, int w)
    {
        _device.CpuFastPaths = fastPath;
        int p = n * c;
        var x = TestData.Random(p * h * w, 1);
        var gy = TestData.Random(p * 4 * h * w, 2);
        using var tx = Tensor.FromArray(_device, x, n, c, h, w);
        using var tg = Tensor.FromArray(_device, gy, n, c, 2 * h, 2 * w);
        using var y = Ops.UpsampleNearest2x(tx);
        using var dx = Ops.UpsampleNearest2xBackward(tg);
        Assert.Equal(new[] { n, c, 2 * h, 2 * w }, y.Shape);
        Assert.Equal(new[] { n, c, h, w }, dx.Shape);
        TestData.Close("upsample y", y.ToArray(), PoolingReference.UpsampleNearest2x(TestData.D(x), p, h, w), 0, 0);
        TestData.Close("upsample dx", dx.ToArray(), PoolingReference.UpsampleNearest2xBackward(TestData.D(gy), p, h, w), 1e-6, 1e-6);
    }

    [Theory]
    [InlineData(true, 2, 3, 6, 4)]
    [InlineData(true, 1, 1, 2, 2)]
    [InlineData(true, 2, 33, 32, 32)]
    [InlineData(false, 2, 3, 6, 4)]
    [InlineData(false, 1, 1, 2, 2)]
    public void AvgPoolMatchesReference(bool fastPath, int n, int c, int h, int w)
    {
        _device.CpuFastPaths = fastPath;
        int p = n * c;
        var x = TestData.Random(p * h * w, 3);
        var gy = TestData.Random(p * h * w / 4, 4);
        using var tx = Tensor.FromArray(_device, x, n, c, h, w);
        using var tg = Tensor.FromArray(_device, gy, n, c, h / 2, w / 2);
        using var y = Ops.AvgPool2x(tx);
        using var dx = Ops.AvgPool2xBackward(tg);
        Assert.Equal(new[] { n, c, h, w }, dx.Shape);
        TestData.Close("avgpool y", y.ToArray(), PoolingReference.AvgPool2x(TestData.D(x), p, h, w), 1e-6, 1e-6);
        TestData.Close("avgpool dx", dx.ToArray(), PoolingReference.AvgPool2xBackward(TestData.D(gy), p, h, w), 1e-7, 1e-6);
    }

    [Fact]
    public void ReferenceBackwardsMatchFiniteDifferences()
    {
        int p = 2, h = 2, w = 4;
        var x = TestData.D(TestData.Random(p * h * w, 5));
        var r = TestData.D(TestData.Random(p * 4 * h * w, 6));
        TestData.FiniteDifference("upsample", x, xx => PoolingReference.UpsampleNearest2x(xx, p, h, w), r,
            PoolingReference.UpsampleNearest2xBackward(r, p, h, w));
        var r2 = TestData.D(TestData.Random(p * h * w / 4, 7));
        TestData.FiniteDifference("avgpool", x, xx => PoolingReference.AvgPool2x(xx, p, h, w), r2,
            PoolingReference.AvgPool2xBackward(r2, p, h, w));
    }

    [Fact]
    public void OddSizesAreRejectedByPooling()
    {
        using var x = Tensor.FromArray(_device, TestData.Random(15, 1), 1, 1, 5, 3);
        var e = Assert.Throws<ArgumentException>(() => Ops.AvgPool2x(x));
        Assert.Contains("AvgPool2x", e.Message);
        Assert.Contains("(1, 1, 5, 3)", e.Message);
    }
}

using Edm.Verification;
using Edm.Kernels;
using Xunit;

namespace Edm.Tests.Kernels;

public sealed class DropoutTests(CpuDevice fx) : IClassFixture<CpuDevice>
{
    readonly EdmDevice _device = fx.Device;

    [Theory]
    [InlineData(true, 0.13f, 1001)]
    [InlineData(true, 0f, 7)]
    [InlineData(false, 0.13f, 1001)]
    [InlineData(false, 0.5f, 1)]
    public void ForwardAndBackwardMatchReference(bool fastPath, float p, int n)
    {
        _device.CpuFastPaths = fastPath;
        var x = TestData.Random(n, 1);
        var g = TestData.Random(n, 2);
        using var tx = Tensor.FromArray(_device, x, n);
        using var tg = Tensor.FromArray(_device, g, n);
        using var y = Ops.Dropout(tx, p, 42, 3);
        using var dx = Ops.DropoutBackward(tg, p, 42, 3);
        TestData.Close("dropout y", y.ToArray(), DropoutReference.Apply(TestData.D(x), p, 42, 3), 1e-7, 1e-6);
        TestData.Close("dropout dx", dx.ToArray(), DropoutReference.Apply(TestData.D(g), p, 42, 3), 1e-7, 1e-6);
    }

    [Fact]
    public void MaskIsReproducibleAndMatchesBetweenPaths()
    {
        var x = TestData.Random(4099, 3, 0.5, 1.5); // never zero: a zero output means dropped
        using var tx = Tensor.FromArray(_device, x, 4099);
        _device.CpuFastPaths = true;
        using var a = Ops.Dropout(tx, 0.3f, 5, 1);
        using var b = Ops.Dropout(tx, 0.3f, 5, 1);
        using var other = Ops.Dropout(tx, 0.3f, 5, 2);
        _device.CpuFastPaths = false;
        using var k = Ops.Dropout(tx, 0.3f, 5, 1);
        Assert.Equal(a.ToArray(), b.ToArray());
        Assert.Equal(a.ToArray(), k.ToArray());
        Assert.NotEqual(a.ToArray(), other.ToArray());
        // Kept fraction ~ 1 - p (binomial sd ~ 0.007 at n = 4099) and the mean is preserved.
        var ya = a.ToArray();
        double kept = ya.Count(v => v != 0) / (double)ya.Length;
        Assert.InRange(kept, 0.7 - 0.03, 0.7 + 0.03);
        Assert.InRange(ya.Average() / x.Average(), 0.95, 1.05);
    }

    [Theory]
    [InlineData(1f)]
    [InlineData(-0.1f)]
    [InlineData(float.NaN)]
    public void BadProbabilityIsRejected(float p)
    {
        using var x = Tensor.FromArray(_device, TestData.Random(6, 1), 2, 3);
        var e = Assert.Throws<ArgumentException>(() => Ops.Dropout(x, p, 1));
        Assert.Contains("Dropout", e.Message);
        Assert.Contains("0 <= p < 1", e.Message);
        Assert.Contains("(2, 3)", e.Message);
    }
}

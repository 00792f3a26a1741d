using Edm.Verification;
using Edm.Kernels;
using Xunit;

namespace Edm.Tests.Kernels;

public sealed class SoftmaxTests(CpuDevice fx) : IClassFixture<CpuDevice>
{
    readonly EdmDevice _device = fx.Device;

    [Theory]
    [InlineData(true, 3, 7)]
    [InlineData(true, 1, 1)]
    [InlineData(true, 5, 300)]
    [InlineData(false, 2, 7)]
    [InlineData(false, 1, 1)]
    [InlineData(false, 2, 300)] // cols > group size: threads see several elements each
    public void ForwardAndBackwardMatchReference(bool fastPath, int rows, int cols)
    {
        _device.CpuFastPaths = fastPath;
        var x = TestData.Random(rows * cols, 1, -4, 4);
        var gy = TestData.Random(rows * cols, 2);
        using var tx = Tensor.FromArray(_device, x, rows, cols);
        using var tg = Tensor.FromArray(_device, gy, rows, cols);
        using var y = Ops.Softmax(tx);
        using var dx = Ops.SoftmaxBackward(y, tg);
        var yRef = SoftmaxReference.Forward(TestData.D(x), rows, cols);
        TestData.Close("softmax y", y.ToArray(), yRef, 1e-7, 1e-5);
        TestData.Close("softmax dx", dx.ToArray(), SoftmaxReference.Backward(yRef, TestData.D(gy), rows, cols), 1e-7, 1e-4);
    }

    [Theory]
    [InlineData(true)]
    [InlineData(false)]
    public void LargeLogitsStayFinite(bool fastPath)
    {
        _device.CpuFastPaths = fastPath;
        // exp(1000) overflows float32 and float64: only the max-subtracted form is finite.
        var x = TestData.Random(2 * 9, 3, 990, 1000);
        using var tx = Tensor.FromArray(_device, x, 2, 9);
        using var y = Ops.Softmax(tx);
        TestData.Close("softmax large logits", y.ToArray(), SoftmaxReference.Forward(TestData.D(x), 2, 9), 1e-7, 1e-5);
    }

    [Fact]
    public void ReferenceBackwardMatchesFiniteDifferences()
    {
        int rows = 2, cols = 5;
        var x = TestData.D(TestData.Random(rows * cols, 4, -2, 2));
        var r = TestData.D(TestData.Random(rows * cols, 5));
        var grad = SoftmaxReference.Backward(SoftmaxReference.Forward(x, rows, cols), r, rows, cols);
        TestData.FiniteDifference("softmax", x, xx => SoftmaxReference.Forward(xx, rows, cols), r, grad);
    }

    [Fact]
    public void BadGradientShapeIsRejected()
    {
        using var y = Tensor.FromArray(_device, TestData.Random(6, 1), 2, 3);
        using var g = Tensor.FromArray(_device, TestData.Random(6, 1), 3, 2);
        var e = Assert.Throws<ArgumentException>(() => Ops.SoftmaxBackward(y, g));
        Assert.Contains("SoftmaxBackward", e.Message);
        Assert.Contains("(3, 2)", e.Message);
    }
}

// Differentiable windowed max / average pooling and adaptive average pooling over (..., H, W).
using Edm.Kernels;

namespace Edm.Autograd;

public static partial class Fn
{
    /// <summary>Max pooling with kernel (kh, kw), stride and padding <paramref name="p"/> (PyTorch max_pool2d).</summary>
    public static Variable MaxPool2d(Variable x, int kh, int kw, Conv2dParams p)
    {
        bool record = Tape.Prepare("MaxPool2d", x);
        var y = Ops.MaxPool2d(x.Value, kh, kw, p);
        return record ? Tape.Record(new Pool2dNode(x.Value, kh, kw, p, null), y, x) : new Variable(y);
    }

    /// <summary>Average pooling (PyTorch avg_pool2d); <paramref name="countIncludePad"/> false averages over the taps inside the image.</summary>
    public static Variable AvgPool2d(Variable x, int kh, int kw, Conv2dParams p, bool countIncludePad)
    {
        bool record = Tape.Prepare("AvgPool2d", x);
        var y = Ops.AvgPool2d(x.Value, kh, kw, p, countIncludePad);
        return record ? Tape.Record(new Pool2dNode(x.Value, kh, kw, p, countIncludePad), y, x) : new Variable(y);
    }

    /// <summary>Adaptive average pooling to (oh, ow) (PyTorch adaptive_avg_pool2d).</summary>
    public static Variable AdaptiveAvgPool2d(Variable x, int oh, int ow)
    {
        bool record = Tape.Prepare("AdaptiveAvgPool2d", x);
        var y = Ops.AdaptiveAvgPool2d(x.Value, oh, ow);
        return record ? Tape.Record(new AdaptivePoolNode(x.Value.Shape[^2], x.Value.Shape[^1]), y, x) : new Variable(y);
    }

    /// Saves x (max needs its values to find each window's maximum; average only its shape). countIncludePad null = max.
    sealed class Pool2dNode(Tensor x, int kh, int kw, Conv2dParams p, bool? countIncludePad) : Node
    {
        protected internal override Tensor?[] Backward(Tensor gy) =>
            [countIncludePad is bool inc ? Ops.AvgPool2dBackward(x, gy, kh, kw, p, inc) : Ops.MaxPool2dBackward(x, gy, kh, kw, p)];
    }

    sealed class AdaptivePoolNode(int h, int w) : Node
    {
        protected internal override Tensor?[] Backward(Tensor gy) => [Ops.AdaptiveAvgPool2dBackward(gy, h, w)];
    }
}

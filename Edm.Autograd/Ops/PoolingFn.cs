// Differentiable nearest-neighbour 2x upsampling and 2x average pooling over (B, C, H, W).
using Edm.Kernels;

namespace Edm.Autograd;

public static partial class Fn
{
    /// <summary>Nearest-neighbour upsampling by 2 (each pixel becomes a 2x2 block).</summary>
    public static Variable UpsampleNearest2x(Variable x)
    {
        bool record = Tape.Prepare("UpsampleNearest2x", x);
        var y = Ops.UpsampleNearest2x(x.Value);
        return record ? Tape.Record(new UpsampleNode(), y, x) : new Variable(y);
    }

    /// <summary>Average pooling over 2x2 blocks (H and W even).</summary>
    public static Variable AvgPool2x(Variable x)
    {
        bool record = Tape.Prepare("AvgPool2x", x);
        var y = Ops.AvgPool2x(x.Value);
        return record ? Tape.Record(new AvgPoolNode(), y, x) : new Variable(y);
    }

    sealed class UpsampleNode : Node
    {
        protected internal override Tensor?[] Backward(Tensor gy) => [Ops.UpsampleNearest2xBackward(gy)];
    }

    sealed class AvgPoolNode : Node
    {
        protected internal override Tensor?[] Backward(Tensor gy) => [Ops.AvgPool2xBackward(gy)];
    }
}

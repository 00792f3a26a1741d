// Differentiable bilinear resize (PyTorch F.interpolate, mode="bilinear", align_corners=False).
using Edm.Kernels;

namespace Edm.Autograd;

public static partial class Fn
{
    /// <summary>Bilinear resize of the last two axes to (oh, ow), align_corners=False.</summary>
    public static Variable InterpolateBilinear(Variable x, int oh, int ow)
    {
        bool record = Tape.Prepare("InterpolateBilinear", x);
        var y = Ops.InterpolateBilinear(x.Value, oh, ow);
        return record ? Tape.Record(new InterpolateNode(x.Value.Shape[^2], x.Value.Shape[^1]), y, x) : new Variable(y);
    }

    sealed class InterpolateNode(int h, int w) : Node
    {
        protected internal override Tensor?[] Backward(Tensor gy) => [Ops.InterpolateBilinearBackward(gy, h, w)];
    }
}

// Differentiable softmax along the last axis: y = softmax(x); backward dx = y (gy - sum(gy y)).
using Edm.Kernels;

namespace Edm.Autograd;

public static partial class Fn
{
    /// <summary>Softmax along the last axis (numerically stable).</summary>
    public static Variable Softmax(Variable x)
    {
        bool record = Tape.Prepare("Softmax", x);
        var y = Ops.Softmax(x.Value);
        return record ? Tape.Record(new SoftmaxNode(y), y, x) : new Variable(y);
    }

    // Saves its own output (owned by the output variable; alive while the graph is).
    sealed class SoftmaxNode(Tensor y) : Node
    {
        protected internal override Tensor?[] Backward(Tensor gy) => [Ops.SoftmaxBackward(y, gy)];
    }
}

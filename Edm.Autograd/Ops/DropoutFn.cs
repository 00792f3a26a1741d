// Differentiable dropout: the mask comes from Philox keyed by (seed, stream), so backward
// regenerates it instead of saving it; kept values are scaled by 1 / (1 - p).
using Edm.Kernels;

namespace Edm.Autograd;

public static partial class Fn
{
    /// <summary>Dropout with probability <paramref name="p"/>, reproducible from (seed, stream).</summary>
    public static Variable Dropout(Variable x, float p, ulong seed, ulong stream)
    {
        bool record = Tape.Prepare("Dropout", x);
        var y = Ops.Dropout(x.Value, p, seed, stream);
        return record ? Tape.Record(new DropoutNode(p, seed, stream), y, x) : new Variable(y);
    }

    sealed class DropoutNode(float p, ulong seed, ulong stream) : Node
    {
        protected internal override Tensor?[] Backward(Tensor gy) => [Ops.DropoutBackward(gy, p, seed, stream)];
    }
}

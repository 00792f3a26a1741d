// Differentiable Linear: y = x W^T + b; x (N, in), W (out, in), b (out).
// Backward: dx = dy W; dW = dy^T x; db = sum_n dy.
using Edm.Kernels;

namespace Edm.Autograd;

public static partial class Fn
{
    /// <summary>x W^T + b (b optional).</summary>
    public static Variable Linear(Variable x, Variable weight, Variable? bias = null)
    {
        Variable[] inputs = bias is null ? [x, weight] : [x, weight, bias];
        bool record = Tape.Prepare("Linear", inputs);
        var y = Ops.Linear(x.Value, weight.Value, bias?.Value);
        return record ? Tape.Record(new LinearNode(x.Value, weight.Value, bias is not null), y, inputs) : new Variable(y);
    }

    sealed class LinearNode(Tensor x, Tensor w, bool hasBias) : Node
    {
        protected internal override Tensor?[] Backward(Tensor gy)
        {
            var g = new Tensor?[hasBias ? 3 : 2];
            if (NeedsGrad(0)) g[0] = Ops.LinearBackwardData(gy, w);
            if (NeedsGrad(1)) g[1] = Ops.LinearBackwardWeight(gy, x);
            if (hasBias && NeedsGrad(2)) g[2] = Ops.Sum(gy, [0]);
            return g;
        }
    }
}

// Differentiable permute (torch.permute, materialised): the backward applies the inverse permutation.
using Edm.Kernels;

namespace Edm.Autograd;

public static partial class Fn
{
    /// <summary>Output dimension i is input dimension perm[i].</summary>
    public static Variable Permute(Variable x, params int[] perm)
    {
        bool record = Tape.Prepare("Permute", x);
        var y = Ops.Permute(x.Value, perm);
        return record ? Tape.Record(new PermuteNode(perm), y, x) : new Variable(y);
    }

    sealed class PermuteNode(int[] perm) : Node
    {
        protected internal override Tensor?[] Backward(Tensor gy)
        {
            var inverse = new int[perm.Length];
            for (int i = 0; i < perm.Length; i++) inverse[perm[i]] = i;
            return [Ops.Permute(gy, inverse)];
        }
    }
}

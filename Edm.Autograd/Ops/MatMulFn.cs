// Differentiable matrix product of two rank-2 variables over the project GEMM (Edm.Kernels/Gemm.cs):
// y = a b, a (M, K), b (K, N), y (M, N). Backward: ga = gy b^T (M, K), gb = a^T gy (K, N), both
// with the GEMM's transpose flags (no transposed copies).
using Edm.Kernels;

namespace Edm.Autograd;

public static partial class Fn
{
    /// <summary>Matrix product a b of (M, K) and (K, N) variables.</summary>
    public static Variable MatMul(Variable a, Variable b)
    {
        bool record = Tape.Prepare("MatMul", a, b);
        if (a.Value.Rank != 2 || b.Value.Rank != 2)
            throw new ArgumentException($"Fn.MatMul: expects rank-2 operands (M, K) and (K, N), got {a.Value.ShapeString} and {b.Value.ShapeString}; use Fn.Linear for batched rows");
        var y = Ops.MatMul(a.Value, b.Value);
        return record ? Tape.Record(new MatMulNode(a.Value, b.Value), y, a, b) : new Variable(y);
    }

    sealed class MatMulNode(Tensor a, Tensor b) : Node
    {
        protected internal override Tensor?[] Backward(Tensor gy) =>
        [
            NeedsGrad(0) ? Ops.MatMul(gy, b, transB: true) : null,  // (M, N) (K, N)^T -> (M, K)
            NeedsGrad(1) ? Ops.MatMul(a, gy, transA: true) : null,  // (M, K)^T (M, N) -> (K, N)
        ];
    }
}

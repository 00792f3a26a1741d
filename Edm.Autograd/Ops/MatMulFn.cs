// Differentiable matrix product over the project GEMM (Edm.Kernels/Gemm.cs), plain or batched:
// y = a b with a (M, K) or (B, M, K) and b (K, N) or (B, K, N); a rank-2 operand or a batch of 1
// broadcasts over the other's batch; y is (M, N) for two rank-2 operands, else (B, M, N).
// Backward: ga = gy b^T, gb = a^T gy with the GEMM's transpose flags (no transposed copies); an
// operand that was broadcast gets the sum over the batch (the GEMM's batch reduction).
using Edm.Kernels;

namespace Edm.Autograd;

public static partial class Fn
{
    /// <summary>Matrix product a b of (M, K) / (B, M, K) and (K, N) / (B, K, N) variables (batch 1 broadcasts).</summary>
    public static Variable MatMul(Variable a, Variable b)
    {
        bool record = Tape.Prepare("MatMul", a, b);
        var y = Ops.MatMul(a.Value, b.Value);  // validates ranks and shapes
        return record ? Tape.Record(new MatMulNode(a.Value, b.Value, y.Rank == 3 ? y.Shape[0] : 1), y, a, b) : new Variable(y);
    }

    sealed class MatMulNode(Tensor a, Tensor b, int batch) : Node
    {
        protected internal override Tensor?[] Backward(Tensor gy) =>
        [
            NeedsGrad(0) ? Grad(a, () => Ops.MatMul(gy, b, transB: true), (c) => Ops.MatMulInto(gy, b, c, transB: true)) : null,
            NeedsGrad(1) ? Grad(b, () => Ops.MatMul(a, gy, transA: true), (c) => Ops.MatMulInto(a, gy, c, transA: true)) : null,
        ];

        // An operand with the full batch gets the per-item products; one that was broadcast (rank 2,
        // or a batch of 1) gets their sum, into a (rows, cols) tensor viewed in its own shape.
        Tensor Grad(Tensor operand, Func<Tensor> perItem, Action<Tensor> summed)
        {
            bool broadcast = batch > 1 && (operand.Rank == 2 || operand.Shape[0] == 1);
            if (!broadcast) return perItem();
            var g = Tensor.Empty(operand.Device, operand.Shape[^2], operand.Shape[^1]);
            summed(g);
            if (operand.Rank == 2) return g;
            var view = g.Reshape(operand.Shape);
            g.Dispose();
            return view;
        }
    }
}

// Differentiable scaled dot-product attention softmax(Q K^T / sqrt(d)) V over (BH, N, d).
// Forward saves the output and the per-row logsumexp; backward recomputes the probabilities.
using Edm.Kernels;

namespace Edm.Autograd;

public static partial class Fn
{
    /// <summary>softmax(q k^T * scale) v; q, k, v (BH, N, d); scale defaults to 1/sqrt(d).</summary>
    public static Variable Attention(Variable q, Variable k, Variable v, float? scale = null)
    {
        bool record = Tape.Prepare("Attention", q, k, v);
        if (!record) return new Variable(Ops.Attention(q.Value, k.Value, v.Value, scale));
        var o = Ops.AttentionForward(q.Value, k.Value, v.Value, scale);
        return Tape.Record(new AttentionNode(q.Value, k.Value, v.Value, o.O, o.Lse, scale), o.O, q, k, v);
    }

    sealed class AttentionNode(Tensor q, Tensor k, Tensor v, Tensor o, Tensor lse, float? scale) : Node
    {
        protected internal override Tensor?[] Backward(Tensor gy)
        {
            var r = Ops.AttentionBackward(q, k, v, o, lse, gy, scale);
            return [NeedsGrad(0) ? r.DQ : Drop(r.DQ), NeedsGrad(1) ? r.DK : Drop(r.DK), NeedsGrad(2) ? r.DV : Drop(r.DV)];
        }

        protected override void DisposeOwned() => lse.Dispose();
        static Tensor? Drop(Tensor t) { t.Dispose(); return null; }
    }
}

public static partial class Fn
{
    /// <summary>
    /// Self-attention on the packed layout: qkv (BH, d, 3, N) (Q, K, V in dimension 2, as the U-Nets'
    /// 1x1 qkv convolution lays them out) -> O (BH, d, N), channel-major; scale defaults to 1/sqrt(d).
    /// The same values as <see cref="Attention"/> on the parts, without permutes or slices.
    /// </summary>
    public static Variable QkvAttention(Variable qkv, float? scale = null)
    {
        bool record = Tape.Prepare("QkvAttention", qkv);
        var o = Ops.QkvAttentionForward(qkv.Value, scale);
        if (!record)
        {
            o.Lse.Dispose();
            return new Variable(o.O);
        }
        return Tape.Record(new QkvAttentionNode(qkv.Value, o.O, o.Lse, scale), o.O, qkv);
    }

    sealed class QkvAttentionNode(Tensor qkv, Tensor o, Tensor lse, float? scale) : Node
    {
        protected internal override Tensor?[] Backward(Tensor gy) => [Ops.QkvAttentionBackward(qkv, o, lse, gy, scale)];

        protected override void DisposeOwned() => lse.Dispose();
    }
}

// Gradient-check cases of scaled dot-product attention (Edm.Autograd/Ops/AttentionFn.cs) against
// References/AttentionReference.cs.
using Edm.Autograd;

namespace Edm.Verification;

/// <summary>Cases of attention.</summary>
public sealed class AttentionGradCases : IGradCases
{
    /// <inheritdoc/>
    public IReadOnlyDictionary<string, GradCase> Cases()
    {
        var c = new Dictionary<string, GradCase>();
        foreach (var (bh, nq, nk, d) in new[] { (2, 5, 7, 4), (1, 1, 1, 3), (1, 9, 9, 8) })
        {
            double scale = 1 / Math.Sqrt(d);
            // q (BH, Nq, d), k and v (BH, Nk, d) -> o (BH, Nq, d)
            c[$"attention bh{bh} nq{nq} nk{nk} d{d}"] = new([[bh, nq, d], [bh, nk, d], [bh, nk, d]], v => Fn.Attention(v[0], v[1], v[2]),
                x => new RefTensor(AttentionReference.Forward(x[0].Data, x[1].Data, x[2].Data, bh, nq, nk, d, scale).O, [bh, nq, d]),
                (x, g) =>
                {
                    var (dq, dk, dv) = AttentionReference.Backward(x[0].Data, x[1].Data, x[2].Data, g.Data, bh, nq, nk, d, scale);
                    return [new(dq, [bh, nq, d]), new(dk, [bh, nk, d]), new(dv, [bh, nk, d])];
                });
        }
        foreach (var (bh, d, n) in new[] { (2, 3, 5), (1, 4, 9) })
        {
            double scale = 1 / Math.Sqrt(d);
            // qkv (BH, d, 3, N) -> o (BH, d, N), the U-Nets' packed layout
            c[$"qkv_attention bh{bh} d{d} n{n}"] = new([[bh, d, 3, n]], v => Fn.QkvAttention(v[0]),
                x => new RefTensor(AttentionReference.QkvForward(x[0].Data, bh, d, n, scale).O, [bh, d, n]),
                (x, g) => [new(AttentionReference.QkvBackward(x[0].Data, g.Data, bh, d, n, scale), [bh, d, 3, n])]);
        }
        return c;
    }
}

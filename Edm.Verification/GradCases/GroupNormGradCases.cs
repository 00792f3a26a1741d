// Gradient-check cases of group norm (Edm.Autograd/Ops/GroupNormFn.cs) against
// References/GroupNormReference.cs.
using Edm.Autograd;

namespace Edm.Verification;

/// <summary>Cases of group norm.</summary>
public sealed class GroupNormGradCases : IGradCases
{
    /// <inheritdoc/>
    public IReadOnlyDictionary<string, GradCase> Cases()
    {
        var c = new Dictionary<string, GradCase>();
        foreach (var (b, ch, h, w, groups) in new[] { (1, 6, 5, 1, 3), (2, 4, 2, 3, 1) })  // few (B, G) groups: the ILGPU CPU accelerator runs barrier kernels slowly
        {
            const float eps = 1e-5f;
            int hw = h * w;
            // x (B, C, H, W), weight and bias (C)
            c[$"group_norm ({b},{ch},{h},{w}) G{groups}"] = new([[b, ch, h, w], [ch], [ch]], v => Fn.GroupNorm(v[0], groups, v[1], v[2], eps),
                x => new RefTensor(GroupNormReference.Forward(x[0].Data, b, ch, hw, groups, x[1].Data, x[2].Data, eps).Y, [b, ch, h, w]),
                (x, g) =>
                {
                    var (dx, dwt, dbs) = GroupNormReference.Backward(x[0].Data, g.Data, b, ch, hw, groups, x[1].Data, eps);
                    return [new(dx, [b, ch, h, w]), new(dwt, [ch]), new(dbs, [ch])];
                });
            // The fused SiLU(group norm): reference u = GroupNorm(x), y = u sigmoid(u), gu = g silu'(u).
            c[$"group_norm_silu ({b},{ch},{h},{w}) G{groups}"] = new([[b, ch, h, w], [ch], [ch]], v => Fn.GroupNormSilu(v[0], groups, v[1], v[2], eps),
                x => new RefTensor(GroupNormReference.Forward(x[0].Data, b, ch, hw, groups, x[1].Data, x[2].Data, eps).Y.Select(u => u / (1 + Math.Exp(-u))).ToArray(), [b, ch, h, w]),
                (x, g) =>
                {
                    var u = GroupNormReference.Forward(x[0].Data, b, ch, hw, groups, x[1].Data, x[2].Data, eps).Y;
                    var gu = new double[u.Length];
                    for (int i = 0; i < u.Length; i++)
                    {
                        double sg = 1 / (1 + Math.Exp(-u[i]));
                        gu[i] = g.Data[i] * sg * (1 + u[i] * (1 - sg));
                    }
                    var (dx, dwt, dbs) = GroupNormReference.Backward(x[0].Data, gu, b, ch, hw, groups, x[1].Data, eps);
                    return [new(dx, [b, ch, h, w]), new(dwt, [ch]), new(dbs, [ch])];
                });
        }
        {
            // SiLU(GroupNorm(x + e)) with the per-(n, c) addend e (N, C, 1, 1): the U-Net blocks' embedding add.
            int b = 2, ch = 6, h = 3, w = 2, groups = 3, hw = h * w;
            const float eps = 1e-5f;
            c[$"group_norm_silu+addend ({b},{ch},{h},{w}) G{groups}"] = new([[b, ch, h, w], [ch], [ch], [b, ch, 1, 1]],
                v => Fn.GroupNormSilu(v[0], groups, v[1], v[2], eps, v[3]),
                x => new RefTensor(GroupNormReference.SiluAddend(x[0].Data, x[3].Data, new double[b * ch * hw], b, ch, hw, groups, x[1].Data, x[2].Data, eps).Y, [b, ch, h, w]),
                (x, g) =>
                {
                    var r = GroupNormReference.SiluAddend(x[0].Data, x[3].Data, g.Data, b, ch, hw, groups, x[1].Data, x[2].Data, eps);
                    return [new(r.Dx, [b, ch, h, w]), new(r.DWeight, [ch]), new(r.DBias, [ch]), new(r.DAddend, [b, ch, 1, 1])];
                });
        }
        return c;
    }
}

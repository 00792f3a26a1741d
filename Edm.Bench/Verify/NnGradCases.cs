// Gradient-check cases of the NN tape ops (Edm.Autograd/Ops/LinearFn, ConvFn, GroupNormFn,
// AttentionFn, PermuteFn) against the NN kernels' float64 references (Edm.Bench/Reference/),
// run by `verify` (family autograd) and Edm.Tests/Autograd/GradCheckTests.cs. Odd sizes throughout.
using Edm.Autograd;
using Edm.Bench.Reference;
using Edm.Kernels;

namespace Edm.Bench.Verify;

/// <summary>Cases of the NN ops.</summary>
public sealed class NnGradCases : IGradCases
{
    /// <inheritdoc/>
    public IReadOnlyDictionary<string, GradCase> Cases()
    {
        var c = new Dictionary<string, GradCase>();
        foreach (var (n, inF, outF) in new[] { (5, 7, 3), (1, 1, 1), (9, 16, 33) })
        {
            // x (N, in), W (out, in), b (out)
            c[$"linear ({n},{inF})->{outF}"] = new([[n, inF], [outF, inF], [outF]], v => Fn.Linear(v[0], v[1], v[2]),
                x => new RefTensor(GemmReference.Linear(x[0].Data, x[1].Data, x[2].Data, n, inF, outF), [n, outF]),
                (x, g) =>
                {
                    var (dx, dw, db) = GemmReference.LinearBackward(x[0].Data, x[1].Data, g.Data, n, inF, outF);
                    return [new(dx, [n, inF]), new(dw, [outF, inF]), new(db, [outF])];
                });
        }
        c["linear no bias"] = new([[4, 6], [5, 6]], v => Fn.Linear(v[0], v[1]),
            x => new RefTensor(GemmReference.Linear(x[0].Data, x[1].Data, null, 4, 6, 5), [4, 5]),
            (x, g) =>
            {
                var (dx, dw, _) = GemmReference.LinearBackward(x[0].Data, x[1].Data, g.Data, 4, 6, 5);
                return [new(dx, [4, 6]), new(dw, [5, 6])];
            });
        foreach (var (b, cin, h, w, cout, k) in new[] { (2, 3, 5, 4, 4, 3), (1, 2, 3, 3, 3, 1), (1, 1, 6, 7, 2, 3) })
        {
            int pad = k / 2;  // stride 1, same padding
            // x (B, Cin, H, W), w (Cout, Cin, k, k), b (Cout) -> y (B, Cout, H, W)
            c[$"conv2d k{k} ({b},{cin},{h},{w})->{cout}"] = new([[b, cin, h, w], [cout, cin, k, k], [cout]], v => Fn.Conv2d(v[0], v[1], v[2]),
                x => new RefTensor(Conv2dReference.Forward(x[0].Data, x[1].Data, x[2].Data, b, cin, h, w, cout, k, pad), [b, cout, h, w]),
                (x, g) =>
                {
                    var (dx, dw, db) = Conv2dReference.Backward(x[0].Data, x[1].Data, g.Data, b, cin, h, w, cout, k, pad);
                    return [new(dx, [b, cin, h, w]), new(dw, [cout, cin, k, k]), new(db, [cout])];
                });
        }
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
        }
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
        foreach (var (shape, perm) in new[] { (new[] { 2, 3, 4 }, new[] { 2, 0, 1 }), (new[] { 3, 1, 5, 2 }, new[] { 0, 2, 1, 3 }) })
            c[$"permute {Shapes.Format(shape)} [{string.Join(",", perm)}]"] = new([shape], v => Fn.Permute(v[0], perm),
                x => Permute(x[0], perm), (x, g) => [Permute(g, Inverse(perm))]);
        return c;
    }

    static int[] Inverse(int[] perm)
    {
        var inv = new int[perm.Length];
        for (int i = 0; i < perm.Length; i++) inv[perm[i]] = i;
        return inv;
    }

    /// <summary>y[i_0..] = x[i_{perm^-1}..]: output dimension j is input dimension perm[j].</summary>
    static RefTensor Permute(RefTensor x, int[] perm)
    {
        int r = x.Shape.Length;
        var outShape = perm.Select(p => x.Shape[p]).ToArray();
        var inStrides = Shapes.ContiguousStrides(x.Shape);
        var y = RefTensor.Zeros(outShape);
        var idx = new int[r];
        for (int o = 0; o < y.Length; o++)
        {
            int rem = o, off = 0;
            for (int j = r - 1; j >= 0; j--) { idx[j] = rem % outShape[j]; rem /= outShape[j]; }
            for (int j = 0; j < r; j++) off += idx[j] * inStrides[perm[j]];
            y.Data[o] = x.Data[off];
        }
        return y;
    }
}

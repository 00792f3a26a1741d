// Gradient-check cases of the layout tape ops (Edm.Autograd/Ops/LayoutFn.cs, PermuteFn.cs):
// reshape, concat, slice and permute. They have no arithmetic, so each is checked on random data
// where a wrong gradient layout shows as a wrong element.
using Edm.Autograd;
using Edm.Kernels;
using R = Edm.Verification.AutogradReference;

namespace Edm.Verification;

/// <summary>Cases of reshape, concat, slice and permute.</summary>
public sealed class LayoutGradCases : IGradCases
{
    /// <inheritdoc/>
    public IReadOnlyDictionary<string, GradCase> Cases()
    {
        var c = new Dictionary<string, GradCase>();
        // Reshape composed with a product so that a wrong gradient layout shows.
        c["reshape"] = new([[3, 4, 5], [12, 5]], v => Fn.Mul(Fn.Reshape(v[0], 12, -1), v[1]),
            x => R.Binary(new RefTensor(x[0].Data, [12, 5]), x[1], (a, b) => a * b),
            (x, g) => { var r = R.BinaryBackward(new RefTensor(x[0].Data, [12, 5]), x[1], g, (a, b) => b, (a, b) => a); return [new RefTensor(r[0].Data, [3, 4, 5]), r[1]]; });
        c["concat axis1"] = new([[2, 3, 4], [2, 1, 4], [2, 5, 4]], v => Fn.Concat(1, v), x => R.Concat(1, x), (x, g) => R.ConcatBackward(1, x, g));
        c["concat axis0"] = new([[1, 3], [4, 3]], v => Fn.Concat(0, v), x => R.Concat(0, x), (x, g) => R.ConcatBackward(0, x, g));
        c["slice axis1"] = new([[3, 9, 2]], v => Fn.Slice(v[0], 1, 2, 5), x => R.Slice(x[0], 1, 2, 5), (x, g) => [R.SliceBackward(x[0], 1, 2, g)]);
        c["slice last"] = new([[4, 7]], v => Fn.Slice(v[0], -1, 6, 1), x => R.Slice(x[0], 1, 6, 1), (x, g) => [R.SliceBackward(x[0], 1, 6, g)]);
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

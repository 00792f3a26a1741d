// verify rows for GroupNorm (Edm.Kernels/GroupNorm.cs): the float32 op (CPU fast path or ILGPU kernel,
// whichever the device runs) against the float64 reference in Edm.Verification/References/GroupNormReference.cs.
// Odd shapes, small enough for the ILGPU kernels on the CPU accelerator (verify --no-fast-paths);
// larger ones added on a GPU.
using Edm.Verification;
using Edm.Kernels;

namespace Edm.Verification;

/// <summary>Group norm forward and backward.</summary>
public sealed class GroupNormVerify : IVerifySuite
{
    /// <inheritdoc/>
    public string Family => "groupnorm";

    /// <inheritdoc/>
    public IEnumerable<VerifyRow> Run(EdmDevice d)
    {
        foreach (var row in Check(d, 2, 40, 8, 9, 7)) yield return row;
        foreach (var row in Check(d, 1, 3, 1, 1, 1)) yield return row;
        if (!d.IsCpu) foreach (var row in Check(d, 8, 256, 32, 16, 16)) yield return row;
        foreach (var row in CheckSiluAddend(d, 3, 12, 4, 5, 7)) yield return row;
    }

    /// <summary>SiLU(GroupNorm(x + addend)) with a per-(n, c) addend (the U-Net blocks' embedding add), forward and backward.</summary>
    public static IEnumerable<VerifyRow> CheckSiluAddend(EdmDevice d, int n, int c, int g, int h, int w)
    {
        int hw = h * w;
        const float eps = 1e-5f;
        var x = Compare.Random(n * c * hw, 5, -3, 5);
        var e = Compare.Random(n * c, 6, -4, 4);
        var gy = Compare.Random(n * c * hw, 7);
        var wt = Compare.Random(c, 8, 0.5, 1.5);
        var bs = Compare.Random(c, 9);
        using var tx = Tensor.FromArray(d, x, n, c, h, w);
        using var te = Tensor.FromArray(d, e, n, c, 1, 1);
        using var tg = Tensor.FromArray(d, gy, n, c, h, w);
        using var tw = Tensor.FromArray(d, wt, c);
        using var tb = Tensor.FromArray(d, bs, c);
        var o = Ops.GroupNormSiluForward(tx, g, tw, tb, eps, te);
        var gr = Ops.GroupNormSiluBackward(tx, tg, o.Mean, o.Rstd, g, tw, tb, eps, te);
        static double[] D(float[] a) => Array.ConvertAll(a, v => (double)v);
        var r = GroupNormReference.SiluAddend(D(x), D(e), D(gy), n, c, hw, g, D(wt), D(bs), eps);
        string shape = $"{Shapes.Format([n, c, h, w])} G={g} addend {Shapes.Format([n, c, 1, 1])}";
        var rows = new[]
        {
            Compare.Row("groupnorm_silu+addend", shape, o.Y.ToArray(), r.Y, 1e-5),
            Compare.Row("groupnorm_silu+addend_backward dx", shape, gr.Dx.ToArray(), r.Dx, 1e-4),
            Compare.Row("groupnorm_silu+addend_backward dweight", shape, gr.DWeight.ToArray(), r.DWeight, 1e-5 * Math.Sqrt(n * hw)),
            Compare.Row("groupnorm_silu+addend_backward dbias", shape, gr.DBias.ToArray(), r.DBias, 1e-5 * Math.Sqrt(n * hw)),
            Compare.Row("groupnorm_silu+addend_backward daddend", shape, gr.DAddend!.ToArray(), r.DAddend, 1e-4 * Math.Sqrt(hw)),
        };
        foreach (var t in new[] { o.Y, o.Mean, o.Rstd, gr.Dx, gr.DWeight, gr.DBias, gr.DAddend! }) t.Dispose();
        return rows;
    }

    /// <summary>Forward y, backward dx, dweight, dbias for x (n, c, h, w), groups g.</summary>
    public static IEnumerable<VerifyRow> Check(EdmDevice d, int n, int c, int g, int h, int w)
    {
        int hw = h * w;
        const float eps = 1e-5f;
        var x = Compare.Random(n * c * hw, 1, -3, 5);
        var gy = Compare.Random(n * c * hw, 2);
        var wt = Compare.Random(c, 3, 0.5, 1.5);
        var bs = Compare.Random(c, 4);
        using var tx = Tensor.FromArray(d, x, n, c, h, w);
        using var tg = Tensor.FromArray(d, gy, n, c, h, w);
        using var tw = Tensor.FromArray(d, wt, c);
        using var tb = Tensor.FromArray(d, bs, c);
        var o = Ops.GroupNormForward(tx, g, tw, tb, eps);
        var gr = Ops.GroupNormBackward(tx, tg, o.Mean, o.Rstd, g, tw);
        static double[] D(float[] a) => Array.ConvertAll(a, v => (double)v);
        var (y, _, _) = GroupNormReference.Forward(D(x), n, c, hw, g, D(wt), D(bs), eps);
        var (dx, dw, db) = GroupNormReference.Backward(D(x), D(gy), n, c, hw, g, D(wt), eps);
        string shape = $"{Shapes.Format([n, c, h, w])} G={g}";
        var rows = new[]
        {
            Compare.Row("groupnorm", shape, o.Y.ToArray(), y, 1e-5),
            Compare.Row("groupnorm_backward dx", shape, gr.Dx.ToArray(), dx, 1e-4),
            // Sums over N*H*W elements: float32 accumulation error grows with the count.
            Compare.Row("groupnorm_backward dweight", shape, gr.DWeight.ToArray(), dw, 1e-5 * Math.Sqrt(n * hw)),
            Compare.Row("groupnorm_backward dbias", shape, gr.DBias.ToArray(), db, 1e-5 * Math.Sqrt(n * hw)),
        };
        foreach (var t in new[] { o.Y, o.Mean, o.Rstd, gr.Dx, gr.DWeight, gr.DBias }) t.Dispose();
        return rows;
    }
}

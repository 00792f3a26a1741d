// verify rows for Attention (Edm.Kernels/Attention.cs): the float32 op (CPU fast path or ILGPU kernel,
// whichever the device runs) against the float64 reference in Edm.Verification/References/AttentionReference.cs.
// Odd shapes, small enough for the ILGPU kernels on the CPU accelerator (verify --no-fast-paths);
// larger ones added on a GPU.
using Edm.Verification;
using Edm.Kernels;

namespace Edm.Verification;

/// <summary>Attention forward (o, lse) and backward (dq, dk, dv).</summary>
public sealed class AttentionVerify : IVerifySuite
{
    /// <inheritdoc/>
    public string Family => "attention";

    /// <inheritdoc/>
    public IEnumerable<VerifyRow> Run(EdmDevice d)
    {
        foreach (var row in Check(d, 2, 70, 41, 16, 1)) yield return row;
        foreach (var row in Check(d, 1, 19, 33, 100, 1)) yield return row;
        foreach (var row in Check(d, 1, 9, 40, 8, 100)) yield return row; // logits ~ +-300
        foreach (var row in CheckQkv(d, 2, 16, 33, 1)) yield return row;
        foreach (var row in CheckQkv(d, 1, 8, 40, 10)) yield return row;  // logits ~ +-280
        if (!d.IsCpu)
        {
            foreach (var row in Check(d, 4, 256, 256, 256, 1)) yield return row;
            foreach (var row in Check(d, 2, 1024, 1024, 64, 1)) yield return row;
            // The GPU runs the GEMM path by default: the flash-style tiles keep rows of their own.
            Ops.AttentionViaGemms = false;
            try
            {
                foreach (var row in Check(d, 2, 70, 41, 16, 1)) yield return row with { Name = row.Name + " flash" };
                foreach (var row in Check(d, 4, 256, 256, 256, 1)) yield return row with { Name = row.Name + " flash" };
            }
            finally { Ops.AttentionViaGemms = null; }
        }
        else if (!d.CpuFastPaths)
        {
            // verify --no-fast-paths: the GPU's GEMM path on the CPU accelerator too.
            Ops.AttentionViaGemms = true;
            try
            {
                foreach (var row in Check(d, 2, 70, 41, 16, 1)) yield return row with { Name = row.Name + " gemms" };
            }
            finally { Ops.AttentionViaGemms = null; }
        }
    }

    /// <summary>q (bh, nq, d) with entries in [-qRange, qRange]; k, v (bh, nk, d) in [-1, 1].</summary>
    public static IEnumerable<VerifyRow> Check(EdmDevice dev, int bh, int nq, int nk, int d, double qRange)
    {
        var q = Compare.Random(bh * nq * d, 7, -qRange, qRange);
        var k = Compare.Random(bh * nk * d, 8);
        var v = Compare.Random(bh * nk * d, 9);
        var g = Compare.Random(bh * nq * d, 10);
        using var tq = Tensor.FromArray(dev, q, bh, nq, d);
        using var tk = Tensor.FromArray(dev, k, bh, nk, d);
        using var tv = Tensor.FromArray(dev, v, bh, nk, d);
        using var tg = Tensor.FromArray(dev, g, bh, nq, d);
        var o = Ops.AttentionForward(tq, tk, tv);
        var gr = Ops.AttentionBackward(tq, tk, tv, o.O, o.Lse, tg);
        static double[] D(float[] a) => Array.ConvertAll(a, x => (double)x);
        double scale = 1 / Math.Sqrt(d);
        var (oRef, lseRef) = AttentionReference.Forward(D(q), D(k), D(v), bh, nq, nk, d, scale);
        var (dq, dk, dv) = AttentionReference.Backward(D(q), D(k), D(v), D(g), bh, nq, nk, d, scale);
        string shape = $"q {Shapes.Format([bh, nq, d])} k {Shapes.Format([bh, nk, d])}" + (qRange > 1 ? $" |q|<={qRange}" : "");
        // Gradients through large logits scale with them (dS K carries the factor scale*|q|).
        double gradTol = 2e-4 * Math.Max(1, qRange);
        var rows = new[]
        {
            Compare.Row("attention o", shape, o.O.ToArray(), oRef, 2e-5),
            Compare.Row("attention lse", shape, o.Lse.ToArray(), lseRef, 2e-5),
            Compare.Row("attention_backward dq", shape, gr.DQ.ToArray(), dq, gradTol),
            Compare.Row("attention_backward dk", shape, gr.DK.ToArray(), dk, gradTol),
            Compare.Row("attention_backward dv", shape, gr.DV.ToArray(), dv, 2e-5),
        };
        foreach (var t in new[] { o.O, o.Lse, gr.DQ, gr.DK, gr.DV }) t.Dispose();
        return rows;
    }
    /// <summary>The packed layout (QkvAttention): qkv (bh, d, 3, n) with entries in [-range, range].</summary>
    public static IEnumerable<VerifyRow> CheckQkv(EdmDevice dev, int bh, int d, int n, double range)
    {
        var x = Compare.Random(bh * d * 3 * n, 11, -range, range);
        var g = Compare.Random(bh * d * n, 12);
        using var tx = Tensor.FromArray(dev, x, bh, d, 3, n);
        using var tg = Tensor.FromArray(dev, g, bh, d, n);
        var o = Ops.QkvAttentionForward(tx);
        using var dx = Ops.QkvAttentionBackward(tx, o.O, o.Lse, tg);
        var xd = Array.ConvertAll(x, v => (double)v);
        double scale = 1 / Math.Sqrt(d);
        var (oRef, lseRef) = AttentionReference.QkvForward(xd, bh, d, n, scale);
        var dRef = AttentionReference.QkvBackward(xd, Array.ConvertAll(g, v => (double)v), bh, d, n, scale);
        string shape = $"qkv {Shapes.Format([bh, d, 3, n])}" + (range > 1 ? $" |x|<={range}" : "");
        var rows = new[]
        {
            Compare.Row("qkv_attention o", shape, o.O.ToArray(), oRef, 2e-5 * range),
            Compare.Row("qkv_attention lse", shape, o.Lse.ToArray(), lseRef, 2e-5 * range),
            Compare.Row("qkv_attention_backward dqkv", shape, dx.ToArray(), dRef, 2e-4 * range * range),
        };
        o.O.Dispose(); o.Lse.Dispose();
        return rows;
    }
}

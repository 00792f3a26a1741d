// kernels-bench cases for attention (Edm.Kernels/Attention.cs): (B*heads, N, d) = (64, 256, 256)
// and (64, 1024, 64) (--quick: B*heads 4); forward, and forward + backward.
// FLOPs: forward 4 BH N^2 d (QK^T and PV); the backward counted as 2.5x the forward (dV, dP, dQ,
// dK and the recomputed S), so forward + backward = 14 BH N^2 d. Bytes: q, k, v read and o written
// (forward); q, k, v, o, dO read and dq, dk, dv written (backward).
// Baseline: CPU: the same algorithm as scalar C# loops (Parallel.For over query rows; backward with
// P and dS of one head stored, then Parallel.For over key rows); GPU: a device-to-device copy of
// the same bytes.
// qkv_attention / qkv_attention_fwd_bwd: the U-Nets' packed layout (QkvAttention), qkv (B*heads, d,
// 3, N) at (bh, 32, 256) (ddpmpp-tiny at 32x32) and (bh, 256, 256) (DDPM++ CIFAR-10 at 16x16);
// baseline on every device: what the networks ran before, Permute to (3, B*heads, N, d), the
// (..., N, d) attention on views of it, and the output (and the gradients) permuted back.
using Edm.Kernels;

namespace Edm.Bench.Perf;

/// <summary>Attention bench cases.</summary>
public sealed class AttentionBench : IKernelBench
{
    /// <inheritdoc/>
    public IReadOnlyList<string> Ops { get; } = ["attention", "attention_fwd_bwd", "qkv_attention", "qkv_attention_fwd_bwd"];

    /// <inheritdoc/>
    public IEnumerable<BenchCase> Cases(EdmDevice d, string op, bool quick)
    {
        int bh = BenchShapes.BatchFor(quick);
        if (op.StartsWith("qkv_", StringComparison.Ordinal))
        {
            foreach (var hd in new[] { 32, 256 }) yield return QkvCase(d, op, bh, 256, hd, quick);
            yield break;
        }
        foreach (var (n, hd) in new[] { (256, 256), (1024, 64) })
            yield return Case(d, op, bh, n, hd, quick);
    }

    static BenchCase Case(EdmDevice dev, string op, int bh, int n, int d, bool quick)
    {
        bool backward = op == "attention_fwd_bwd";
        var q = Tensor.Empty(dev, bh, n, d);
        var k = Tensor.Empty(dev, bh, n, d);
        var v = Tensor.Empty(dev, bh, n, d);
        var g = Tensor.Empty(dev, bh, n, d);
        Kernels.Ops.Normal(q, 1); Kernels.Ops.Normal(k, 2); Kernels.Ops.Normal(v, 3); Kernels.Ops.Normal(g, 4);
        Action ours = () =>
        {
            var o = Kernels.Ops.AttentionForward(q, k, v);
            if (backward)
            {
                var gr = Kernels.Ops.AttentionBackward(q, k, v, o.O, o.Lse, g);
                gr.DQ.Dispose(); gr.DK.Dispose(); gr.DV.Dispose();
            }
            o.O.Dispose(); o.Lse.Dispose();
        };
        double elems = (double)bh * n * d, fwdFlops = 4.0 * bh * n * (double)n * d;
        double bytes = backward ? 4 * 12 * elems : 4 * 4 * elems;
        double flops = backward ? 3.5 * fwdFlops : fwdFlops;
        string baseline;
        Action runBaseline;
        IDisposable resources;
        if (dev.IsCpu)
        {
            var hq = q.ToArray(); var hk = k.ToArray(); var hv = v.ToArray(); var hg = g.ToArray();
            runBaseline = () => PlainAttention(hq, hk, hv, hg, bh, n, d, backward);
            baseline = Baselines.CSharp;
            resources = new Baselines.Disposables(q, k, v, g);
        }
        else
        {
            var (copy, bufs) = Baselines.DeviceCopy(dev, bytes);
            runBaseline = copy;
            baseline = Baselines.Copy;
            resources = new Baselines.Disposables(q, k, v, g, bufs);
        }
        return new BenchCase(op, Shapes.Format([bh, n, d]), bytes, flops, ours, baseline, runBaseline, resources, BenchShapes.Note(quick));
    }

    static BenchCase QkvCase(EdmDevice dev, string op, int bh, int n, int d, bool quick)
    {
        bool backward = op == "qkv_attention_fwd_bwd";
        var qkv = Tensor.Empty(dev, bh, d, 3, n);
        var g = Tensor.Empty(dev, bh, d, n);
        Kernels.Ops.Normal(qkv, 1); Kernels.Ops.Normal(g, 2);
        Action ours = () =>
        {
            var o = Kernels.Ops.QkvAttentionForward(qkv);
            if (backward) Kernels.Ops.QkvAttentionBackward(qkv, o.O, o.Lse, g).Dispose();
            o.O.Dispose(); o.Lse.Dispose();
        };
        Action permuted = () =>
        {
            using var t = Kernels.Ops.Permute(qkv, 2, 0, 3, 1);
            using var t0 = t.Narrow0(0, 1);
            using var t1 = t.Narrow0(1, 1);
            using var t2 = t.Narrow0(2, 1);
            using var q = t0.Reshape(bh, n, d);
            using var k = t1.Reshape(bh, n, d);
            using var v = t2.Reshape(bh, n, d);
            var o = Kernels.Ops.AttentionForward(q, k, v);
            using var oT = Kernels.Ops.Permute(o.O, 0, 2, 1);
            if (backward)
            {
                using var gT = Kernels.Ops.Permute(g, 0, 2, 1);
                var gr = Kernels.Ops.AttentionBackward(q, k, v, o.O, o.Lse, gT);
                using var stacked = Kernels.Ops.Concat(0, gr.DQ, gr.DK, gr.DV);
                using var s4 = stacked.Reshape(3, bh, n, d);
                using var dqkv = Kernels.Ops.Permute(s4, 1, 3, 0, 2);
                gr.DQ.Dispose(); gr.DK.Dispose(); gr.DV.Dispose();
            }
            o.O.Dispose(); o.Lse.Dispose();
        };
        double elems = (double)bh * n * d, fwdFlops = 4.0 * bh * n * (double)n * d;
        double bytes = backward ? 4 * 12 * elems : 4 * 4 * elems;
        double flops = backward ? 3.5 * fwdFlops : fwdFlops;
        return new BenchCase(op, Shapes.Format([bh, d, 3, n]), bytes, flops, ours, "permute+attention", permuted,
            new Baselines.Disposables(qkv, g), BenchShapes.Note(quick));
    }

    /// Scalar C# attention, forward (and backward) over (bh, n, d) self-attention inputs.
    static void PlainAttention(float[] q, float[] k, float[] v, float[] g, int bh, int n, int d, bool backward)
    {
        float scale = 1f / MathF.Sqrt(d);
        var o = new float[bh * n * d];
        var lse = new float[bh * n];
        BenchShapes.Par(bh * n, (r0, r1) =>
        {
            var p = new float[n];
            for (int row = r0; row < r1; row++)
            {
                int h = row / n;
                float m = float.NegativeInfinity;
                for (int j = 0; j < n; j++)
                {
                    float s = 0f;
                    for (int c = 0; c < d; c++) s += q[row * d + c] * k[(h * n + j) * d + c];
                    p[j] = s * scale;
                    m = MathF.Max(m, p[j]);
                }
                float l = 0f;
                for (int j = 0; j < n; j++) l += p[j] = MathF.Exp(p[j] - m);
                for (int j = 0; j < n; j++)
                    for (int c = 0; c < d; c++) o[row * d + c] += p[j] / l * v[(h * n + j) * d + c];
                lse[row] = m + MathF.Log(l);
            }
        });
        if (!backward) return;
        var dq = new float[bh * n * d]; var dk = new float[bh * n * d]; var dv = new float[bh * n * d];
        var pm = new float[n * n]; var dsm = new float[n * n];
        for (int h = 0; h < bh; h++)
        {
            BenchShapes.Par(n, (i0, i1) =>
            {
                for (int i = i0; i < i1; i++)
                {
                    int row = h * n + i;
                    float di = 0f;
                    for (int c = 0; c < d; c++) di += g[row * d + c] * o[row * d + c];
                    for (int j = 0; j < n; j++)
                    {
                        float s = 0f, dp = 0f;
                        for (int c = 0; c < d; c++) { s += q[row * d + c] * k[(h * n + j) * d + c]; dp += g[row * d + c] * v[(h * n + j) * d + c]; }
                        float pij = MathF.Exp(s * scale - lse[row]);
                        pm[i * n + j] = pij;
                        dsm[i * n + j] = pij * (dp - di);
                        for (int c = 0; c < d; c++) dq[row * d + c] += scale * dsm[i * n + j] * k[(h * n + j) * d + c];
                    }
                }
            });
            BenchShapes.Par(n, (j0, j1) =>
            {
                for (int i = 0; i < n; i++)
                    for (int j = j0; j < j1; j++)
                        for (int c = 0; c < d; c++)
                        {
                            dv[(h * n + j) * d + c] += pm[i * n + j] * g[(h * n + i) * d + c];
                            dk[(h * n + j) * d + c] += scale * dsm[i * n + j] * q[(h * n + i) * d + c];
                        }
            });
        }
    }
}

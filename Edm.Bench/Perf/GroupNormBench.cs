// kernels-bench cases for group norm (Edm.Kernels/GroupNorm.cs): (B, 128, 32, 32) and
// (B, 256, 16, 16) with 32 groups, B = 64 (--quick: 4); forward, and forward + backward.
// Bytes: the minimum traffic (forward reads x, writes y; backward reads x and gy, writes dx).
// Baseline: CPU: the same two-pass algorithm as scalar C# loops, Parallel.For over (n, g) blocks;
// GPU: a device-to-device copy of the same bytes.
// groupnorm_silu / groupnorm_silu_fwd_bwd: the fused SiLU(group norm) (Ops.GroupNormSiluForward /
// Backward) against the unfused pair it replaces in the networks (group norm, then a SiLU map;
// backward: the SiLU gradient map, then the group-norm backward), timed in the same run on any
// device. Bytes: the fused op's minimum traffic, as above.
// groupnorm_silu_addend / groupnorm_silu_addend_fwd_bwd: SiLU(GroupNorm(x + e)) with e (N, C), the
// U-Net blocks' embedding add, against what the blocks ran before: Ops.Add with broadcasting, then
// the fused op (backward: the fused backward, then dAddend as the per-channel sum of dx).
using Edm.Kernels;

namespace Edm.Bench.Perf;

/// <summary>Group-norm bench cases.</summary>
public sealed class GroupNormBench : IKernelBench
{
    /// <inheritdoc/>
    public IReadOnlyList<string> Ops { get; } = ["groupnorm", "groupnorm_fwd_bwd", "groupnorm_silu", "groupnorm_silu_fwd_bwd",
        "groupnorm_silu_addend", "groupnorm_silu_addend_fwd_bwd"];

    /// <summary>The baseline name of the fused rows: our own unfused pair.</summary>
    public const string UnfusedPair = "unfused-norm-then-silu";

    /// <inheritdoc/>
    public IEnumerable<BenchCase> Cases(EdmDevice d, string op, bool quick)
    {
        int b = BenchShapes.BatchFor(quick);
        foreach (var (c, hw) in new[] { (128, 32), (256, 16) })
            yield return Case(d, op, b, c, hw, hw, 32, quick);
    }

    static BenchCase Case(EdmDevice d, string op, int n, int c, int h, int w, int g, bool quick)
    {
        if (op.StartsWith("groupnorm_silu_addend", StringComparison.Ordinal)) return AddendCase(d, op, n, c, h, w, g, quick);
        if (op.StartsWith("groupnorm_silu", StringComparison.Ordinal)) return SiluCase(d, op, n, c, h, w, g, quick);
        bool backward = op == "groupnorm_fwd_bwd";
        int count = n * c * h * w, hw = h * w, len = c / g * hw;
        const float eps = 1e-5f;
        var (x, gy, wt, bs) = Inputs(d, n, c, h, w);
        Action ours = () =>
        {
            var o = Kernels.Ops.GroupNormForward(x, g, wt, bs, eps);
            if (backward)
            {
                var gr = Kernels.Ops.GroupNormBackward(x, gy, o.Mean, o.Rstd, g, wt);
                gr.Dx.Dispose(); gr.DWeight.Dispose(); gr.DBias.Dispose();
            }
            o.Y.Dispose(); o.Mean.Dispose(); o.Rstd.Dispose();
        };
        double bytes = backward ? 20.0 * count : 8.0 * count;
        double flops = backward ? 20.0 * count : 8.0 * count;
        string baseline;
        Action runBaseline;
        IDisposable resources;
        if (d.IsCpu)
        {
            var hx = x.ToArray(); var hg = gy.ToArray(); var hw8 = wt.ToArray(); var hb = bs.ToArray();
            var hy = new float[count]; var hdx = new float[count];
            var mean = new float[n * g]; var rstd = new float[n * g];
            var pw = new float[n * c]; var pb = new float[n * c];
            var dw = new float[c]; var db = new float[c];
            runBaseline = () =>
            {
                BenchShapes.Par(n * g, (s, e) =>
                {
                    for (int blk = s; blk < e; blk++)
                    {
                        int o = blk * len, c0 = blk % g * (c / g);
                        float mu = 0f;
                        for (int j = 0; j < len; j++) mu += hx[o + j];
                        mu /= len;
                        float v = 0f;
                        for (int j = 0; j < len; j++) v += (hx[o + j] - mu) * (hx[o + j] - mu);
                        float r = 1f / MathF.Sqrt(v / len + eps);
                        mean[blk] = mu; rstd[blk] = r;
                        for (int j = 0; j < len; j++) { int ch = c0 + j / hw; hy[o + j] = (hx[o + j] - mu) * r * hw8[ch] + hb[ch]; }
                    }
                });
                if (!backward) return;
                BenchShapes.Par(n * g, (s, e) =>
                {
                    for (int blk = s; blk < e; blk++)
                    {
                        int o = blk * len, c0 = blk % g * (c / g), bn = blk / g;
                        float mu = mean[blk], r = rstd[blk], s1 = 0f, s2 = 0f;
                        for (int j = 0; j < len; j++)
                        {
                            int ch = c0 + j / hw;
                            float xhat = (hx[o + j] - mu) * r, dyhat = hg[o + j] * hw8[ch];
                            s1 += dyhat; s2 += dyhat * xhat;
                            pw[bn * c + ch] += hg[o + j] * xhat; pb[bn * c + ch] += hg[o + j];
                        }
                        for (int j = 0; j < len; j++)
                        {
                            int ch = c0 + j / hw;
                            float xhat = (hx[o + j] - mu) * r;
                            hdx[o + j] = r * (hg[o + j] * hw8[ch] - s1 / len - xhat * s2 / len);
                        }
                    }
                });
                for (int ch = 0; ch < c; ch++)
                {
                    float aw = 0f, ab = 0f;
                    for (int bn = 0; bn < n; bn++) { aw += pw[bn * c + ch]; ab += pb[bn * c + ch]; pw[bn * c + ch] = pb[bn * c + ch] = 0f; }
                    dw[ch] = aw; db[ch] = ab;
                }
            };
            baseline = Baselines.CSharp;
            resources = new Baselines.Disposables(x, gy, wt, bs);
        }
        else
        {
            var (copy, bufs) = Baselines.DeviceCopy(d, bytes);
            runBaseline = copy;
            baseline = Baselines.Copy;
            resources = new Baselines.Disposables(x, gy, wt, bs, bufs);
        }
        return new BenchCase(op, $"{Shapes.Format([n, c, h, w])} G={g}", bytes, flops, ours, baseline, runBaseline, resources, BenchShapes.Note(quick));
    }

    /// <summary>x and gy (n, c, h, w), weight and bias (c), standard normal with fixed seeds.</summary>
    static (Tensor X, Tensor Gy, Tensor W, Tensor B) Inputs(EdmDevice d, int n, int c, int h, int w)
    {
        var x = Tensor.Empty(d, n, c, h, w);
        var gy = Tensor.Empty(d, n, c, h, w);
        var wt = Tensor.Empty(d, c);
        var bs = Tensor.Empty(d, c);
        Kernels.Ops.Normal(x, 1); Kernels.Ops.Normal(gy, 2); Kernels.Ops.Normal(wt, 3); Kernels.Ops.Normal(bs, 4);
        return (x, gy, wt, bs);
    }

    static BenchCase SiluCase(EdmDevice d, string op, int n, int c, int h, int w, int g, bool quick)
    {
        bool backward = op.EndsWith("_fwd_bwd", StringComparison.Ordinal);
        int count = n * c * h * w;
        const float eps = 1e-5f;
        var (x, gy, wt, bs) = Inputs(d, n, c, h, w);
        Action ours = () =>
        {
            var o = Kernels.Ops.GroupNormSiluForward(x, g, wt, bs, eps);
            if (backward)
            {
                var gr = Kernels.Ops.GroupNormSiluBackward(x, gy, o.Mean, o.Rstd, g, wt, bs, eps);
                gr.Dx.Dispose(); gr.DWeight.Dispose(); gr.DBias.Dispose();
            }
            o.Y.Dispose(); o.Mean.Dispose(); o.Rstd.Dispose();
        };
        Action pair = () =>
        {
            var o = Kernels.Ops.GroupNormForward(x, g, wt, bs, eps);
            using var z = Kernels.Ops.Map(o.Y, new SiluOp(), "Silu");
            if (backward)
            {
                using var gu = Kernels.Ops.Zip(o.Y, gy, new SiluGradOp(), "SiluBackward");
                var gr = Kernels.Ops.GroupNormBackward(x, gu, o.Mean, o.Rstd, g, wt);
                gr.Dx.Dispose(); gr.DWeight.Dispose(); gr.DBias.Dispose();
            }
            o.Y.Dispose(); o.Mean.Dispose(); o.Rstd.Dispose();
        };
        double bytes = backward ? 20.0 * count : 8.0 * count;
        double flops = backward ? 30.0 * count : 12.0 * count;
        return new BenchCase(op, $"{Shapes.Format([n, c, h, w])} G={g}", bytes, flops, ours, UnfusedPair, pair,
            new Baselines.Disposables(x, gy, wt, bs), BenchShapes.Note(quick));
    }
    static BenchCase AddendCase(EdmDevice d, string op, int n, int c, int h, int w, int g, bool quick)
    {
        bool backward = op.EndsWith("_fwd_bwd", StringComparison.Ordinal);
        int count = n * c * h * w;
        const float eps = 1e-5f;
        var (x, gy, wt, bs) = Inputs(d, n, c, h, w);
        var e = Tensor.Empty(d, n, c, 1, 1);
        Kernels.Ops.Normal(e, 5);
        Action ours = () =>
        {
            var o = Kernels.Ops.GroupNormSiluForward(x, g, wt, bs, eps, e);
            if (backward)
            {
                var gr = Kernels.Ops.GroupNormSiluBackward(x, gy, o.Mean, o.Rstd, g, wt, bs, eps, e);
                gr.Dx.Dispose(); gr.DWeight.Dispose(); gr.DBias.Dispose(); gr.DAddend!.Dispose();
            }
            o.Y.Dispose(); o.Mean.Dispose(); o.Rstd.Dispose();
        };
        Action separate = () =>
        {
            using var u = Kernels.Ops.Add(x, e);
            var o = Kernels.Ops.GroupNormSiluForward(u, g, wt, bs, eps);
            if (backward)
            {
                var gr = Kernels.Ops.GroupNormSiluBackward(u, gy, o.Mean, o.Rstd, g, wt, bs, eps);
                using var rows = gr.Dx.Reshape(n * c, h * w);
                using var de = Kernels.Ops.Sum(rows, [1]);
                gr.Dx.Dispose(); gr.DWeight.Dispose(); gr.DBias.Dispose();
            }
            o.Y.Dispose(); o.Mean.Dispose(); o.Rstd.Dispose();
        };
        double bytes = backward ? 20.0 * count : 8.0 * count;
        double flops = backward ? 31.0 * count : 13.0 * count;
        return new BenchCase(op, $"{Shapes.Format([n, c, h, w])} G={g} addend", bytes, flops, ours, "add-then-fused", separate,
            new Baselines.Disposables(x, gy, wt, bs, e), BenchShapes.Note(quick));
    }
}

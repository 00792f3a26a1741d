// kernels-bench cases for batch norm (Edm.Kernels/BatchNorm.cs) at an Inception-v3 shape,
// (B, 192, 35, 35), B = 64 (--quick: 4): "batchnorm" = inference (running statistics; read x,
// write y), "batchnorm_train" = training forward + backward (statistics, y, the backward sums and dx:
// about 5 passes over x-sized tensors). Baseline: CPU: the same passes as plain scalar C# loops with
// Parallel.For over channels / planes; GPU: a device-to-device copy of the same bytes.
using Edm.Kernels;

namespace Edm.Bench.Perf;

/// <summary>Batch-norm bench cases.</summary>
public sealed class BatchNormBench : IKernelBench
{
    /// <inheritdoc/>
    public IReadOnlyList<string> Ops { get; } = ["batchnorm", "batchnorm_train"];

    /// <inheritdoc/>
    public IEnumerable<BenchCase> Cases(EdmDevice d, string op, bool quick)
    {
        int b = BenchShapes.BatchFor(quick), c = 192, hw = 35 * 35;
        bool train = op == "batchnorm_train";
        var x = Tensor.Empty(d, b, c, 35, 35);
        var dy = Tensor.Empty(d, b, c, 35, 35);
        var w = Tensor.Empty(d, c); var bias = Tensor.Empty(d, c); var rm = Tensor.Empty(d, c); var rv = Tensor.Empty(d, c);
        Kernels.Ops.Normal(x, 1); Kernels.Ops.Normal(dy, 2); Kernels.Ops.Normal(w, 3); Kernels.Ops.Normal(bias, 4); Kernels.Ops.Normal(rm, 5);
        Kernels.Ops.Fill(rv, 1.5f);
        int n = x.Length;
        double bytes = 4.0 * (train ? 7.0 * n : 2.0 * n), flops = train ? 14.0 * n : 2.0 * n;
        Action ours = train
            ? () =>
            {
                var o = Kernels.Ops.BatchNormForward(x, w, bias, rm, rv, true, 0.1f, 1e-3f);
                var g = Kernels.Ops.BatchNormBackward(x, dy, o.Mean, o.Rstd, w, true);
                o.Y.Dispose(); o.Mean.Dispose(); o.Rstd.Dispose(); g.Dx.Dispose(); g.DWeight?.Dispose(); g.DBias?.Dispose();
            }
            : () => Kernels.Ops.BatchNorm(x, w, bias, rm, rv, false, 0.1f, 1e-3f).Dispose();
        var owned = new Baselines.Disposables(x, dy, w, bias, rm, rv);
        string shape = $"{Shapes.Format(x.Shape)}";
        if (d.IsCpu)
        {
            var hx = x.ToArray(); var hdy = dy.ToArray(); var hy = new float[n]; var hdx = new float[n];
            var hw_ = w.ToArray(); var hb = bias.ToArray();
            var mean = new float[c]; var rstd = new float[c]; var s1 = new float[c]; var s2 = new float[c];
            Action baseline = () =>
            {
                if (train)
                    Parallel.For(0, c, ch =>
                    {
                        double s = 0, q = 0;
                        for (int i = 0; i < b; i++) for (int j = 0; j < hw; j++) s += hx[(i * c + ch) * hw + j];
                        float mu = (float)(s / (b * hw));
                        for (int i = 0; i < b; i++) for (int j = 0; j < hw; j++) { float e = hx[(i * c + ch) * hw + j] - mu; q += e * e; }
                        mean[ch] = mu; rstd[ch] = 1f / MathF.Sqrt((float)(q / (b * hw)) + 1e-3f);
                    });
                else for (int ch = 0; ch < c; ch++) { mean[ch] = 0f; rstd[ch] = 1f / MathF.Sqrt(1.5f + 1e-3f); }
                BenchShapes.Par(b * c, (p0, p1) =>
                {
                    for (int p = p0; p < p1; p++)
                    {
                        int ch = p % c; float k = rstd[ch] * hw_[ch], mu = mean[ch];
                        for (int j = 0; j < hw; j++) hy[p * hw + j] = (hx[p * hw + j] - mu) * k + hb[ch];
                    }
                });
                if (!train) return;
                Parallel.For(0, c, ch =>
                {
                    float a1 = 0, a2 = 0;
                    for (int i = 0; i < b; i++) for (int j = 0; j < hw; j++) { int k = (i * c + ch) * hw + j; a1 += hdy[k]; a2 += hdy[k] * (hx[k] - mean[ch]); }
                    s1[ch] = a1; s2[ch] = a2 * rstd[ch];
                });
                BenchShapes.Par(b * c, (p0, p1) =>
                {
                    float inv = 1f / (b * hw);
                    for (int p = p0; p < p1; p++)
                    {
                        int ch = p % c; float r = rstd[ch], k = r * hw_[ch], mu = mean[ch];
                        for (int j = 0; j < hw; j++) { int q = p * hw + j; hdx[q] = k * (hdy[q] - inv * (s1[ch] + (hx[q] - mu) * r * s2[ch])); }
                    }
                });
            };
            yield return new BenchCase(op, shape, bytes, flops, ours, Baselines.CSharp, baseline, owned, BenchShapes.Note(quick));
            yield break;
        }
        var (copy, bufs) = Baselines.DeviceCopy(d, bytes);
        yield return new BenchCase(op, shape, bytes, flops, ours, Baselines.Copy, copy, new Baselines.Disposables(owned, bufs), BenchShapes.Note(quick));
    }
}

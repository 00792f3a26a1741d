// kernels-bench cases for the foundation kernels: GELU, SiLU, axpy, add, sum, normal (Philox), permute, concat.
// Sizes: 4M floats (sum: 16M) on the CPU accelerator, 64M on a GPU; --quick divides by 16.
// Baseline: CPU: the same computation as a plain C# Parallel.For loop over managed arrays;
// GPU: a device-to-device copy of the same bytes.
using Edm.Kernels;

namespace Edm.Bench.Perf;

/// <summary>Elementwise and reduction bench cases.</summary>
public sealed class ElementwiseBench : IKernelBench
{
    /// <inheritdoc/>
    public IReadOnlyList<string> Ops { get; } = ["gelu", "silu", "axpy", "add", "add_scaled", "sum", "normal", "permute", "concat"];

    /// <inheritdoc/>
    public IEnumerable<BenchCase> Cases(EdmDevice d, string op, bool quick)
    {
        int n = d.IsCpu ? (op == "sum" ? 16 << 20 : 4 << 20) : 64 << 20;
        if (quick) n /= 16;
        var x = Tensor.Empty(d, n);
        Kernels.Ops.Normal(x, 1);
        var y = Tensor.Empty(d, n);
        Kernels.Ops.Normal(y, 2);
        var hx = x.ToArray();
        var hy = y.ToArray();
        var hout = new float[n];
        int chunks = 4 * Environment.ProcessorCount;
        int size = (n + chunks - 1) / chunks;
        // Plain C# loop over [0, n) in `chunks` parallel pieces.
        void Par(Action<int, int> body) => Parallel.For(0, chunks, c => { int s = c * size, e = Math.Min(n, s + size); if (s < e) body(s, e); });

        (Action ours, Action cs, double bytes, double flops) = op switch
        {
            "gelu" => ((Action)(() => Kernels.Ops.Gelu(x).Dispose()),
                (Action)(() => Par((s, e) => { for (int i = s; i < e; i++) hout[i] = KMath.Gelu(hx[i]); })),
                8.0 * n, 20.0 * n),
            "silu" => (() => Kernels.Ops.Silu(x).Dispose(),
                () => Par((s, e) => { for (int i = s; i < e; i++) { float v = hx[i]; hout[i] = v / (1f + MathF.Exp(-v)); } }),
                8.0 * n, 5.0 * n),
            "axpy" => (() => Kernels.Ops.Axpy(1e-3f, x, y),
                () => Par((s, e) => { for (int i = s; i < e; i++) hy[i] += 1e-3f * hx[i]; }),
                12.0 * n, 2.0 * n),
            "add" => (() => Kernels.Ops.Add(x, y).Dispose(),
                () => Par((s, e) => { for (int i = s; i < e; i++) hout[i] = hx[i] + hy[i]; }),
                12.0 * n, 1.0 * n),
            // The residual (x + skip) * skip_scale of the U-Net blocks, one pass.
            "add_scaled" => (() => Kernels.Ops.AddScaled(x, y, 0.7071068f).Dispose(),
                () => Par((s, e) => { for (int i = s; i < e; i++) hout[i] = (hx[i] + hy[i]) * 0.7071068f; }),
                12.0 * n, 2.0 * n),
            "sum" => (() => Kernels.Ops.Sum(x).Dispose(),
                () =>
                {
                    var partial = new float[chunks];
                    Par((s, e) => { float acc = 0; for (int i = s; i < e; i++) acc += hx[i]; partial[s / size] = acc; });
                    _ = partial.Sum();
                },
                4.0 * n, 1.0 * n),
            "normal" => (() => Kernels.Ops.Normal(x, 3, 1),
                () => Par((s, e) => { for (int i = s; i < e; i++) hout[i] = Philox.Normal(3, 1, (uint)i); }),
                4.0 * n, 60.0 * n),
            // (n/64, 64) -> (64, n/64): a transpose, the layout work attention does.
            "permute" => (() => { using var v = x.Reshape(n / 64, 64); Kernels.Ops.Permute(v, 1, 0).Dispose(); },
                () => Par((s, e) => { for (int i = s; i < e; i++) hout[(i % 64) * (n / 64) + i / 64] = hx[i]; }),
                8.0 * n, 0),
            // two (n/1024, 512) halves joined along axis 1, the U-Net skip concatenation pattern.
            "concat" => (() =>
                {
                    using var a = x.Reshape(n / 1024, 1024);
                    using var l = a.Narrow0(0, n / 2048);
                    using var r = a.Narrow0(n / 2048, n / 2048);
                    Kernels.Ops.Concat(1, l, r).Dispose();
                },
                () => Par((s, e) => { for (int i = s; i < e; i++) { int row = i / 2048, col = i % 2048; hout[i] = hx[col < 1024 ? row * 1024 + col : (n / 2 + row * 1024 + col - 1024)]; } }),
                8.0 * n, 0),
            _ => throw new ArgumentException(op),
        };
        string baseline;
        Action? runBaseline;
        IDisposable resources;
        if (d.IsCpu)
        {
            baseline = Baselines.CSharp;
            runBaseline = cs;
            resources = new Baselines.Disposables(x, y);
        }
        else
        {
            var (copy, bufs) = Baselines.DeviceCopy(d, bytes);
            baseline = Baselines.Copy;
            runBaseline = copy;
            resources = new Baselines.Disposables(x, y, bufs);
        }
        yield return new BenchCase(op, $"({n})", bytes, flops, ours, baseline, runBaseline, resources);
    }
}

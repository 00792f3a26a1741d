// kernels-bench cases for dropout (Edm.Kernels/Dropout.cs): (B, 256, 16, 16) with p = 0.13 (the
// DDPM++ UNetBlock's), B = 64 (--quick: 4). Bytes: x read, y written; FLOPs: the scaling only
// (Philox's integer rounds are not counted).
// Baseline: CPU: the same per-element Philox test in scalar C# with Parallel.For; GPU: a
// device-to-device copy of the same bytes.
using Edm.Kernels;

namespace Edm.Bench.Perf;

/// <summary>Dropout bench cases.</summary>
public sealed class DropoutBench : IKernelBench
{
    /// <inheritdoc/>
    public IReadOnlyList<string> Ops { get; } = ["dropout"];

    /// <inheritdoc/>
    public IEnumerable<BenchCase> Cases(EdmDevice d, string op, bool quick)
    {
        int b = BenchShapes.BatchFor(quick);
        const float p = 0.13f;
        var x = Tensor.Empty(d, b, 256, 16, 16);
        Kernels.Ops.Normal(x, 1);
        int n = x.Length;
        double bytes = 8.0 * n;
        string baseline;
        Action runBaseline;
        IDisposable resources;
        if (d.IsCpu)
        {
            var hx = x.ToArray();
            var hy = new float[n];
            runBaseline = () => BenchShapes.Par(n, (s, e) =>
            {
                for (int i = s; i < e; i++) hy[i] = Philox.Uniform(7, 1, (uint)i) >= p ? hx[i] / (1f - p) : 0f;
            });
            baseline = Baselines.CSharp;
            resources = x;
        }
        else
        {
            var (copy, bufs) = Baselines.DeviceCopy(d, bytes);
            runBaseline = copy;
            baseline = Baselines.Copy;
            resources = new Baselines.Disposables(x, bufs);
        }
        yield return new BenchCase(op, $"{Shapes.Format(x.Shape)} p=0.13", bytes, n, () => Kernels.Ops.Dropout(x, p, 7, 1).Dispose(),
            baseline, runBaseline, resources, BenchShapes.Note(quick));
    }
}

// kernels-bench cases for resampling by 2 (Edm.Kernels/Pooling.cs): nearest upsampling of
// (B, 128, 16, 16) and 2x2 average pooling of (B, 128, 32, 32), B = 64 (--quick: 4).
// Bytes: input read and output written. Baseline: CPU: scalar C# loops with Parallel.For over
// output rows; GPU: a device-to-device copy of the same bytes.
using Edm.Kernels;

namespace Edm.Bench.Perf;

/// <summary>Upsample / average-pool bench cases.</summary>
public sealed class PoolingBench : IKernelBench
{
    /// <inheritdoc/>
    public IReadOnlyList<string> Ops { get; } = ["upsample2x", "avgpool2x"];

    /// <inheritdoc/>
    public IEnumerable<BenchCase> Cases(EdmDevice d, string op, bool quick)
    {
        int b = BenchShapes.BatchFor(quick);
        bool up = op == "upsample2x";
        int h = up ? 16 : 32, w = h, c = 128;
        var x = Tensor.Empty(d, b, c, h, w);
        Kernels.Ops.Normal(x, 1);
        int n = x.Length, outN = up ? 4 * n : n / 4;
        double bytes = 4.0 * (n + outN);
        string baseline;
        Action runBaseline;
        IDisposable resources;
        if (d.IsCpu)
        {
            var hx = x.ToArray();
            var hy = new float[outN];
            int planes = b * c;
            runBaseline = up
                ? () => BenchShapes.Par(planes * 2 * h, (r0, r1) =>
                {
                    for (int r = r0; r < r1; r++)
                    {
                        int p = r / (2 * h), i = r % (2 * h);
                        for (int j = 0; j < 2 * w; j++) hy[r * 2 * w + j] = hx[(p * h + i / 2) * w + j / 2];
                    }
                })
                : () => BenchShapes.Par(planes * h / 2, (r0, r1) =>
                {
                    int wo = w / 2;
                    for (int r = r0; r < r1; r++)
                        for (int j = 0; j < wo; j++)
                        {
                            int s = 2 * r * w + 2 * j;
                            hy[r * wo + j] = 0.25f * (hx[s] + hx[s + 1] + hx[s + w] + hx[s + w + 1]);
                        }
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
        Action ours = up ? () => Kernels.Ops.UpsampleNearest2x(x).Dispose() : () => Kernels.Ops.AvgPool2x(x).Dispose();
        yield return new BenchCase(op, Shapes.Format(x.Shape), bytes, up ? 0 : n, ours, baseline, runBaseline, resources, BenchShapes.Note(quick));
    }
}

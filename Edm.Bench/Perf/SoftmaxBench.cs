// kernels-bench cases for softmax along the last axis (Edm.Kernels/Softmax.cs): attention-like
// score rows (B*256, 256) and (B*64, 1024), B = 64 (--quick: 4). Bytes: x read, y written.
// Baseline: CPU: scalar C# (max, exp, sum, divide) with Parallel.For over rows; GPU: a
// device-to-device copy of the same bytes.
using Edm.Kernels;

namespace Edm.Bench.Perf;

/// <summary>Softmax bench cases.</summary>
public sealed class SoftmaxBench : IKernelBench
{
    /// <inheritdoc/>
    public IReadOnlyList<string> Ops { get; } = ["softmax"];

    /// <inheritdoc/>
    public IEnumerable<BenchCase> Cases(EdmDevice d, string op, bool quick)
    {
        int b = BenchShapes.BatchFor(quick);
        foreach (var (rows, cols) in new[] { (b * 256, 256), (b * 64, 1024) })
        {
            var x = Tensor.Empty(d, rows, cols);
            Kernels.Ops.Normal(x, 1);
            double bytes = 8.0 * rows * cols;
            string baseline;
            Action runBaseline;
            IDisposable resources;
            if (d.IsCpu)
            {
                var hx = x.ToArray();
                var hy = new float[hx.Length];
                runBaseline = () => BenchShapes.Par(rows, (r0, r1) =>
                {
                    for (int r = r0; r < r1; r++)
                    {
                        int o = r * cols;
                        float m = float.NegativeInfinity, s = 0f;
                        for (int j = 0; j < cols; j++) m = MathF.Max(m, hx[o + j]);
                        for (int j = 0; j < cols; j++) s += hy[o + j] = MathF.Exp(hx[o + j] - m);
                        for (int j = 0; j < cols; j++) hy[o + j] /= s;
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
            yield return new BenchCase(op, Shapes.Format([rows, cols]), bytes, 5.0 * rows * cols,
                () => Kernels.Ops.Softmax(x).Dispose(), baseline, runBaseline, resources, BenchShapes.Note(quick));
        }
    }
}

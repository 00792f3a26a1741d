// kernels-bench cases for the bilinear resize (Edm.Kernels/Interpolate.cs): the FID input step,
// (B, 3, 32, 32) -> (B, 3, 299, 299), B = 64 (--quick: 4). Bytes: input read, output written;
// FLOPs: 11 per output. Baseline: CPU: a plain scalar C# loop computing the taps per output,
// Parallel.For over planes; GPU: a device-to-device copy of the same bytes.
using Edm.Kernels;

namespace Edm.Bench.Perf;

/// <summary>Bilinear resize bench case.</summary>
public sealed class InterpolateBench : IKernelBench
{
    /// <inheritdoc/>
    public IReadOnlyList<string> Ops { get; } = ["bilinear"];

    /// <inheritdoc/>
    public IEnumerable<BenchCase> Cases(EdmDevice d, string op, bool quick)
    {
        int b = BenchShapes.BatchFor(quick), c = 3, h = 32, o = 299;
        var x = Tensor.Empty(d, b, c, h, h);
        Kernels.Ops.Normal(x, 1);
        int planes = b * c, outN = planes * o * o;
        double bytes = 4.0 * (x.Length + outN), flops = 11.0 * outN;
        Action ours = () => Kernels.Ops.InterpolateBilinear(x, o, o).Dispose();
        string shape = $"{Shapes.Format(x.Shape)} -> ({o}, {o})";
        if (d.IsCpu)
        {
            var hx = x.ToArray();
            var hy = new float[outN];
            float scale = (float)h / o;
            Action baseline = () => BenchShapes.Par(planes, (p0, p1) =>
            {
                for (int p = p0; p < p1; p++)
                    for (int oy = 0; oy < o; oy++)
                    {
                        float sy = MathF.Max(0f, scale * (oy + 0.5f) - 0.5f);
                        int y0 = (int)sy, y1 = Math.Min(y0 + 1, h - 1);
                        float ly = sy - y0;
                        for (int ox = 0; ox < o; ox++)
                        {
                            float sx = MathF.Max(0f, scale * (ox + 0.5f) - 0.5f);
                            int x0 = (int)sx, x1 = Math.Min(x0 + 1, h - 1);
                            float lx = sx - x0;
                            int b0 = p * h * h;
                            hy[(p * o + oy) * o + ox] = (1 - ly) * ((1 - lx) * hx[b0 + y0 * h + x0] + lx * hx[b0 + y0 * h + x1])
                                + ly * ((1 - lx) * hx[b0 + y1 * h + x0] + lx * hx[b0 + y1 * h + x1]);
                        }
                    }
            });
            yield return new BenchCase(op, shape, bytes, flops, ours, Baselines.CSharp, baseline, x, BenchShapes.Note(quick));
            yield break;
        }
        var (copy, bufs) = Baselines.DeviceCopy(d, bytes);
        yield return new BenchCase(op, shape, bytes, flops, ours, Baselines.Copy, copy, new Baselines.Disposables(x, bufs), BenchShapes.Note(quick));
    }
}

// kernels-bench cases for windowed pooling (Edm.Kernels/Pool2d.cs) at Inception-v3 shapes, B = 64
// (--quick: 4): "maxpool2d" = 3x3 stride 2 on (B, 64, 147, 147); "avgpool2d" = 3x3 stride 1
// padding 1 without the padding in the count on (B, 288, 35, 35); "adaptive_avgpool2d" = the global
// average of (B, 2048, 8, 8). Bytes: input read, output written; FLOPs: one per tap.
// Baseline: CPU: a plain scalar C# loop over the windows, Parallel.For over planes; GPU: a
// device-to-device copy of the same bytes.
using Edm.Kernels;

namespace Edm.Bench.Perf;

/// <summary>Windowed / adaptive pooling bench cases.</summary>
public sealed class Pool2dBench : IKernelBench
{
    /// <inheritdoc/>
    public IReadOnlyList<string> Ops { get; } = ["maxpool2d", "avgpool2d", "adaptive_avgpool2d"];

    /// <inheritdoc/>
    public IEnumerable<BenchCase> Cases(EdmDevice d, string op, bool quick)
    {
        int b = BenchShapes.BatchFor(quick);
        var (c, hw, k, p) = op switch
        {
            "maxpool2d" => (64, 147, 3, Conv2dParams.Symmetric(2, 2, 0, 0)),
            "avgpool2d" => (288, 35, 3, Conv2dParams.Symmetric(1, 1, 1, 1)),
            _ => (2048, 8, 8, Conv2dParams.Pad(0)),
        };
        var x = Tensor.Empty(d, b, c, hw, hw);
        Kernels.Ops.Normal(x, 1);
        int ho = (hw + p.PadTop + p.PadBottom - k) / p.StrideH + 1, wo = (hw + p.PadLeft + p.PadRight - k) / p.StrideW + 1;
        int planes = b * c, outN = planes * ho * wo;
        double bytes = 4.0 * (x.Length + outN), flops = (double)outN * k * k;
        Action ours = op switch
        {
            "maxpool2d" => () => Kernels.Ops.MaxPool2d(x, k, k, p).Dispose(),
            "avgpool2d" => () => Kernels.Ops.AvgPool2d(x, k, k, p, countIncludePad: false).Dispose(),
            _ => () => Kernels.Ops.AdaptiveAvgPool2d(x, 1, 1).Dispose(),
        };
        string shape = op == "adaptive_avgpool2d" ? $"{Shapes.Format(x.Shape)} -> (1, 1)" : $"{Shapes.Format(x.Shape)} k{k} s{p.StrideH} p{p.PadTop}";
        if (d.IsCpu)
        {
            var hx = x.ToArray();
            var hy = new float[outN];
            bool max = op == "maxpool2d";
            Action baseline = () => BenchShapes.Par(planes, (p0, p1) =>
            {
                for (int q = p0; q < p1; q++)
                    for (int oy = 0; oy < ho; oy++)
                        for (int ox = 0; ox < wo; ox++)
                        {
                            float acc = max ? float.NegativeInfinity : 0f;
                            int cnt = 0;
                            for (int ky = 0; ky < k; ky++)
                                for (int kx = 0; kx < k; kx++)
                                {
                                    int iy = oy * p.StrideH - p.PadTop + ky, ix = ox * p.StrideW - p.PadLeft + kx;
                                    if ((uint)iy >= (uint)hw || (uint)ix >= (uint)hw) continue;
                                    float v = hx[(q * hw + iy) * hw + ix];
                                    acc = max ? MathF.Max(acc, v) : acc + v;
                                    cnt++;
                                }
                            hy[(q * ho + oy) * wo + ox] = max ? acc : acc / cnt;
                        }
            });
            yield return new BenchCase(op, shape, bytes, flops, ours, Baselines.CSharp, baseline, x, BenchShapes.Note(quick));
            yield break;
        }
        var (copy, bufs) = Baselines.DeviceCopy(d, bytes);
        yield return new BenchCase(op, shape, bytes, flops, ours, Baselines.Copy, copy, new Baselines.Disposables(x, bufs), BenchShapes.Note(quick));
    }
}

// kernels-bench cases for EDM's FIR resampling: "fir-down" and "fir-up" with the [1, 3, 3, 1]
// filter (NCSN++), forward, on a B=64, C=128, 32x32 activation (down) and 16x16 (up) as in the
// CIFAR-10 U-Nets; --quick uses B=8. Memory-bound: GB/s is the figure of merit.
// Baselines: CPU: the same gather as plain C# loops over managed arrays (Parallel.For over planes,
// 2-D taps from a table); GPU: a device-to-device copy of the same bytes.
using Edm.Kernels;

namespace Edm.Bench.Perf;

/// <summary>FIR resampling bench cases.</summary>
public sealed class ResampleBench : IKernelBench
{
    static readonly float[] Filter = [1, 3, 3, 1];

    /// <inheritdoc/>
    public IReadOnlyList<string> Ops { get; } = ["fir-down", "fir-up"];

    /// <inheritdoc/>
    public IEnumerable<BenchCase> Cases(EdmDevice d, string op, bool quick)
    {
        int batch = quick ? 8 : 64, c = 128;
        bool down = op == "fir-down";
        int h = down ? 32 : 16, ho = down ? h / 2 : 2 * h;
        var x = Tensor.Empty(d, batch, c, h, h);
        x.CopyFrom(Edm.Verification.Compare.Random(x.Length, 1));
        int outLen = batch * c * ho * ho;
        double bytes = 4.0 * (x.Length + outLen);
        // Taps per output: 16 for down; 4 live taps (of 16) for up.
        double flops = 2.0 * outLen * (down ? 16 : 4);
        Action ours = down ? () => Kernels.Ops.FirDownsample2d(x, Filter).Dispose() : () => Kernels.Ops.FirUpsample2d(x, Filter).Dispose();
        string shape = $"({batch}, {c}, {h}, {h}) -> {ho}x{ho}";
        string? note = quick ? "--quick: B=8 instead of 64" : null;
        if (d.IsCpu)
        {
            var hx = x.ToArray();
            var hy = new float[outLen];
            int planes = batch * c;
            yield return new BenchCase(op, shape, bytes, flops, ours, Baselines.CSharp,
                () => PlainGather(hx, hy, planes, h, ho, down), x, note);
            yield break;
        }
        var (copy, bufs) = Baselines.DeviceCopy(d, bytes);
        yield return new BenchCase(op, shape, bytes, flops, ours, Baselines.Copy, copy, new Baselines.Disposables(x, bufs), note);
    }

    /// <summary>The [1,3,3,1] down (stride 2, pad 1) or up (gain 4, pad 1) gather as plain loops.</summary>
    static void PlainGather(float[] x, float[] y, int planes, int h, int ho, bool down)
    {
        var g = new float[4];
        for (int i = 0; i < 4; i++) g[i] = Filter[i] / 8f;
        Parallel.For(0, planes, pl =>
        {
            int xo = pl * h * h, yo = pl * ho * ho;
            for (int oy = 0; oy < ho; oy++)
                for (int ox = 0; ox < ho; ox++)
                {
                    float acc = 0f;
                    for (int a = 0; a < 4; a++)
                        for (int b = 0; b < 4; b++)
                        {
                            int iy, ix;
                            if (down) { iy = 2 * oy + a - 1; ix = 2 * ox + b - 1; }
                            else
                            {
                                int ty = oy + 1 - a, tx = ox + 1 - b;
                                if (ty < 0 || tx < 0 || (ty & 1) != 0 || (tx & 1) != 0) continue;
                                iy = ty >> 1; ix = tx >> 1;
                            }
                            if (iy >= 0 && iy < h && ix >= 0 && ix < h) acc += g[a] * g[b] * x[xo + iy * h + ix];
                        }
                    y[yo + oy * ho + ox] = down ? acc : 4f * acc;
                }
        });
    }
}

// kernels-bench cases for the augmentation family: Ops.AffineResample alone (per-sample EDM maps
// drawn once) and the whole AugmentPipe.Apply (host draws, matrix upload, resampling, labels).
// Size: B = 64 images of 3 x 32 x 32 (CIFAR-10); --quick: B = 8.
// Baseline: CPU: the same bicubic sampler as a plain C# Parallel.For loop over managed arrays;
// GPU: a device-to-device copy of the same bytes.
using Edm.Kernels;
using Edm.Model;

namespace Edm.Bench.Perf;

/// <summary>Affine resampling and augmentation pipe bench cases.</summary>
public sealed class AugmentBench : IKernelBench
{
    /// <inheritdoc/>
    public IReadOnlyList<string> Ops { get; } = ["augment"];

    /// <inheritdoc/>
    public IEnumerable<BenchCase> Cases(EdmDevice d, string op, bool quick)
    {
        if (op != "augment") throw new ArgumentException(op);
        int b = quick ? 8 : 64, c = 3, h = 32, w = 32;
        int n = b * c * h * w;
        var pipe = new AugmentPipe(1);
        var draws = pipe.Draw(b, h, w, 1, 0);
        var m = new float[6 * b];
        for (int s = 0; s < b; s++)
        {
            var pm = pipe.Matrix(draws[s], h, w);
            for (int k = 0; k < 6; k++) m[6 * s + k] = (float)pm[k];
        }
        var x = Tensor.Empty(d, b, c, h, w);
        Kernels.Ops.Uniform(x, 2);
        var hx = x.ToArray();
        var hy = new float[n];
        // Bytes: each output written once, its 16 taps mostly from cache: count one read per output.
        double bytes = 8.0 * n, flops = 40.0 * n;
        string shape = Shapes.Format([b, c, h, w]);
        ulong step = 0;
        var cases = new (string Kind, Action Run)[]
        {
            ("resample", () => Kernels.Ops.AffineResample(x, m).Dispose()),
            ("pipe", () =>
            {
                var (images, labels) = pipe.Apply(x, 3, step++);
                images.Dispose();
                labels.Dispose();
            }),
        };
        foreach (var (kind, run) in cases)
        {
            if (d.IsCpu)
                yield return new BenchCase(op, $"{shape} {kind}", bytes, flops, run, Baselines.CSharp,
                    () => Parallel.For(0, b * c, plane => SamplePlane(hx, hy, m, plane, c, h, w)),
                    kind == "pipe" ? x : null);
            else
            {
                var (copy, bufs) = Baselines.DeviceCopy(d, bytes);
                yield return new BenchCase(op, $"{shape} {kind}", bytes, flops, run, Baselines.Copy, copy,
                    kind == "pipe" ? new Baselines.Disposables(x, bufs) : bufs);
            }
        }
    }

    /// <summary>The baseline: Keys bicubic sampling with reflect padding of one plane, plain C#.</summary>
    static void SamplePlane(float[] x, float[] y, float[] m, int plane, int c, int h, int w)
    {
        int mb = plane / c * 6, p = plane * h * w;
        for (int oy = 0; oy < h; oy++)
            for (int ox = 0; ox < w; ox++)
            {
                float sx = m[mb] * ox + m[mb + 1] * oy + m[mb + 2];
                float sy = m[mb + 3] * ox + m[mb + 4] * oy + m[mb + 5];
                float fx = MathF.Floor(sx), fy = MathF.Floor(sy);
                var wx = Bicubic.Weights(sx - fx);
                var wy = Bicubic.Weights(sy - fy);
                float acc = 0f;
                for (int j = 0; j < 4; j++)
                {
                    int row = p + Bicubic.Reflect((int)fy - 1 + j, h) * w;
                    float r = wx.W0 * x[row + Bicubic.Reflect((int)fx - 1, w)] + wx.W1 * x[row + Bicubic.Reflect((int)fx, w)]
                        + wx.W2 * x[row + Bicubic.Reflect((int)fx + 1, w)] + wx.W3 * x[row + Bicubic.Reflect((int)fx + 2, w)];
                    acc += (j == 0 ? wy.W0 : j == 1 ? wy.W1 : j == 2 ? wy.W2 : wy.W3) * r;
                }
                y[p + oy * w + ox] = acc;
            }
    }
}

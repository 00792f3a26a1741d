// Augment: per-sample affine resampling of an image batch, the geometric core of EDM's
// non-leaking augmentation (Karras et al. 2022, Sec. 5 and Appendix F.2; NVlabs/edm
// training/augment.py). The pipe (Edm.Model/Augment.cs) composes each sample's flips, translations,
// scalings and rotations into one 2x3 matrix on the host; this op applies it.
//
// Layout: x, y (B, C, H, W) float32; matrices (B, 6) row-major [a, b, c, d, e, f] map an OUTPUT pixel
// (ox, oy) (pixel centres at integer coordinates, x to the right, y down) to the INPUT position
//   sx = a ox + b oy + c,   sy = d ox + e oy + f,
// where every channel of sample b is sampled:
//   y[b, ch, oy, ox] = sum_{i,j=-1..2} k(ty - j) k(tx - i) x[b, ch, refl(fy + j, H), refl(fx + i, W)]
// with fx = floor(sx), tx = sx - fx (same for y), k the Keys cubic convolution kernel with
// a = -1/2 (Keys 1981), and refl the reflect padding augment.py uses (torch 'reflect': the edge
// pixel is not repeated, period 2n - 2): refl(i, n) = n - 1 - |n - 1 - (i mod (2n - 2))|.
// At an integer position the weights are exactly (0, 1, 0, 0), so flips and integer translations
// are exact copies. augment.py instead upsamples 2x with the sym6 wavelet filter, samples
// bilinearly and downsamples with sym6 (docs/model.md (Augmentation) lists the differences).
// Variants:
//   1. AffineBicubic: grid-stride over output pixels, one thread per pixel, 16 gathers; the
//      matrices live on the device (B x 6 floats).
//   CPU fast path: the same scalar arithmetic (Bicubic.Weights, Bicubic.Reflect) as plain loops,
//   parallel over chunks of planes.
using System.Runtime.CompilerServices;
using ILGPU;
using ILGPU.Algorithms;
using ILGPU.Runtime;

namespace Edm.Kernels;

/// <summary>Batch, channels and image size of one affine resampling launch.</summary>
public readonly record struct AffineShape(int Batch, int Channels, int H, int W);

/// <summary>The four cubic convolution weights of one axis, for taps at offsets -1, 0, 1, 2.</summary>
public readonly record struct CubicWeights(float W0, float W1, float W2, float W3);

/// <summary>Keys cubic convolution (a = -1/2) and reflect padding, shared by the kernel and the CPU path.</summary>
public static class Bicubic
{
    /// <summary>
    /// Weights k(1 + t), k(t), k(1 - t), k(2 - t) of the Keys kernel with a = -1/2 for a fractional
    /// offset t in [0, 1); exactly (0, 1, 0, 0) at t = 0. They sum to 1 for every t.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static CubicWeights Weights(float t)
    {
        float t2 = t * t, t3 = t2 * t;
        return new CubicWeights(
            -0.5f * t3 + t2 - 0.5f * t,
            1.5f * t3 - 2.5f * t2 + 1f,
            -1.5f * t3 + 2f * t2 + 0.5f * t,
            0.5f * t3 - 0.5f * t2);
    }

    /// <summary>Reflect padding without edge repetition (torch 'reflect'): maps any i to [0, n).</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static int Reflect(int i, int n)
    {
        if (n == 1) return 0;
        int period = 2 * n - 2;
        int r = i % period;
        if (r < 0) r += period;
        return r < n ? r : period - r;
    }

    /// <summary>
    /// Largest |coordinate| a sample position is clamped to before flooring: keeps the integer
    /// conversion defined for huge scalings (any position that far out is a reflected pixel anyway).
    /// </summary>
    public const float MaxCoordinate = 1 << 22;

    /// <summary>Clamps a sample coordinate to +-<see cref="MaxCoordinate"/> (finite input assumed).</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static float ClampCoordinate(float s) => s < -MaxCoordinate ? -MaxCoordinate : s > MaxCoordinate ? MaxCoordinate : s;
}

/// <summary>The affine resampling kernels, loaded once per device.</summary>
public sealed class AugmentKernels : IKernelFamily<AugmentKernels>
{
    internal readonly Action<Index1D, ArrayView<float>, ArrayView<float>, ArrayView<float>, AffineShape, int> Affine;

    AugmentKernels(Accelerator acc)
    {
        Affine = acc.LoadAutoGroupedStreamKernel<Index1D, ArrayView<float>, ArrayView<float>, ArrayView<float>, AffineShape, int>(AffineBicubicKernel);
    }

    /// <inheritdoc/>
    public static AugmentKernels Load(EdmDevice device) => new(device.Accelerator);

    /// <summary>y (B, C, H, W) = bicubic sample of x at matrices[b] applied to each output pixel; grid-stride.</summary>
    static void AffineBicubicKernel(Index1D tid, ArrayView<float> x, ArrayView<float> y, ArrayView<float> m, AffineShape s, int stride)
    {
        int hw = s.H * s.W;
        int total = s.Batch * s.Channels * hw;
        for (int i = tid; i < total; i += stride)
        {
            int ox = i % s.W, oy = (i / s.W) % s.H, plane = i / hw;
            int mb = plane / s.Channels * 6;
            float sx = m[mb] * ox + m[mb + 1] * oy + m[mb + 2];
            float sy = m[mb + 3] * ox + m[mb + 4] * oy + m[mb + 5];
            sx = Bicubic.ClampCoordinate(sx);
            sy = Bicubic.ClampCoordinate(sy);
            float fxf = XMath.Floor(sx), fyf = XMath.Floor(sy);
            float tx = sx - fxf, ty = sy - fyf;
            int fx = (int)fxf, fy = (int)fyf;
            var wx = Bicubic.Weights(tx);
            var wy = Bicubic.Weights(ty);
            int x0 = Bicubic.Reflect(fx - 1, s.W), x1 = Bicubic.Reflect(fx, s.W);
            int x2 = Bicubic.Reflect(fx + 1, s.W), x3 = Bicubic.Reflect(fx + 2, s.W);
            int p = plane * hw;
            float acc = 0f;
            for (int j = 0; j < 4; j++)
            {
                int row = p + Bicubic.Reflect(fy - 1 + j, s.H) * s.W;
                float r = wx.W0 * x[row + x0] + wx.W1 * x[row + x1] + wx.W2 * x[row + x2] + wx.W3 * x[row + x3];
                float wj = j == 0 ? wy.W0 : j == 1 ? wy.W1 : j == 2 ? wy.W2 : wy.W3;
                acc += wj * r;
            }
            y[i] = acc;
        }
    }
}

public static partial class Ops
{
    /// <summary>
    /// Resamples every sample of <paramref name="x"/> (B, C, H, W) through its own affine map:
    /// output pixel (ox, oy) of sample b takes the Keys bicubic interpolation (reflect padding) of
    /// the input at (a ox + b oy + c, d ox + e oy + f), where [a, b, c, d, e, f] =
    /// <paramref name="matrices"/>[6b .. 6b + 6] (output pixel to input position, pixel centres at
    /// integers). Flips and integer translations are exact. Returns a new (B, C, H, W) tensor.
    /// </summary>
    public static Tensor AffineResample(Tensor x, float[] matrices)
    {
        const string op = "AffineResample";
        if (x.Rank != 4) throw new ArgumentException($"{op}: x must be (B, C, H, W), got {x.ShapeString}");
        int n = x.Shape[0];
        if (matrices.Length != 6 * n)
            throw new ArgumentException($"{op}: matrices must be (B, 6) = {Shapes.Format([n, 6])} for x {x.ShapeString}, got {matrices.Length} floats");
        foreach (float v in matrices)
            if (!float.IsFinite(v)) throw new ArgumentException($"{op}: matrices contain a non-finite entry");
        var s = new AffineShape(n, x.Shape[1], x.Shape[2], x.Shape[3]);
        var y = Tensor.Empty(x.Device, n, s.Channels, s.H, s.W);
        if (y.Length == 0) return y;
        var device = x.Device;
        if (device.UseCpuFastPath)
        {
            int planes = n * s.Channels;
            CpuParallel.For(planes, (start, count) => AffinePlanes(x.CpuSpan(), y.CpuSpan(), matrices, s, start, count),
                minChunk: Math.Max(1, (1 << 14) / (s.H * s.W)));
            return y;
        }
        using var m = Tensor.FromArray(device, matrices, n, 6);
        int threads = device.LaunchThreads(y.Length);
        device.Kernels<AugmentKernels>().Affine(threads, x.View, y.View, m.View, s, threads);
        device.Synchronize(); // m is freed on return
        return y;
    }

    /// <summary>CPU fast path of <see cref="AffineResample"/> over planes [start, start + count).</summary>
    static void AffinePlanes(ReadOnlySpan<float> x, Span<float> y, float[] m, AffineShape s, int start, int count)
    {
        int hw = s.H * s.W;
        for (int plane = start; plane < start + count; plane++)
        {
            int mb = plane / s.Channels * 6;
            var src = x.Slice(plane * hw, hw);
            var dst = y.Slice(plane * hw, hw);
            for (int oy = 0; oy < s.H; oy++)
                for (int ox = 0; ox < s.W; ox++)
                {
                    // Same float operations, in the same order, as the kernel.
                    float sx = m[mb] * ox + m[mb + 1] * oy + m[mb + 2];
                    float sy = m[mb + 3] * ox + m[mb + 4] * oy + m[mb + 5];
                    sx = Bicubic.ClampCoordinate(sx);
                    sy = Bicubic.ClampCoordinate(sy);
                    float fxf = XMath.Floor(sx), fyf = XMath.Floor(sy);
                    float tx = sx - fxf, ty = sy - fyf;
                    int fx = (int)fxf, fy = (int)fyf;
                    var wx = Bicubic.Weights(tx);
                    var wy = Bicubic.Weights(ty);
                    int x0 = Bicubic.Reflect(fx - 1, s.W), x1 = Bicubic.Reflect(fx, s.W);
                    int x2 = Bicubic.Reflect(fx + 1, s.W), x3 = Bicubic.Reflect(fx + 2, s.W);
                    float acc = 0f;
                    for (int j = 0; j < 4; j++)
                    {
                        int row = Bicubic.Reflect(fy - 1 + j, s.H) * s.W;
                        float r = wx.W0 * src[row + x0] + wx.W1 * src[row + x1] + wx.W2 * src[row + x2] + wx.W3 * src[row + x3];
                        float wj = j == 0 ? wy.W0 : j == 1 ? wy.W1 : j == 2 ? wy.W2 : wy.W3;
                        acc += wj * r;
                    }
                    dst[oy * s.W + ox] = acc;
                }
        }
    }
}

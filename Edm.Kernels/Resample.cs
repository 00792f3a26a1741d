// Resample: EDM's FIR resampling convolutions (NVlabs/edm training/networks.py, class Conv2d with
// up/down and resample_filter; Karras et al. 2022 Appendix F.4), forward and backward.
//
// The 1-D filter f (e.g. [1, 1] for DDPM++/ADM, [1, 3, 3, 1] for NCSN++) is normalised to
// g = f / sum(f); the 2-D filter is g g^T (networks.py: f.ger(f) / f.sum().square()), applied to
// every channel separately (depthwise), with default padding p = (L-1)/2 (networks.py f_pad):
//   down (conv2d, groups=C, stride 2, padding p):
//     y[n, c, oy, ox] = sum_{a,b} g[a] g[b] x[n, c, 2oy+a-p, 2ox+b-p],   Ho = floor((H+2p-L)/2) + 1
//   up (conv_transpose2d with 4 g g^T, groups=C, stride 2, padding p):
//     y[n, c, oy, ox] = 4 sum_{a,b} g[a] g[b] x[n, c, (oy+p-a)/2, (ox+p-b)/2]   (terms with an odd or
//     out-of-range index dropped),                                      Ho = 2(H-1) - 2p + L
// (zero outside the image). The two are adjoint up to the gain: the gradient of down is the up
// formula with gain 1 and output size H; the gradient of up is the down formula with gain 4.
// ResampleConv2d composes them with Conv2d exactly as networks.py's Conv2d.forward does: sequential
// (resample at padding p, then conv at padding k/2) or fused (up: transposed FIR at padding
// k/2 + p, then a conv without padding; down: conv at padding k/2 + p, then FIR at padding 0).
// Variants:
//   1. FirDown / FirUp: one gather kernel each, grid-stride over outputs, taps in a struct
//      (separable weights g[a] g[b], at most 8 taps); both resampling directions are gathers, so
//      neither forward nor backward needs atomics.
//   CPU fast path: the same gathers done separably (a horizontal 1-D pass, then vertical row
//      multiply-adds), Parallel.For over (n, c) planes.
using ILGPU;
using ILGPU.Runtime;

namespace Edm.Kernels;

/// <summary>Normalised 1-D FIR taps g = f / sum(f) (at most 8), passed to kernels by value.</summary>
public readonly record struct FirTaps(int Length, float T0, float T1, float T2, float T3, float T4, float T5, float T6, float T7)
{
    /// <summary>Most taps supported.</summary>
    public const int MaxLength = 8;

    /// <summary>Tap i (0 &lt;= i &lt; Length).</summary>
    public float this[int i] => i switch
    {
        0 => T0, 1 => T1, 2 => T2, 3 => T3, 4 => T4, 5 => T5, 6 => T6, _ => T7,
    };

    /// <summary>Validates and normalises a 1-D filter (length 1..8, finite, nonzero sum).</summary>
    public static FirTaps From(string op, ReadOnlySpan<float> filter)
    {
        if (filter.Length < 1 || filter.Length > MaxLength)
            throw new ArgumentException($"{op}: resample filter must have 1..{MaxLength} taps, got {filter.Length}");
        double sum = 0;
        foreach (float f in filter)
        {
            if (!float.IsFinite(f)) throw new ArgumentException($"{op}: resample filter has a non-finite tap");
            sum += f;
        }
        if (sum == 0) throw new ArgumentException($"{op}: resample filter [{string.Join(", ", filter.ToArray())}] sums to 0");
        Span<float> t = stackalloc float[MaxLength];
        for (int i = 0; i < filter.Length; i++) t[i] = (float)(filter[i] / sum);
        return new FirTaps(filter.Length, t[0], t[1], t[2], t[3], t[4], t[5], t[6], t[7]);
    }
}

/// <summary>Planes (N*C), input H x W, output Ho x Wo, padding and gain of one resampling launch.</summary>
public readonly record struct ResampleShape(int Planes, int H, int W, int Ho, int Wo, int Pad, float Gain);

/// <summary>Which way a <see cref="Ops.ResampleConv2d"/> resamples.</summary>
public enum Resample
{
    /// <summary>No resampling (a plain Conv2d).</summary>
    None,
    /// <summary>Upsample by 2 (transposed FIR, gain 4).</summary>
    Up,
    /// <summary>Downsample by 2 (FIR, stride 2).</summary>
    Down,
}

/// <summary>Gradients of <see cref="Ops.ResampleConv2d"/>: dx, and dW / db when the layer has them.</summary>
public sealed record ResampleConv2dGrads(Tensor Dx, Tensor? Dw, Tensor? Db);

/// <summary>The FIR resampling kernels, loaded once per device.</summary>
public sealed class ResampleKernels : IKernelFamily<ResampleKernels>
{
    internal readonly Action<Index1D, ArrayView<float>, ArrayView<float>, ResampleShape, FirTaps, int> Down;
    internal readonly Action<Index1D, ArrayView<float>, ArrayView<float>, ResampleShape, FirTaps, int> Up;

    ResampleKernels(Accelerator acc)
    {
        Down = acc.LoadAutoGroupedStreamKernel<Index1D, ArrayView<float>, ArrayView<float>, ResampleShape, FirTaps, int>(FirDownKernel);
        Up = acc.LoadAutoGroupedStreamKernel<Index1D, ArrayView<float>, ArrayView<float>, ResampleShape, FirTaps, int>(FirUpKernel);
    }

    /// <inheritdoc/>
    public static ResampleKernels Load(EdmDevice device) => new(device.Accelerator);

    /// <summary>y (P, Ho, Wo) = gain * sum_{a,b} g[a] g[b] x[2oy+a-p, 2ox+b-p]; grid-stride.</summary>
    static void FirDownKernel(Index1D tid, ArrayView<float> x, ArrayView<float> y, ResampleShape s, FirTaps g, int stride)
    {
        int total = s.Planes * s.Ho * s.Wo;
        for (int i = tid; i < total; i += stride)
        {
            int ox = i % s.Wo, oy = (i / s.Wo) % s.Ho, pl = i / (s.Wo * s.Ho);
            int plane = pl * s.H * s.W;
            float acc = 0f;
            for (int a = 0; a < g.Length; a++)
            {
                int iy = 2 * oy + a - s.Pad;
                if (iy < 0 || iy >= s.H) continue;
                float row = 0f;
                for (int b = 0; b < g.Length; b++)
                {
                    int ix = 2 * ox + b - s.Pad;
                    if (ix >= 0 && ix < s.W) row += g[b] * x[plane + iy * s.W + ix];
                }
                acc += g[a] * row;
            }
            y[i] = s.Gain * acc;
        }
    }

    /// <summary>y (P, Ho, Wo) = gain * sum g[a] g[b] x[(oy+p-a)/2, (ox+p-b)/2] over even, in-range indices; grid-stride.</summary>
    static void FirUpKernel(Index1D tid, ArrayView<float> x, ArrayView<float> y, ResampleShape s, FirTaps g, int stride)
    {
        int total = s.Planes * s.Ho * s.Wo;
        for (int i = tid; i < total; i += stride)
        {
            int ox = i % s.Wo, oy = (i / s.Wo) % s.Ho, pl = i / (s.Wo * s.Ho);
            int plane = pl * s.H * s.W;
            float acc = 0f;
            for (int a = 0; a < g.Length; a++)
            {
                int ty = oy + s.Pad - a;
                if (ty < 0 || (ty & 1) != 0 || (ty >> 1) >= s.H) continue;
                float row = 0f;
                for (int b = 0; b < g.Length; b++)
                {
                    int tx = ox + s.Pad - b;
                    if (tx >= 0 && (tx & 1) == 0 && (tx >> 1) < s.W) row += g[b] * x[plane + (ty >> 1) * s.W + (tx >> 1)];
                }
                acc += g[a] * row;
            }
            y[i] = s.Gain * acc;
        }
    }
}

public static partial class Ops
{
    /// <summary>
    /// EDM downsampling: depthwise FIR g g^T with stride 2 and padding <paramref name="padding"/>
    /// (-1: (L-1)/2, as networks.py). <paramref name="x"/> (N, C, H, W); returns
    /// (N, C, floor((H+2p-L)/2)+1, floor((W+2p-L)/2)+1).
    /// </summary>
    public static Tensor FirDownsample2d(Tensor x, ReadOnlySpan<float> filter, int padding = -1)
    {
        var g = FirTaps.From("FirDownsample2d", filter);
        var s = DownShape("FirDownsample2d", x, g, padding, gain: 1f);
        return RunFir(x, s, g, down: true);
    }

    /// <summary>Gradient of <see cref="FirDownsample2d"/>: dx (N, C, <paramref name="height"/>, <paramref name="width"/>) from dy.</summary>
    public static Tensor FirDownsample2dBackward(Tensor dy, ReadOnlySpan<float> filter, int height, int width, int padding = -1)
    {
        const string op = "FirDownsample2dBackward";
        var g = FirTaps.From(op, filter);
        if (dy.Rank != 4) throw new ArgumentException($"{op}: dy must be (N, C, Ho, Wo), got {dy.ShapeString}");
        var fwd = DownShapeOf(op, dy.Shape[0] * dy.Shape[1], height, width, g, padding, 1f);
        Shapes.RequireEqual(op, "dy", [dy.Shape[0], dy.Shape[1], fwd.Ho, fwd.Wo], dy.Shape);
        // Adjoint of down: the up gather from (Ho, Wo) back to (H, W), gain 1.
        var s = new ResampleShape(fwd.Planes, fwd.Ho, fwd.Wo, height, width, fwd.Pad, 1f);
        return RunFir(dy, s, g, down: false);
    }

    /// <summary>
    /// EDM upsampling: depthwise transposed FIR 4 g g^T with stride 2 and padding
    /// <paramref name="padding"/> (-1: (L-1)/2). <paramref name="x"/> (N, C, H, W); returns
    /// (N, C, 2(H-1)-2p+L, 2(W-1)-2p+L), i.e. (2H, 2W) at the default padding.
    /// </summary>
    public static Tensor FirUpsample2d(Tensor x, ReadOnlySpan<float> filter, int padding = -1)
    {
        var g = FirTaps.From("FirUpsample2d", filter);
        var s = UpShape("FirUpsample2d", x, g, padding);
        return RunFir(x, s, g, down: false);
    }

    /// <summary>Gradient of <see cref="FirUpsample2d"/>: dx (N, C, <paramref name="height"/>, <paramref name="width"/>) from dy.</summary>
    public static Tensor FirUpsample2dBackward(Tensor dy, ReadOnlySpan<float> filter, int height, int width, int padding = -1)
    {
        const string op = "FirUpsample2dBackward";
        var g = FirTaps.From(op, filter);
        if (dy.Rank != 4) throw new ArgumentException($"{op}: dy must be (N, C, Ho, Wo), got {dy.ShapeString}");
        var fwd = UpShapeOf(op, dy.Shape[0] * dy.Shape[1], height, width, g, padding);
        Shapes.RequireEqual(op, "dy", [dy.Shape[0], dy.Shape[1], fwd.Ho, fwd.Wo], dy.Shape);
        // Adjoint of up: the stride-2 down gather from (Ho, Wo) to (H, W), gain 4.
        var s = new ResampleShape(fwd.Planes, fwd.Ho, fwd.Wo, height, width, fwd.Pad, 4f);
        return RunFir(dy, s, g, down: true);
    }

    /// <summary>
    /// EDM's Conv2d layer (networks.py Conv2d.forward): optional up/down FIR resampling combined with
    /// an optional odd k x k convolution <paramref name="weight"/> (Cout, Cin, k, k) and bias (Cout),
    /// sequential or <paramref name="fused"/>. <paramref name="x"/> is (N, Cin, H, W).
    /// </summary>
    public static Tensor ResampleConv2d(Tensor x, Tensor? weight, Tensor? bias, Resample mode, ReadOnlySpan<float> filter, bool fused = false)
    {
        const string op = "ResampleConv2d";
        CheckResampleConv(op, x, weight, bias, mode);
        int fPad = (filter.Length - 1) / 2;
        using var scope = new TensorScope();
        Tensor y;
        if (weight is null)
            y = mode == Resample.Up ? FirUpsample2d(x, filter) : FirDownsample2d(x, filter);
        else
        {
            int wPad = weight.Shape[2] / 2;
            if (fused && mode == Resample.Up)
                y = Conv2d(FirUpsample2d(x, filter, wPad + fPad), weight, bias, padding: 0);
            else if (fused && mode == Resample.Down)
            {
                y = FirDownsample2d(Conv2d(x, weight, null, padding: wPad + fPad), filter, padding: 0);
                if (bias is not null) AddBias(y, bias, y.Shape[0], y.Shape[1], y.Shape[2] * y.Shape[3]);
            }
            else
            {
                var t = mode == Resample.Up ? FirUpsample2d(x, filter) : mode == Resample.Down ? FirDownsample2d(x, filter) : x;
                y = Conv2d(t, weight, bias, padding: wPad);
            }
        }
        return scope.Escape(y);
    }

    /// <summary>
    /// Gradients of <see cref="ResampleConv2d"/> for output gradient <paramref name="dy"/>; the
    /// intermediate (resampled or convolved) activation is recomputed from <paramref name="x"/>.
    /// Dw is null without a weight, Db null unless <paramref name="hasBias"/>.
    /// </summary>
    public static ResampleConv2dGrads ResampleConv2dBackward(Tensor x, Tensor? weight, bool hasBias, Tensor dy, Resample mode, ReadOnlySpan<float> filter, bool fused = false)
    {
        const string op = "ResampleConv2dBackward";
        CheckResampleConv(op, x, weight, null, mode);
        if (hasBias && weight is null) throw new ArgumentException($"{op}: a bias needs a weight (networks.py has no bias without a kernel)");
        int h = x.Shape[2], w = x.Shape[3];
        int fPad = (filter.Length - 1) / 2;
        using var scope = new TensorScope();
        Tensor dx;
        Tensor? dw = null, db = null;
        if (weight is null)
            dx = mode == Resample.Up ? FirUpsample2dBackward(dy, filter, h, w) : FirDownsample2dBackward(dy, filter, h, w);
        else
        {
            int k = weight.Shape[2], wPad = k / 2;
            if (fused && mode == Resample.Up)
            {
                var t = FirUpsample2d(x, filter, wPad + fPad);
                var dt = Conv2dBackwardData(dy, weight, padding: 0);
                dw = Conv2dBackwardWeight(t, dy, k, padding: 0);
                dx = FirUpsample2dBackward(dt, filter, h, w, wPad + fPad);
            }
            else if (fused && mode == Resample.Down)
            {
                int th = h + 2 * (wPad + fPad) - k + 1, tw = w + 2 * (wPad + fPad) - k + 1;
                var dt = FirDownsample2dBackward(dy, filter, th, tw, padding: 0);
                dw = Conv2dBackwardWeight(x, dt, k, padding: wPad + fPad);
                dx = Conv2dBackwardData(dt, weight, padding: wPad + fPad);
            }
            else
            {
                var t = mode == Resample.Up ? FirUpsample2d(x, filter) : mode == Resample.Down ? FirDownsample2d(x, filter) : x;
                var dt = Conv2dBackwardData(dy, weight, padding: wPad);
                dw = Conv2dBackwardWeight(t, dy, k, padding: wPad);
                dx = mode == Resample.Up ? FirUpsample2dBackward(dt, filter, h, w)
                    : mode == Resample.Down ? FirDownsample2dBackward(dt, filter, h, w) : dt;
            }
            if (hasBias) db = Conv2dBackwardBias(dy);
        }
        scope.Escape(dx);
        if (dw is not null) scope.Escape(dw);
        if (db is not null) scope.Escape(db);
        return new ResampleConv2dGrads(dx, dw, db);
    }

    static void CheckResampleConv(string op, Tensor x, Tensor? weight, Tensor? bias, Resample mode)
    {
        if (x.Rank != 4) throw new ArgumentException($"{op}: x must be (N, C, H, W), got {x.ShapeString}");
        if (weight is null && mode == Resample.None) throw new ArgumentException($"{op}: neither a weight nor resampling: nothing to compute");
        if (bias is not null && weight is null) throw new ArgumentException($"{op}: a bias needs a weight (networks.py has no bias without a kernel)");
    }

    static ResampleShape DownShape(string op, Tensor x, FirTaps g, int padding, float gain)
    {
        if (x.Rank != 4) throw new ArgumentException($"{op}: x must be (N, C, H, W), got {x.ShapeString}");
        return DownShapeOf(op, x.Shape[0] * x.Shape[1], x.Shape[2], x.Shape[3], g, padding, gain);
    }

    static ResampleShape DownShapeOf(string op, int planes, int h, int w, FirTaps g, int padding, float gain)
    {
        int p = padding < 0 ? (g.Length - 1) / 2 : padding;
        int ho = (h + 2 * p - g.Length) / 2 + 1, wo = (w + 2 * p - g.Length) / 2 + 1;
        if (h + 2 * p < g.Length || w + 2 * p < g.Length)
            throw new ArgumentException($"{op}: input {h}x{w} with padding {p} is smaller than the {g.Length}-tap filter");
        return new ResampleShape(planes, h, w, ho, wo, p, gain);
    }

    static ResampleShape UpShape(string op, Tensor x, FirTaps g, int padding)
    {
        if (x.Rank != 4) throw new ArgumentException($"{op}: x must be (N, C, H, W), got {x.ShapeString}");
        return UpShapeOf(op, x.Shape[0] * x.Shape[1], x.Shape[2], x.Shape[3], g, padding);
    }

    static ResampleShape UpShapeOf(string op, int planes, int h, int w, FirTaps g, int padding)
    {
        int p = padding < 0 ? (g.Length - 1) / 2 : padding;
        long ho = 2L * (h - 1) - 2 * p + g.Length, wo = 2L * (w - 1) - 2 * p + g.Length;
        if (ho < 1 || wo < 1)
            throw new ArgumentException($"{op}: input {h}x{w} upsampled with padding {p} and a {g.Length}-tap filter is empty ({ho}x{wo})");
        if ((long)planes * ho * wo > Tensor.MaxElements)
            throw new ArgumentException($"{op}: output of {planes} planes of {ho}x{wo} exceeds 32-bit indexing");
        return new ResampleShape(planes, h, w, (int)ho, (int)wo, p, 4f);
    }

    /// <summary>Runs the down (stride-2 gather) or up (transposed gather) formula for shape s.</summary>
    static Tensor RunFir(Tensor x, ResampleShape s, FirTaps g, bool down)
    {
        int n = x.Shape[0], c = x.Shape[1];
        var y = Tensor.Empty(x.Device, n, c, s.Ho, s.Wo);
        var device = x.Device;
        if (device.UseCpuFastPath)
        {
            unsafe
            {
                fixed (float* px = x.CpuSpan(), py = y.CpuSpan())
                {
                    nint ax = (nint)px, ay = (nint)py;
                    int tmpLen = s.H * s.Wo;
                    Parallel.For(0, s.Planes, new ParallelOptions { MaxDegreeOfParallelism = Environment.ProcessorCount },
                        () => new float[tmpLen],
                        (pl, _, tmp) =>
                        {
                            fixed (float* pt = tmp)
                                FirPlaneSeparable((float*)ax + (long)pl * s.H * s.W, (float*)ay + (long)pl * s.Ho * s.Wo, pt, s, g, down);
                            return tmp;
                        },
                        _ => { });
                }
            }
            return y;
        }
        int threads = device.LaunchThreads(y.Length);
        var k = device.Kernels<ResampleKernels>();
        if (down) k.Down(threads, x.View, y.View, s, g, threads);
        else k.Up(threads, x.View, y.View, s, g, threads);
        return y;
    }

    /// <summary>
    /// One plane on the CPU, separably: a horizontal 1-D pass into tmp (H, Wo), then vertical
    /// row-axpys into y (Ho, Wo). 2L taps per output instead of L^2; same sum as the 2-D gather.
    /// </summary>
    static unsafe void FirPlaneSeparable(float* x, float* y, float* tmp, ResampleShape s, FirTaps g, bool down)
    {
        if (g.Length == 2 && s.Pad == 0 && (down ? 2 * s.Ho <= s.H && 2 * s.Wo <= s.W : s.Ho == 2 * s.H && s.Wo == 2 * s.W))
        {
            FirPlaneTwoTaps(x, y, s, g[0], g[1], down);
            return;
        }
        Span<float> taps = stackalloc float[FirTaps.MaxLength];
        for (int i = 0; i < g.Length; i++) taps[i] = g[i];
        for (int iy = 0; iy < s.H; iy++)
        {
            float* xr = x + (long)iy * s.W, tr = tmp + (long)iy * s.Wo;
            for (int ox = 0; ox < s.Wo; ox++)
            {
                float acc = 0f;
                for (int b = 0; b < g.Length; b++)
                {
                    int ix = FirSource(ox, b, s.Pad, down);
                    if ((uint)ix < (uint)s.W) acc += taps[b] * xr[ix];
                }
                tr[ox] = acc;
            }
        }
        for (int oy = 0; oy < s.Ho; oy++)
        {
            var yr = new Span<float>(y + (long)oy * s.Wo, s.Wo);
            yr.Clear();
            for (int a = 0; a < g.Length; a++)
            {
                int iy = FirSource(oy, a, s.Pad, down);
                if ((uint)iy >= (uint)s.H) continue;
                System.Numerics.Tensors.TensorPrimitives.MultiplyAdd(new ReadOnlySpan<float>(tmp + (long)iy * s.Wo, s.Wo), s.Gain * taps[a], yr, yr);
            }
        }
    }

    /// <summary>
    /// The two-tap filter without padding (DDPM++'s [1, 1]: a 2x2 box down, nearest-neighbour up),
    /// the same formula as the separable loops where every source index is in range (the caller
    /// checks 2 Ho &lt;= H and 2 Wo &lt;= W down, Ho = 2H and Wo = 2W up; the adjoints of odd sizes are not), no tmp:
    /// down y[oy, ox] = gain sum_ab g_a g_b x[2oy + a, 2ox + b];
    /// up y[oy, ox] = gain g_(oy mod 2) g_(ox mod 2) x[oy / 2, ox / 2]: each input row is
    /// widened once, then written to both output rows scaled.
    /// </summary>
    static unsafe void FirPlaneTwoTaps(float* x, float* y, ResampleShape s, float g0, float g1, bool down)
    {
        if (down)
        {
            float c00 = s.Gain * g0 * g0, c01 = s.Gain * g0 * g1, c10 = s.Gain * g1 * g0, c11 = s.Gain * g1 * g1;
            for (int oy = 0; oy < s.Ho; oy++)
            {
                float* r0 = x + (long)2 * oy * s.W, r1 = r0 + s.W, yr = y + (long)oy * s.Wo;
                for (int ox = 0; ox < s.Wo; ox++)
                    yr[ox] = (c00 * r0[2 * ox] + c01 * r0[2 * ox + 1]) + (c10 * r1[2 * ox] + c11 * r1[2 * ox + 1]);
            }
            return;
        }
        float h0 = s.Gain * g0, h1 = s.Gain * g1;
        for (int iy = 0; iy < s.H; iy++)
        {
            float* xr = x + (long)iy * s.W, y0 = y + (long)2 * iy * s.Wo, y1 = y0 + s.Wo;
            for (int ix = 0; ix < s.W; ix++)
            {
                float v = xr[ix];
                y0[2 * ix] = h0 * g0 * v;
                y0[2 * ix + 1] = h0 * g1 * v;
                y1[2 * ix] = h1 * g0 * v;
                y1[2 * ix + 1] = h1 * g1 * v;
            }
        }
    }

    /// <summary>Input index feeding output o through tap a: down 2o+a-p; up (o+p-a)/2 when even, else -1.</summary>
    static int FirSource(int o, int a, int pad, bool down)
    {
        if (down) return 2 * o + a - pad;
        int t = o + pad - a;
        return t >= 0 && (t & 1) == 0 ? t >> 1 : -1;
    }
}

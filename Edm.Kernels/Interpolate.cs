// Bilinear resizing to any output size, PyTorch's F.interpolate(x, size=(oh, ow), mode="bilinear",
// align_corners=False), over (..., H, W) (every leading dimension is a plane index p).
//   per axis: src = max(0, (o + 0.5) in / out - 0.5) (exact: a ratio of integers), i0 = floor(src),
//   i1 = min(i0 + 1, in - 1), l1 = src - i0, l0 = 1 - l1;
//   y[p, oy, ox] = ly0 (lx0 x[p, y0, x0] + lx1 x[p, y0, x1]) + ly1 (lx0 x[p, y1, x0] + lx1 x[p, y1, x1]).
// No antialiasing (as PyTorch's default antialias=False): downsizing samples, it does not average.
// Backward: dx = Ry^T dy Rx with Ry (oh, H), Rx (ow, W) the two-tap row matrices above.
//
// Variants:
//   1. float64 loops (Edm.Verification/References/InterpolateReference.cs).
//   2. CPU fast path: per-axis tap tables computed once, planes in parallel; the backward scatters
//      within a plane (one plane per task).
//   3. ILGPU kernels: grid-stride forward gather; the backward in two gathers (dy Rx, then Ry^T),
//      each output pixel scanning the short, contiguous run of outputs that read it (taps are
//      monotone in o), so no atomics.
using ILGPU;
using ILGPU.Runtime;

namespace Edm.Kernels;

/// <summary>
/// The bilinear taps of one axis (align_corners=False), shared by the kernels and the CPU path. The
/// source coordinate src = (o + 0.5) in / out - 0.5 = ((2o + 1) in - out) / (2 out) is a ratio of
/// integers, so i0 = floor(src) is computed exactly and only the fraction is rounded (to float32).
/// PyTorch's CPU kernel computes it in double precision: a float32 coordinate would move the
/// weights of 32 -> 299 by ~1e-6, three times PyTorch's own float32 rounding of the blend.
/// </summary>
public static class BilinearTaps
{
    /// <summary>Source taps of output <paramref name="o"/>: indices i0, i1 and the weight l1 of i1 (i0 gets 1 - l1).</summary>
    public static void Tap(int o, int inSize, int outSize, out int i0, out int i1, out float l1)
    {
        if (inSize < 32768 && outSize < 32768)
        {
            // 32-bit: (2o + 1) in <= 2 out in < 2^31 (64-bit division is slow on GPUs).
            int num = (2 * o + 1) * inSize - outSize, den = 2 * outSize;   // src = num / den, clamped at 0
            if (num <= 0) { i0 = 0; l1 = 0f; }
            else
            {
                int q = num / den;
                i0 = q;
                l1 = (float)(num - q * den) / den;
            }
        }
        else
        {
            long num = (2L * o + 1) * inSize - outSize, den = 2L * outSize;
            if (num <= 0) { i0 = 0; l1 = 0f; }
            else
            {
                long q = num / den;
                i0 = (int)q;
                l1 = (float)(num - q * den) / den;
            }
        }
        if (i0 > inSize - 1) { i0 = inSize - 1; l1 = 0f; }
        i1 = i0 < inSize - 1 ? i0 + 1 : i0;
    }

    /// <summary>Weight of input <paramref name="i"/> in output <paramref name="o"/> (0 when o does not read i).</summary>
    public static float Weight(int o, int i, int inSize, int outSize)
    {
        Tap(o, inSize, outSize, out int i0, out int i1, out float l1);
        float w = 0f;
        if (i0 == i) w += 1f - l1;
        if (i1 == i) w += l1;
        return w;
    }

    /// <summary>The first output that reads input i: the first o with i0(o) &gt;= i - 1 (taps are monotone in o).</summary>
    public static int FirstReader(int i, int inSize, int outSize)
    {
        long num = (2L * (i - 1) + 1) * outSize - inSize;  // i0(o) >= t  <=>  (2o + 1) in - out >= 2 out t
        if (num <= 0) return 0;
        return (int)((num + 2L * inSize - 1) / (2L * inSize));
    }
}

/// <summary>Shape of one resize: P planes of H x W to Ho x Wo.</summary>
public readonly record struct ResizeShape(int P, int H, int W, int Ho, int Wo);

/// <summary>Bilinear resize kernels, loaded once per device.</summary>
public sealed class InterpolateKernels : IKernelFamily<InterpolateKernels>
{
    internal readonly Action<Index1D, ArrayView<float>, ArrayView<float>, ResizeShape, int> Forward;
    internal readonly Action<Index1D, ArrayView<float>, ArrayView<float>, ResizeShape, int> BackwardRows;
    internal readonly Action<Index1D, ArrayView<float>, ArrayView<float>, ResizeShape, int> BackwardCols;

    InterpolateKernels(Accelerator a)
    {
        Forward = a.LoadAutoGroupedStreamKernel<Index1D, ArrayView<float>, ArrayView<float>, ResizeShape, int>(ForwardKernel);
        BackwardRows = a.LoadAutoGroupedStreamKernel<Index1D, ArrayView<float>, ArrayView<float>, ResizeShape, int>(BackwardRowsKernel);
        BackwardCols = a.LoadAutoGroupedStreamKernel<Index1D, ArrayView<float>, ArrayView<float>, ResizeShape, int>(BackwardColsKernel);
    }

    /// <inheritdoc/>
    public static InterpolateKernels Load(EdmDevice device) => new(device.Accelerator);

    /// y (P, Ho, Wo) from x (P, H, W); grid-stride over y.
    static void ForwardKernel(Index1D tid, ArrayView<float> x, ArrayView<float> y, ResizeShape s, int stride)
    {
        int n = s.P * s.Ho * s.Wo;
        for (int i = tid; i < n; i += stride)
        {
            int ox = i % s.Wo, oy = (i / s.Wo) % s.Ho, p = i / (s.Wo * s.Ho);
            BilinearTaps.Tap(oy, s.H, s.Ho, out int y0, out int y1, out float ly);
            BilinearTaps.Tap(ox, s.W, s.Wo, out int x0, out int x1, out float lx);
            int b = p * s.H * s.W;
            float r0 = (1f - lx) * x[b + y0 * s.W + x0] + lx * x[b + y0 * s.W + x1];
            float r1 = (1f - lx) * x[b + y1 * s.W + x0] + lx * x[b + y1 * s.W + x1];
            y[i] = (1f - ly) * r0 + ly * r1;
        }
    }

    /// t (P, Ho, W) = dy (P, Ho, Wo) Rx: each input column gathers the outputs that read it; grid-stride over t.
    static void BackwardColsKernel(Index1D tid, ArrayView<float> dy, ArrayView<float> t, ResizeShape s, int stride)
    {
        int n = s.P * s.Ho * s.W;
        for (int i = tid; i < n; i += stride)
        {
            int ix = i % s.W, row = i / s.W; // row = (p, oy)
            float acc = 0f;
            for (int ox = BilinearTaps.FirstReader(ix, s.W, s.Wo); ox < s.Wo; ox++)
            {
                BilinearTaps.Tap(ox, s.W, s.Wo, out int x0, out _, out _);
                if (x0 > ix) break;
                acc += BilinearTaps.Weight(ox, ix, s.W, s.Wo) * dy[row * s.Wo + ox];
            }
            t[i] = acc;
        }
    }

    /// dx (P, H, W) = Ry^T t (P, Ho, W); grid-stride over dx.
    static void BackwardRowsKernel(Index1D tid, ArrayView<float> t, ArrayView<float> dx, ResizeShape s, int stride)
    {
        int n = s.P * s.H * s.W;
        for (int i = tid; i < n; i += stride)
        {
            int ix = i % s.W, iy = (i / s.W) % s.H, p = i / (s.W * s.H);
            float acc = 0f;
            for (int oy = BilinearTaps.FirstReader(iy, s.H, s.Ho); oy < s.Ho; oy++)
            {
                BilinearTaps.Tap(oy, s.H, s.Ho, out int y0, out _, out _);
                if (y0 > iy) break;
                acc += BilinearTaps.Weight(oy, iy, s.H, s.Ho) * t[(p * s.Ho + oy) * s.W + ix];
            }
            dx[i] = acc;
        }
    }
}

public static partial class Ops
{
    /// <summary>
    /// Bilinear resize of the last two axes to (<paramref name="oh"/>, <paramref name="ow"/>),
    /// align_corners=False (PyTorch F.interpolate mode="bilinear"): (..., H, W) -> (..., oh, ow).
    /// </summary>
    public static Tensor InterpolateBilinear(Tensor x, int oh, int ow)
    {
        var s = ResizeValidate("InterpolateBilinear", x.Shape, oh, ow);
        var y = Tensor.Empty(x.Device, PoolOutShape(x.Shape, oh, ow));
        var d = x.Device;
        if (d.UseCpuFastPath) ResizeForwardCpu(x, y, s);
        else
        {
            int th = d.LaunchThreads(y.Length);
            d.Kernels<InterpolateKernels>().Forward(th, x.View, y.View, s, th);
        }
        return y;
    }

    /// <summary>Backward of <see cref="InterpolateBilinear"/>: dx (..., <paramref name="h"/>, <paramref name="w"/>) from dy (..., oh, ow).</summary>
    public static Tensor InterpolateBilinearBackward(Tensor dy, int h, int w)
    {
        if (dy.Rank < 2) throw new ArgumentException($"InterpolateBilinearBackward: dy has shape {dy.ShapeString}; expected (..., oh, ow)");
        var xShape = PoolOutShape(dy.Shape, h, w);
        var s = ResizeValidate("InterpolateBilinearBackward", xShape, dy.Shape[^2], dy.Shape[^1]);
        var dx = Tensor.Empty(dy.Device, xShape);
        var d = dy.Device;
        if (d.UseCpuFastPath) ResizeBackwardCpu(dy, dx, s);
        else
        {
            using var t = Tensor.Empty(d, s.P * s.Ho * s.W);
            var k = d.Kernels<InterpolateKernels>();
            int th = d.LaunchThreads(t.Length);
            k.BackwardCols(th, dy.View, t.View, s, th);
            th = d.LaunchThreads(dx.Length);
            k.BackwardRows(th, t.View, dx.View, s, th);
        }
        return dx;
    }

    static ResizeShape ResizeValidate(string op, int[] x, int oh, int ow)
    {
        if (x.Length < 2) throw new ArgumentException($"{op}: x has shape {Shapes.Format(x)}; expected (..., H, W) of rank >= 2");
        if (oh < 1 || ow < 1) throw new ArgumentException($"{op}: output size ({oh}, {ow}) must be >= 1 on both axes");
        int h = x[^2], w = x[^1];
        if (h < 1 || w < 1) throw new ArgumentException($"{op}: x has shape {Shapes.Format(x)}; H and W must be >= 1");
        Shapes.Validate(op, PoolOutShape(x, oh, ow));
        int planes = (int)(Shapes.Count(x) / ((long)h * w));
        return new ResizeShape(planes, h, w, oh, ow);
    }

    /// <summary>Tap tables of one axis: (i0, i1, l1) per output.</summary>
    static (int[] I0, int[] I1, float[] L1) ResizeTable(int outSize, int inSize)
    {
        var i0 = new int[outSize]; var i1 = new int[outSize]; var l1 = new float[outSize];
        for (int o = 0; o < outSize; o++) BilinearTaps.Tap(o, inSize, outSize, out i0[o], out i1[o], out l1[o]);
        return (i0, i1, l1);
    }

    static void ResizeForwardCpu(Tensor x, Tensor y, ResizeShape s)
    {
        var ty = ResizeTable(s.Ho, s.H);
        var tx = ResizeTable(s.Wo, s.W);
        int hw = s.H * s.W, ohw = s.Ho * s.Wo;
        RowChunks.Run(s.P, ohw, (p0, p1) =>
        {
            var xs = x.CpuSpan(); var ys = y.CpuSpan();
            for (int p = p0; p < p1; p++)
            {
                var plane = xs.Slice(p * hw, hw);
                var o = ys.Slice(p * ohw, ohw);
                for (int oy = 0; oy < s.Ho; oy++)
                {
                    var r0 = plane.Slice(ty.I0[oy] * s.W, s.W);
                    var r1 = plane.Slice(ty.I1[oy] * s.W, s.W);
                    float ly = ty.L1[oy];
                    var orow = o.Slice(oy * s.Wo, s.Wo);
                    for (int ox = 0; ox < s.Wo; ox++)
                    {
                        int x0 = tx.I0[ox], x1 = tx.I1[ox];
                        float lx = tx.L1[ox];
                        orow[ox] = (1f - ly) * ((1f - lx) * r0[x0] + lx * r0[x1]) + ly * ((1f - lx) * r1[x0] + lx * r1[x1]);
                    }
                }
            }
        });
    }

    static void ResizeBackwardCpu(Tensor dy, Tensor dx, ResizeShape s)
    {
        var ty = ResizeTable(s.Ho, s.H);
        var tx = ResizeTable(s.Wo, s.W);
        int hw = s.H * s.W, ohw = s.Ho * s.Wo;
        RowChunks.Run(s.P, ohw, (p0, p1) =>
        {
            var gs = dy.CpuSpan(); var ds = dx.CpuSpan();
            for (int p = p0; p < p1; p++)
            {
                var g = gs.Slice(p * ohw, ohw);
                var d = ds.Slice(p * hw, hw);
                d.Clear();
                for (int oy = 0; oy < s.Ho; oy++)
                {
                    var r0 = d.Slice(ty.I0[oy] * s.W, s.W);
                    var r1 = d.Slice(ty.I1[oy] * s.W, s.W);
                    float ly = ty.L1[oy];
                    for (int ox = 0; ox < s.Wo; ox++)
                    {
                        int x0 = tx.I0[ox], x1 = tx.I1[ox];
                        float lx = tx.L1[ox], v = g[oy * s.Wo + ox];
                        float a = (1f - ly) * v, b = ly * v;
                        r0[x0] += (1f - lx) * a; r0[x1] += lx * a;
                        r1[x0] += (1f - lx) * b; r1[x1] += lx * b;
                    }
                }
            }
        });
    }
}

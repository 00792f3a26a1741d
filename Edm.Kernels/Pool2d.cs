// Windowed pooling with kernel (kh, kw), stride (sh, sw) and padding per side (PyTorch's
// max_pool2d / avg_pool2d with ceil_mode=False), and adaptive average pooling (adaptive_avg_pool2d),
// over (..., H, W): every leading dimension is a plane index p.
//   window of output (oy, ox): rows oy sh - pt .. oy sh - pt + kh - 1, columns likewise; the taps
//   inside the image are "valid", the others are padding.
//   MaxPool2d:  y = max over the valid taps (the first maximum in (ky, kx) order wins; NaN wins).
//               dx[i] = sum of dy over the windows whose maximum is tap i.
//   AvgPool2d:  y = sum over the valid taps / count, count = kh kw (count_include_pad = true:
//               padding counts as zeros) or the number of valid taps (count_include_pad = false,
//               as TensorFlow and pytorch-fid's Inception blocks).
//               dx[i] = sum over the windows containing i of dy / count.
//   AdaptiveAvgPool2d to (oh, ow): window rows floor(oy H / oh) .. ceil((oy + 1) H / oh) - 1, the
//               mean over it; (1, 1) is the global average pool.
// Ho = (H + pt + pb - kh) / sh + 1 (floor). Each padding is at most half the kernel (PyTorch's
// rule), so every window holds at least one valid tap.
//
// Variants:
//   1. float64 loops (Edm.Verification/References/Pool2dReference.cs).
//   2. CPU fast path: Parallel.For over chunks of planes; the forward combines each window's input
//      rows elementwise (TensorPrimitives) and then reduces kw adjacent values per output; backwards
//      scatter within a plane (one plane per task, so no races).
//   3. ILGPU kernels: grid-stride over outputs for the forwards; the backwards gather over the
//      windows covering each input pixel (max recomputes each window's argmax), so no atomics.
using ILGPU;
using ILGPU.Algorithms;
using ILGPU.Runtime;

namespace Edm.Kernels;

/// <summary>Pooling kinds of <see cref="PoolShape"/>.</summary>
public enum PoolMode
{
    /// <summary>Maximum over the valid taps.</summary>
    Max = 0,
    /// <summary>Average, padding counted as zeros (count_include_pad = true).</summary>
    AvgIncludePad = 1,
    /// <summary>Average over the valid taps only (count_include_pad = false).</summary>
    AvgExcludePad = 2,
}

/// <summary>Shape record of one pooling: P planes of H x W to Ho x Wo.</summary>
public readonly record struct PoolShape(int P, int H, int W, int Ho, int Wo, int KH, int KW, int SH, int SW, int PT, int PB, int PL, int PR, int Mode)
{
    /// <summary>The averaging divisor of window (oy, ox).</summary>
    public int Count(int oy, int ox)
    {
        int y0 = oy * SH - PT, x0 = ox * SW - PL;
        if (Mode == (int)PoolMode.AvgIncludePad)
        {
            // PyTorch: the window clipped to the padded image, H + pb (equal to kh kw when the
            // window fits, which floor-mode output sizes guarantee).
            int ye = y0 + KH < H + PB ? y0 + KH : H + PB, xe = x0 + KW < W + PR ? x0 + KW : W + PR;
            return (ye - y0) * (xe - x0);
        }
        int ya = y0 > 0 ? y0 : 0, yb = y0 + KH < H ? y0 + KH : H;
        int xa = x0 > 0 ? x0 : 0, xb = x0 + KW < W ? x0 + KW : W;
        return (yb - ya) * (xb - xa);
    }
}

/// <summary>Pooling kernels, loaded once per device.</summary>
public sealed class Pool2dKernels : IKernelFamily<Pool2dKernels>
{
    internal readonly Action<Index1D, ArrayView<float>, ArrayView<float>, PoolShape, int> Forward;
    internal readonly Action<Index1D, ArrayView<float>, ArrayView<float>, ArrayView<float>, PoolShape, int> Backward;
    internal readonly Action<Index1D, ArrayView<float>, ArrayView<float>, PoolShape, int> AdaptiveForward;
    internal readonly Action<Index1D, ArrayView<float>, ArrayView<float>, PoolShape, int> AdaptiveBackward;

    Pool2dKernels(Accelerator a)
    {
        Forward = a.LoadAutoGroupedStreamKernel<Index1D, ArrayView<float>, ArrayView<float>, PoolShape, int>(ForwardKernel);
        Backward = a.LoadAutoGroupedStreamKernel<Index1D, ArrayView<float>, ArrayView<float>, ArrayView<float>, PoolShape, int>(BackwardKernel);
        AdaptiveForward = a.LoadAutoGroupedStreamKernel<Index1D, ArrayView<float>, ArrayView<float>, PoolShape, int>(AdaptiveForwardKernel);
        AdaptiveBackward = a.LoadAutoGroupedStreamKernel<Index1D, ArrayView<float>, ArrayView<float>, PoolShape, int>(AdaptiveBackwardKernel);
    }

    /// <inheritdoc/>
    public static Pool2dKernels Load(EdmDevice device) => new(device.Accelerator);

    /// Index (in the plane) of window (oy, ox)'s maximum: the first in (ky, kx) order, NaN wins.
    static int ArgMax(ArrayView<float> x, int plane, int oy, int ox, PoolShape s)
    {
        int y0 = oy * s.SH - s.PT, x0 = ox * s.SW - s.PL, best = -1;
        float m = 0f;
        for (int ky = 0; ky < s.KH; ky++)
        {
            int iy = y0 + ky;
            if (iy < 0 || iy >= s.H) continue;
            for (int kx = 0; kx < s.KW; kx++)
            {
                int ix = x0 + kx;
                if (ix < 0 || ix >= s.W) continue;
                float v = x[plane + iy * s.W + ix];
                if (best < 0 || v > m || (XMath.IsNaN(v) && !XMath.IsNaN(m))) { m = v; best = iy * s.W + ix; }
            }
        }
        return best;
    }

    /// y (P, Ho, Wo) from x (P, H, W); grid-stride over y.
    static void ForwardKernel(Index1D tid, ArrayView<float> x, ArrayView<float> y, PoolShape s, int stride)
    {
        int n = s.P * s.Ho * s.Wo;
        for (int i = tid; i < n; i += stride)
        {
            int ox = i % s.Wo, oy = (i / s.Wo) % s.Ho, p = i / (s.Wo * s.Ho);
            int plane = p * s.H * s.W;
            if (s.Mode == (int)PoolMode.Max)
            {
                y[i] = x[plane + ArgMax(x, plane, oy, ox, s)];
                continue;
            }
            int y0 = oy * s.SH - s.PT, x0 = ox * s.SW - s.PL;
            float acc = 0f;
            for (int ky = 0; ky < s.KH; ky++)
            {
                int iy = y0 + ky;
                if (iy < 0 || iy >= s.H) continue;
                for (int kx = 0; kx < s.KW; kx++)
                {
                    int ix = x0 + kx;
                    if (ix >= 0 && ix < s.W) acc += x[plane + iy * s.W + ix];
                }
            }
            y[i] = acc / s.Count(oy, ox);
        }
    }

    /// dx (P, H, W) from dy (P, Ho, Wo) (and x for max): gather over the windows covering each input; grid-stride over dx.
    static void BackwardKernel(Index1D tid, ArrayView<float> x, ArrayView<float> dy, ArrayView<float> dx, PoolShape s, int stride)
    {
        int n = s.P * s.H * s.W;
        for (int i = tid; i < n; i += stride)
        {
            int ix = i % s.W, iy = (i / s.W) % s.H, p = i / (s.W * s.H);
            int plane = p * s.H * s.W, own = iy * s.W + ix;
            // Windows oy with oy sh - pt <= iy <= oy sh - pt + kh - 1.
            int ty = iy + s.PT, tx = ix + s.PL;
            int oyLo = ty - s.KH + 1 <= 0 ? 0 : (ty - s.KH + s.SH) / s.SH, oyHi = ty / s.SH;
            int oxLo = tx - s.KW + 1 <= 0 ? 0 : (tx - s.KW + s.SW) / s.SW, oxHi = tx / s.SW;
            if (oyHi >= s.Ho) oyHi = s.Ho - 1;
            if (oxHi >= s.Wo) oxHi = s.Wo - 1;
            float acc = 0f;
            for (int oy = oyLo; oy <= oyHi; oy++)
                for (int ox = oxLo; ox <= oxHi; ox++)
                {
                    float g = dy[(p * s.Ho + oy) * s.Wo + ox];
                    if (s.Mode == (int)PoolMode.Max) { if (ArgMax(x, plane, oy, ox, s) == own) acc += g; }
                    else acc += g / s.Count(oy, ox);
                }
            dx[i] = acc;
        }
    }

    /// y (P, Ho, Wo) = window means of x (P, H, W), adaptive windows; grid-stride over y.
    static void AdaptiveForwardKernel(Index1D tid, ArrayView<float> x, ArrayView<float> y, PoolShape s, int stride)
    {
        int n = s.P * s.Ho * s.Wo;
        for (int i = tid; i < n; i += stride)
        {
            int ox = i % s.Wo, oy = (i / s.Wo) % s.Ho, p = i / (s.Wo * s.Ho);
            int y0 = oy * s.H / s.Ho, y1 = ((oy + 1) * s.H + s.Ho - 1) / s.Ho;
            int x0 = ox * s.W / s.Wo, x1 = ((ox + 1) * s.W + s.Wo - 1) / s.Wo;
            float acc = 0f;
            for (int iy = y0; iy < y1; iy++)
                for (int ix = x0; ix < x1; ix++) acc += x[(p * s.H + iy) * s.W + ix];
            y[i] = acc / ((y1 - y0) * (x1 - x0));
        }
    }

    /// dx (P, H, W) = sum over the adaptive windows containing each input of dy / window size; grid-stride over dx.
    static void AdaptiveBackwardKernel(Index1D tid, ArrayView<float> dy, ArrayView<float> dx, PoolShape s, int stride)
    {
        int n = s.P * s.H * s.W;
        for (int i = tid; i < n; i += stride)
        {
            int ix = i % s.W, iy = (i / s.W) % s.H, p = i / (s.W * s.H);
            // Windows containing iy: oy in [floor(iy oh / H), ceil((iy + 1) oh / H) - 1].
            int oyLo = iy * s.Ho / s.H, oyHi = ((iy + 1) * s.Ho + s.H - 1) / s.H - 1;
            int oxLo = ix * s.Wo / s.W, oxHi = ((ix + 1) * s.Wo + s.W - 1) / s.W - 1;
            float acc = 0f;
            for (int oy = oyLo; oy <= oyHi; oy++)
            {
                int y0 = oy * s.H / s.Ho, y1 = ((oy + 1) * s.H + s.Ho - 1) / s.Ho;
                for (int ox = oxLo; ox <= oxHi; ox++)
                {
                    int x0 = ox * s.W / s.Wo, x1 = ((ox + 1) * s.W + s.Wo - 1) / s.Wo;
                    acc += dy[(p * s.Ho + oy) * s.Wo + ox] / ((y1 - y0) * (x1 - x0));
                }
            }
            dx[i] = acc;
        }
    }
}

public static partial class Ops
{
    /// <summary>
    /// Max pooling over the last two axes of <paramref name="x"/> (..., H, W) with kernel
    /// (<paramref name="kh"/>, <paramref name="kw"/>) and stride / padding <paramref name="p"/>
    /// (PyTorch max_pool2d, ceil_mode=False, padding never selected). Returns (..., Ho, Wo).
    /// </summary>
    public static Tensor MaxPool2d(Tensor x, int kh, int kw, Conv2dParams p) => PoolForward("MaxPool2d", x, kh, kw, p, PoolMode.Max);

    /// <summary>
    /// Average pooling over the last two axes (PyTorch avg_pool2d, ceil_mode=False);
    /// <paramref name="countIncludePad"/> false divides by the number of taps inside the image.
    /// </summary>
    public static Tensor AvgPool2d(Tensor x, int kh, int kw, Conv2dParams p, bool countIncludePad) =>
        PoolForward("AvgPool2d", x, kh, kw, p, countIncludePad ? PoolMode.AvgIncludePad : PoolMode.AvgExcludePad);

    /// <summary>Backward of <see cref="MaxPool2d"/>: dx (x's shape) from x and dy (..., Ho, Wo).</summary>
    public static Tensor MaxPool2dBackward(Tensor x, Tensor dy, int kh, int kw, Conv2dParams p) =>
        PoolBackward("MaxPool2dBackward", x, dy, kh, kw, p, PoolMode.Max);

    /// <summary>Backward of <see cref="AvgPool2d"/>: dx (..., H, W) from dy (..., Ho, Wo); x supplies only the shape.</summary>
    public static Tensor AvgPool2dBackward(Tensor x, Tensor dy, int kh, int kw, Conv2dParams p, bool countIncludePad) =>
        PoolBackward("AvgPool2dBackward", x, dy, kh, kw, p, countIncludePad ? PoolMode.AvgIncludePad : PoolMode.AvgExcludePad);

    /// <summary>Adaptive average pooling of (..., H, W) to (..., oh, ow) (PyTorch adaptive_avg_pool2d); (1, 1) is the global mean.</summary>
    public static Tensor AdaptiveAvgPool2d(Tensor x, int oh, int ow)
    {
        var s = AdaptiveShape("AdaptiveAvgPool2d", x.Shape, oh, ow);
        var y = Tensor.Empty(x.Device, PoolOutShape(x.Shape, oh, ow));
        var d = x.Device;
        if (d.UseCpuFastPath) AdaptiveForwardCpu(x, y, s);
        else
        {
            int th = d.LaunchThreads(y.Length);
            d.Kernels<Pool2dKernels>().AdaptiveForward(th, x.View, y.View, s, th);
        }
        return y;
    }

    /// <summary>Backward of <see cref="AdaptiveAvgPool2d"/>: dx (..., H, W) from dy (..., oh, ow).</summary>
    public static Tensor AdaptiveAvgPool2dBackward(Tensor dy, int h, int w)
    {
        if (dy.Rank < 2) throw new ArgumentException($"AdaptiveAvgPool2dBackward: dy has shape {dy.ShapeString}; expected (..., oh, ow)");
        var xShape = PoolOutShape(dy.Shape, h, w);
        var s = AdaptiveShape("AdaptiveAvgPool2dBackward", xShape, dy.Shape[^2], dy.Shape[^1]);
        var dx = Tensor.Empty(dy.Device, xShape);
        var d = dy.Device;
        if (d.UseCpuFastPath) AdaptiveBackwardCpu(dy, dx, s);
        else
        {
            int th = d.LaunchThreads(dx.Length);
            d.Kernels<Pool2dKernels>().AdaptiveBackward(th, dy.View, dx.View, s, th);
        }
        return dx;
    }

    static int[] PoolOutShape(int[] shape, int h, int w)
    {
        var o = (int[])shape.Clone();
        o[^2] = h;
        o[^1] = w;
        return o;
    }

    static PoolShape AdaptiveShape(string op, int[] x, int oh, int ow)
    {
        if (x.Length < 2) throw new ArgumentException($"{op}: x has shape {Shapes.Format(x)}; expected (..., H, W) of rank >= 2");
        if (oh < 1 || ow < 1) throw new ArgumentException($"{op}: output size ({oh}, {ow}) must be >= 1 on both axes");
        int h = x[^2], w = x[^1];
        if (h < 1 || w < 1) throw new ArgumentException($"{op}: x has shape {Shapes.Format(x)}; H and W must be >= 1");
        Shapes.Validate(op, PoolOutShape(x, oh, ow));
        int planes = (int)(Shapes.Count(x) / ((long)h * w));
        return new PoolShape(planes, h, w, oh, ow, 0, 0, 1, 1, 0, 0, 0, 0, 0);
    }

    /// <summary>Validates a windowed pooling and derives its shape.</summary>
    static PoolShape PoolValidate(string op, int[] x, int kh, int kw, Conv2dParams p, PoolMode mode)
    {
        if (x.Length < 2) throw new ArgumentException($"{op}: x has shape {Shapes.Format(x)}; expected (..., H, W) of rank >= 2");
        if (kh < 1 || kw < 1) throw new ArgumentException($"{op}: kernel ({kh}, {kw}) must be >= 1 on both axes");
        if (p.StrideH < 1 || p.StrideW < 1) throw new ArgumentException($"{op}: stride ({p.StrideH}, {p.StrideW}) must be >= 1 on both axes");
        if (p.PadTop < 0 || p.PadBottom < 0 || p.PadLeft < 0 || p.PadRight < 0 || p.PadTop > kh / 2 || p.PadBottom > kh / 2 || p.PadLeft > kw / 2 || p.PadRight > kw / 2)
            throw new ArgumentException($"{op}: {p} with kernel ({kh}, {kw}); allowed: 0 <= padding <= half the kernel on each side (top/bottom <= {kh / 2}, left/right <= {kw / 2})");
        int h = x[^2], w = x[^1];
        if (h + p.PadTop + p.PadBottom < kh || w + p.PadLeft + p.PadRight < kw)
            throw new ArgumentException($"{op}: x {Shapes.Format(x)} with {p} is smaller than the kernel ({kh}, {kw})");
        int ho = (h + p.PadTop + p.PadBottom - kh) / p.StrideH + 1, wo = (w + p.PadLeft + p.PadRight - kw) / p.StrideW + 1;
        Shapes.Validate(op, PoolOutShape(x, ho, wo));
        int planes = (int)(Shapes.Count(x) / ((long)h * w));
        return new PoolShape(planes, h, w, ho, wo, kh, kw, p.StrideH, p.StrideW, p.PadTop, p.PadBottom, p.PadLeft, p.PadRight, (int)mode);
    }

    static Tensor PoolForward(string op, Tensor x, int kh, int kw, Conv2dParams p, PoolMode mode)
    {
        var s = PoolValidate(op, x.Shape, kh, kw, p, mode);
        var y = Tensor.Empty(x.Device, PoolOutShape(x.Shape, s.Ho, s.Wo));
        var d = x.Device;
        if (d.UseCpuFastPath) PoolForwardCpu(x, y, s);
        else
        {
            int th = d.LaunchThreads(y.Length);
            d.Kernels<Pool2dKernels>().Forward(th, x.View, y.View, s, th);
        }
        return y;
    }

    static Tensor PoolBackward(string op, Tensor x, Tensor dy, int kh, int kw, Conv2dParams p, PoolMode mode)
    {
        var s = PoolValidate(op, x.Shape, kh, kw, p, mode);
        Shapes.RequireEqual(op, "dy", PoolOutShape(x.Shape, s.Ho, s.Wo), dy.Shape);
        var dx = Tensor.Empty(x.Device, x.Shape);
        var d = x.Device;
        if (d.UseCpuFastPath) PoolBackwardCpu(x, dy, dx, s);
        else
        {
            int th = d.LaunchThreads(dx.Length);
            d.Kernels<Pool2dKernels>().Backward(th, x.View, dy.View, dx.View, s, th);
        }
        return dx;
    }

    // ---- CPU fast path: planes in parallel, plain loops ----

    static int ArgMaxCpu(ReadOnlySpan<float> plane, int oy, int ox, in PoolShape s)
    {
        int y0 = oy * s.SH - s.PT, x0 = ox * s.SW - s.PL, best = -1;
        float m = 0f;
        int ya = Math.Max(0, y0), yb = Math.Min(s.H, y0 + s.KH), xa = Math.Max(0, x0), xb = Math.Min(s.W, x0 + s.KW);
        for (int iy = ya; iy < yb; iy++)
        {
            var row = plane.Slice(iy * s.W);
            for (int ix = xa; ix < xb; ix++)
            {
                float v = row[ix];
                if (best < 0 || v > m || (float.IsNaN(v) && !float.IsNaN(m))) { m = v; best = iy * s.W + ix; }
            }
        }
        return best;
    }

    /// <summary>
    /// Per output row: the window's input rows combined elementwise first (max or sum over whole
    /// rows, vectorised by TensorPrimitives; its Max propagates NaN), then each output reduces kw
    /// adjacent values of that row. About 5x fewer scalar steps than reducing each window alone.
    /// </summary>
    static void PoolForwardCpu(Tensor x, Tensor y, PoolShape s)
    {
        int hw = s.H * s.W, ohw = s.Ho * s.Wo;
        bool max = s.Mode == (int)PoolMode.Max;
        RowChunks.Run(s.P, hw, (p0, p1) =>
        {
            var xs = x.CpuSpan(); var ys = y.CpuSpan();
            var buf = System.Buffers.ArrayPool<float>.Shared.Rent(s.W);
            try
            {
                var r = buf.AsSpan(0, s.W);
                for (int p = p0; p < p1; p++)
                {
                    var plane = xs.Slice(p * hw, hw);
                    var o = ys.Slice(p * ohw, ohw);
                    for (int oy = 0; oy < s.Ho; oy++)
                    {
                        int y0 = oy * s.SH - s.PT, ya = Math.Max(0, y0), yb = Math.Min(s.H, y0 + s.KH);
                        plane.Slice(ya * s.W, s.W).CopyTo(r);
                        for (int iy = ya + 1; iy < yb; iy++)
                        {
                            var row = plane.Slice(iy * s.W, s.W);
                            if (max) System.Numerics.Tensors.TensorPrimitives.Max(r, row, r);
                            else System.Numerics.Tensors.TensorPrimitives.Add(r, row, r);
                        }
                        var orow = o.Slice(oy * s.Wo, s.Wo);
                        for (int ox = 0; ox < s.Wo; ox++)
                        {
                            int x0 = ox * s.SW - s.PL, xa = Math.Max(0, x0), xb = Math.Min(s.W, x0 + s.KW);
                            float acc = r[xa];
                            if (max)
                            {
                                for (int j = xa + 1; j < xb && !float.IsNaN(acc); j++)
                                    if (!(r[j] <= acc)) acc = r[j];
                                orow[ox] = acc;
                                continue;
                            }
                            for (int j = xa + 1; j < xb; j++) acc += r[j];
                            orow[ox] = acc / s.Count(oy, ox);
                        }
                    }
                }
            }
            finally { System.Buffers.ArrayPool<float>.Shared.Return(buf); }
        });
    }

    static void PoolBackwardCpu(Tensor x, Tensor dy, Tensor dx, PoolShape s)
    {
        int hw = s.H * s.W, ohw = s.Ho * s.Wo;
        RowChunks.Run(s.P, hw, (p0, p1) =>
        {
            var xs = x.CpuSpan(); var gs = dy.CpuSpan(); var ds = dx.CpuSpan();
            for (int p = p0; p < p1; p++)
            {
                var plane = xs.Slice(p * hw, hw);
                var g = gs.Slice(p * ohw, ohw);
                var d = ds.Slice(p * hw, hw);
                d.Clear();
                for (int oy = 0; oy < s.Ho; oy++)
                    for (int ox = 0; ox < s.Wo; ox++)
                    {
                        float gv = g[oy * s.Wo + ox];
                        if (s.Mode == (int)PoolMode.Max) { d[ArgMaxCpu(plane, oy, ox, s)] += gv; continue; }
                        int y0 = oy * s.SH - s.PT, x0 = ox * s.SW - s.PL;
                        int ya = Math.Max(0, y0), yb = Math.Min(s.H, y0 + s.KH), xa = Math.Max(0, x0), xb = Math.Min(s.W, x0 + s.KW);
                        float v = gv / s.Count(oy, ox);
                        for (int iy = ya; iy < yb; iy++)
                            for (int ix = xa; ix < xb; ix++) d[iy * s.W + ix] += v;
                    }
            }
        });
    }

    static void AdaptiveForwardCpu(Tensor x, Tensor y, PoolShape s)
    {
        int hw = s.H * s.W, ohw = s.Ho * s.Wo;
        RowChunks.Run(s.P, hw, (p0, p1) =>
        {
            var xs = x.CpuSpan(); var ys = y.CpuSpan();
            for (int p = p0; p < p1; p++)
            {
                var plane = xs.Slice(p * hw, hw);
                if (ohw == 1) { ys[p] = System.Numerics.Tensors.TensorPrimitives.Sum(plane) / hw; continue; }
                for (int oy = 0; oy < s.Ho; oy++)
                {
                    int y0 = oy * s.H / s.Ho, y1 = ((oy + 1) * s.H + s.Ho - 1) / s.Ho;
                    for (int ox = 0; ox < s.Wo; ox++)
                    {
                        int x0 = ox * s.W / s.Wo, x1 = ((ox + 1) * s.W + s.Wo - 1) / s.Wo;
                        float acc = 0f;
                        for (int iy = y0; iy < y1; iy++)
                            acc += System.Numerics.Tensors.TensorPrimitives.Sum(plane.Slice(iy * s.W + x0, x1 - x0));
                        ys[p * ohw + oy * s.Wo + ox] = acc / ((y1 - y0) * (x1 - x0));
                    }
                }
            }
        });
    }

    static void AdaptiveBackwardCpu(Tensor dy, Tensor dx, PoolShape s)
    {
        int hw = s.H * s.W, ohw = s.Ho * s.Wo;
        RowChunks.Run(s.P, hw, (p0, p1) =>
        {
            var gs = dy.CpuSpan(); var ds = dx.CpuSpan();
            for (int p = p0; p < p1; p++)
            {
                var d = ds.Slice(p * hw, hw);
                d.Clear();
                for (int oy = 0; oy < s.Ho; oy++)
                {
                    int y0 = oy * s.H / s.Ho, y1 = ((oy + 1) * s.H + s.Ho - 1) / s.Ho;
                    for (int ox = 0; ox < s.Wo; ox++)
                    {
                        int x0 = ox * s.W / s.Wo, x1 = ((ox + 1) * s.W + s.Wo - 1) / s.Wo;
                        float v = gs[p * ohw + oy * s.Wo + ox] / ((y1 - y0) * (x1 - x0));
                        for (int iy = y0; iy < y1; iy++)
                            for (int ix = x0; ix < x1; ix++) d[iy * s.W + ix] += v;
                    }
                }
            }
        });
    }
}

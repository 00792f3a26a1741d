// Concat, slice and slice-assignment along one axis of contiguous tensors.
// A tensor is viewed as (outer, axis, inner); copying `count` positions of the axis from src
// (starting at srcStart) to dst (starting at dstStart) moves outer blocks of count x inner
// contiguous elements.
// Variants: v1 grid-stride kernel over outer x count x inner; v2 CPU fast path: one span copy per
// outer block.
using ILGPU;
using ILGPU.Runtime;

namespace Edm.Kernels;

/// <summary>Axis-block copy geometry (outer, inner sizes; axis lengths and starts).</summary>
public readonly record struct AxisCopy(int Outer, int Inner, int SrcAxis, int SrcStart, int DstAxis, int DstStart, int Count);

/// <summary>Layout kernels.</summary>
public sealed class LayoutKernels : IKernelFamily<LayoutKernels>
{
    internal readonly Action<AcceleratorStream, Index1D, ArrayView<float>, ArrayView<float>, int, int, AxisCopy> CopyAxis;
    internal readonly Action<AcceleratorStream, Index1D, ArrayView<float>, ArrayView<float>, int, int, StridedIndex> Gather;
    LayoutKernels(Accelerator acc)
    {
        CopyAxis = acc.LoadAutoGroupedKernel<Index1D, ArrayView<float>, ArrayView<float>, int, int, AxisCopy>(LayoutKernels.CopyAxisKernel);
        Gather = acc.LoadAutoGroupedKernel<Index1D, ArrayView<float>, ArrayView<float>, int, int, StridedIndex>(LayoutKernels.GatherKernel);
    }
    /// <inheritdoc/>
    public static LayoutKernels Load(EdmDevice device) => new(device.Accelerator);

    /// <summary>y[i] = x[src.Offset(i)]: a strided gather (permutes, transposes).</summary>
    public static void GatherKernel(Index1D tid, ArrayView<float> x, ArrayView<float> y, int n, int stride, StridedIndex src)
    {
        for (int i = tid; i < n; i += stride) y[i] = x[src.Offset(i)];
    }

    /// <summary>dst[o, dstStart + a, i] = src[o, srcStart + a, i] for a in [0, count).</summary>
    public static void CopyAxisKernel(Index1D tid, ArrayView<float> src, ArrayView<float> dst, int n, int stride, AxisCopy g)
    {
        for (int t = tid; t < n; t += stride)
        {
            int i = t % g.Inner;
            int q = t / g.Inner;
            int a = q % g.Count;
            int o = q / g.Count;
            dst[(o * g.DstAxis + g.DstStart + a) * g.Inner + i] = src[(o * g.SrcAxis + g.SrcStart + a) * g.Inner + i];
        }
    }
}


public static partial class Ops
{
    /// <summary>
    /// Permutes dimensions: output dimension i is input dimension perm[i] (as torch.permute),
    /// materialised contiguously.
    /// </summary>
    public static Tensor Permute(Tensor x, params int[] perm)
    {
        if (perm.Length != x.Rank || perm.Distinct().Count() != perm.Length || perm.Any(p => p < 0 || p >= x.Rank))
            throw new ArgumentException($"Permute: [{string.Join(", ", perm)}] is not a permutation of the {x.Rank} dimensions of {x.ShapeString}");
        var shape = perm.Select(p => x.Shape[p]).ToArray();
        var strides = perm.Select(p => x.Strides[p]).ToArray();
        var src = StridedIndex.Create("Permute", shape, strides);
        var y = Tensor.Empty(x.Device, shape);
        var dev = x.Device;
        int n = x.Length;
        if (dev.UseCpuFastPath && n > 0)
        {
            // By output rows: the source offset once per row (not per element), then a copy (unit
            // stride) or a strided gather along the row.
            int row = shape[^1], step = strides[^1];
            if (step != 1 && shape.Length >= 2 && strides[^2] == 1 && shape[^2] > 1)
            {
                PermuteTransposeCpu(x, y, src, shape[^2], row, step);
                return y;
            }
            CpuParallel.For(n / row, (s, c) =>
            {
                var xs = x.CpuSpan(); var ys = y.CpuSpan();
                for (int r = s; r < s + c; r++)
                {
                    int o = r * row, b = src.Offset(o);
                    if (step == 1) xs.Slice(b, row).CopyTo(ys.Slice(o, row));
                    else for (int j = 0; j < row; j++) ys[o + j] = xs[b + j * step];
                }
            }, minChunk: Math.Max(1, CpuParallel.MinChunk / row));
            return y;
        }
        int t = dev.LaunchThreads(n);
        dev.Kernels<LayoutKernels>().Gather(dev.Accelerator.DefaultStream, t, x.View, y.View, n, t, src);
        return y;
    }

    /// <summary>
    /// A permute whose last two output axes are a transpose of the source's unit-stride axis: each
    /// (rows x cols) output matrix, y[i, j] = x[base + i + j step], is copied in 8 x 8 tiles (reads
    /// along i and writes along j both stay within a few cache lines), matrices in parallel.
    /// </summary>
    static unsafe void PermuteTransposeCpu(Tensor x, Tensor y, StridedIndex src, int rows, int cols, int step)
    {
        int matrices = y.Length / (rows * cols);
        fixed (float* px = x.CpuSpan(), py = y.CpuSpan())
        {
            nint ax = (nint)px, ay = (nint)py;
            CpuParallel.For(matrices, (m0, count) =>
            {
                for (int m = m0; m < m0 + count; m++)
                {
                    float* xs = (float*)ax + src.Offset(m * rows * cols), ys = (float*)ay + (long)m * rows * cols;
                    for (int i0 = 0; i0 < rows; i0 += 8)
                    {
                        int i1 = Math.Min(rows, i0 + 8);
                        for (int j0 = 0; j0 < cols; j0 += 8)
                        {
                            int j1 = Math.Min(cols, j0 + 8);
                            for (int i = i0; i < i1; i++)
                            {
                                float* yr = ys + (long)i * cols;
                                float* xc = xs + i;
                                for (int j = j0; j < j1; j++) yr[j] = xc[(long)j * step];
                            }
                        }
                    }
                }
            }, minChunk: Math.Max(1, CpuParallel.MinChunk / Math.Max(1, rows * cols)));
        }
    }

    static void CopyAxisBlock(Tensor src, Tensor dst, AxisCopy g)
    {
        var dev = src.Device;
        int n = g.Outer * g.Count * g.Inner;
        if (n == 0) return;
        if (dev.UseCpuFastPath)
        {
            int block = g.Count * g.Inner;
            CpuParallel.For(g.Outer, (s, c) =>
            {
                var sv = src.CpuSpan(); var dv = dst.CpuSpan();
                for (int o = s; o < s + c; o++)
                    sv.Slice((o * g.SrcAxis + g.SrcStart) * g.Inner, block).CopyTo(dv.Slice((o * g.DstAxis + g.DstStart) * g.Inner, block));
            }, minChunk: Math.Max(1, CpuParallel.MinChunk / Math.Max(1, block)));
            return;
        }
        int t = dev.LaunchThreads(n);
        dev.Kernels<LayoutKernels>().CopyAxis(dev.Accelerator.DefaultStream, t, src.View, dst.View, n, t, g);
    }

    static (int Outer, int Inner) OuterInner(int[] shape, int axis)
    {
        int outer = 1, inner = 1;
        for (int i = 0; i < axis; i++) outer *= shape[i];
        for (int i = axis + 1; i < shape.Length; i++) inner *= shape[i];
        return (outer, inner);
    }

    /// <summary>Concatenates tensors along <paramref name="axis"/>; all other dimensions must match.</summary>
    public static Tensor Concat(int axis, params Tensor[] xs)
    {
        if (xs.Length == 0) throw new ArgumentException("Concat: needs at least one tensor");
        var first = xs[0];
        int ax = Shapes.Axis("Concat", axis, first.Rank);
        int total = 0;
        foreach (var x in xs)
        {
            RequireSameDevice("Concat", first, x);
            if (x.Rank != first.Rank) throw new ArgumentException($"Concat: shapes {first.ShapeString} and {x.ShapeString} differ in rank");
            for (int i = 0; i < x.Rank; i++)
                if (i != ax && x.Shape[i] != first.Shape[i])
                    throw new ArgumentException($"Concat: shapes {first.ShapeString} and {x.ShapeString} differ outside axis {ax}");
            total += x.Shape[ax];
        }
        var shape = (int[])first.Shape.Clone();
        shape[ax] = total;
        var y = Tensor.Empty(first.Device, shape);
        var (outer, inner) = OuterInner(shape, ax);
        int at = 0;
        foreach (var x in xs)
        {
            CopyAxisBlock(x, y, new AxisCopy(outer, inner, x.Shape[ax], 0, total, at, x.Shape[ax]));
            at += x.Shape[ax];
        }
        return y;
    }

    /// <summary>x[..., start:start+length, ...] along <paramref name="axis"/>, as a new tensor.</summary>
    public static Tensor Slice(Tensor x, int axis, int start, int length)
    {
        int ax = Shapes.Axis("Slice", axis, x.Rank);
        if (start < 0 || length < 1 || start + length > x.Shape[ax])
            throw new ArgumentException($"Slice: range [{start}, {start + length}) is outside axis {ax} of {x.ShapeString}; need 0 <= start, length >= 1, start + length <= {x.Shape[ax]}");
        var shape = (int[])x.Shape.Clone();
        shape[ax] = length;
        var y = Tensor.Empty(x.Device, shape);
        var (outer, inner) = OuterInner(shape, ax);
        CopyAxisBlock(x, y, new AxisCopy(outer, inner, x.Shape[ax], start, length, 0, length));
        return y;
    }

    /// <summary>dst[..., start:start+len, ...] = src along <paramref name="axis"/> (the backward of Slice).</summary>
    public static void CopyToSlice(Tensor src, Tensor dst, int axis, int start)
    {
        RequireSameDevice("CopyToSlice", src, dst);
        int ax = Shapes.Axis("CopyToSlice", axis, dst.Rank);
        if (src.Rank != dst.Rank) throw new ArgumentException($"CopyToSlice: src {src.ShapeString} and dst {dst.ShapeString} differ in rank");
        for (int i = 0; i < dst.Rank; i++)
            if (i != ax && src.Shape[i] != dst.Shape[i])
                throw new ArgumentException($"CopyToSlice: src {src.ShapeString} and dst {dst.ShapeString} differ outside axis {ax}");
        int len = src.Shape[ax];
        if (start < 0 || start + len > dst.Shape[ax])
            throw new ArgumentException($"CopyToSlice: range [{start}, {start + len}) is outside axis {ax} of {dst.ShapeString}");
        var (outer, inner) = OuterInner(dst.Shape, ax);
        CopyAxisBlock(src, dst, new AxisCopy(outer, inner, len, 0, dst.Shape[ax], start, len));
    }
}

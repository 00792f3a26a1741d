// Reductions over any set of axes: sum, mean, max, sum of squares.
// Geometry: the input is split into kept dimensions (the output, row-major) and reduced
// dimensions, each viewed through a StridedIndex of input strides; output o reduces
// x[kept.Offset(o) + red.Offset(r)] over r in [0, R).
// Variants:
//   v1 (GPU / CPU accelerator) two passes: pass 1 splits each output's R elements over P
//      interleaved lanes (lane p takes r = p, p + P, ...: adjacent lanes read adjacent addresses
//      when the reduced block is contiguous) and writes outputs x P partials; pass 2 combines the
//      P partials of each output. P is chosen so outputs x P fills the device.
//   v2 CPU fast path: for each output, the innermost reduced dimension is reduced as contiguous
//      spans with TensorPrimitives when its stride is 1; work split over (output, chunk) tasks.
using System.Numerics.Tensors;
using ILGPU;
using ILGPU.Runtime;

namespace Edm.Kernels;

/// <summary>A reduction: Map each element, Combine pairs, starting from Identity.</summary>
public interface IReduceOp
{
    /// <summary>Neutral element.</summary>
    float Identity { get; }
    /// <summary>Per-element transform before combining.</summary>
    float Map(float x);
    /// <summary>Associative combine.</summary>
    float Combine(float a, float b);
}

#pragma warning disable CS1591 // operator structs: the name says it all
public readonly struct SumReduce : IReduceOp
{
    public float Identity => 0f;
    public float Map(float x) => x;
    public float Combine(float a, float b) => a + b;
}
public readonly struct SumSquaresReduce : IReduceOp
{
    public float Identity => 0f;
    public float Map(float x) => x * x;
    public float Combine(float a, float b) => a + b;
}
public readonly struct MaxReduce : IReduceOp
{
    public float Identity => float.NegativeInfinity;
    public float Map(float x) => x;
    public float Combine(float a, float b) => a > b || float.IsNaN(a) ? a : b;
}
#pragma warning restore CS1591

/// <summary>Reduction kernels.</summary>
public static class ReductionKernels
{
    /// <summary>Pass 1: partial[o * P + p] = reduce over r = p, p+P, ... of Map(x[kept(o) + red(r)]).</summary>
    /// <paramref name="redUnit"/> != 0: the reduced elements of an output are contiguous (offset r), which skips
    /// the strided index's divisions (a full sum of 64M floats: 1.0 ms on an H200 through the index).
    public static void PartialKernel<TOp>(Index1D tid, ArrayView<float> x, ArrayView<float> partial, int outputs, int lanes, int reduceCount,
        int stride, StridedIndex kept, StridedIndex red, int redUnit, TOp op) where TOp : struct, IReduceOp
    {
        int total = outputs * lanes;
        for (int t = tid; t < total; t += stride)
        {
            int o = t / lanes;
            int p = t - o * lanes;
            int baseOffset = kept.Offset(o);
            float acc = op.Identity;
            if (redUnit != 0)
                for (int r = p; r < reduceCount; r += lanes) acc = op.Combine(acc, op.Map(x[baseOffset + r]));
            else
                for (int r = p; r < reduceCount; r += lanes) acc = op.Combine(acc, op.Map(x[baseOffset + red.Offset(r)]));
            partial[t] = acc;
        }
    }

    /// <summary>Middle pass (when pass 1 used more than 1,024 lanes): dst[o * Q + q] = combine of src[o * P + p] over p = q, q + Q, ... &lt; P.</summary>
    public static void CombineKernel<TOp>(Index1D tid, ArrayView<float> src, ArrayView<float> dst, int outputs, int lanesIn, int lanesOut, int stride, TOp op)
        where TOp : struct, IReduceOp
    {
        int total = outputs * lanesOut;
        for (int t = tid; t < total; t += stride)
        {
            int o = t / lanesOut;
            int q = t - o * lanesOut;
            float acc = op.Identity;
            for (int p = q; p < lanesIn; p += lanesOut) acc = op.Combine(acc, src[o * lanesIn + p]);
            dst[t] = acc;
        }
    }

    /// <summary>Pass 2: y[o] = scale * combine of partial[o * P .. o * P + P).</summary>
    public static void FinalKernel<TOp>(Index1D tid, ArrayView<float> partial, ArrayView<float> y, int outputs, int lanes, int stride, float scale, TOp op)
        where TOp : struct, IReduceOp
    {
        for (int o = tid; o < outputs; o += stride)
        {
            float acc = op.Identity;
            for (int p = 0; p < lanes; p++) acc = op.Combine(acc, partial[o * lanes + p]);
            y[o] = acc * scale;
        }
    }
}

public static partial class Ops
{
    sealed class ReduceKey<TOp> { public static readonly ReduceKey<TOp> Partial = new(), Combine = new(), Final = new(); }

    /// <summary>Sum over <paramref name="axes"/> (all axes when empty or null).</summary>
    public static Tensor Sum(Tensor x, int[]? axes = null, bool keepDims = false) => Reduce(x, axes, keepDims, new SumReduce(), false, "Sum");
    /// <summary>Mean over <paramref name="axes"/> (all axes when empty or null).</summary>
    public static Tensor Mean(Tensor x, int[]? axes = null, bool keepDims = false) => Reduce(x, axes, keepDims, new SumReduce(), true, "Mean");
    /// <summary>Max over <paramref name="axes"/> (all axes when empty or null).</summary>
    public static Tensor Max(Tensor x, int[]? axes = null, bool keepDims = false) => Reduce(x, axes, keepDims, new MaxReduce(), false, "Max");
    /// <summary>Sum of squares over <paramref name="axes"/> (all axes when empty or null).</summary>
    public static Tensor SumSquares(Tensor x, int[]? axes = null, bool keepDims = false) => Reduce(x, axes, keepDims, new SumSquaresReduce(), false, "SumSquares");

    /// <summary>Sums a broadcast result back to <paramref name="shape"/> (the backward of broadcasting).</summary>
    public static Tensor SumTo(Tensor x, int[] shape)
    {
        if (Shapes.Equal(x.Shape, shape)) return Copy(x);
        // The target must broadcast to x's shape.
        var b = Shapes.Broadcast("SumTo", x.Shape, shape);
        if (!Shapes.Equal(b, x.Shape))
            throw new ArgumentException($"SumTo: shape {Shapes.Format(shape)} does not broadcast to {x.ShapeString}");
        int pad = x.Rank - shape.Length;
        var axes = new List<int>();
        for (int i = 0; i < x.Rank; i++)
            if (i < pad || (shape[i - pad] == 1 && x.Shape[i] != 1)) axes.Add(i);
        using var s = Reduce(x, axes.ToArray(), true, new SumReduce(), false, "SumTo");
        return CopyReshaped(s, shape);
    }

    static Tensor CopyReshaped(Tensor s, int[] shape)
    {
        using var view = s.Reshape(shape);
        return Copy(view);
    }

    /// <summary>Generic reduction over a set of axes.</summary>
    public static Tensor Reduce<TOp>(Tensor x, int[]? axes, bool keepDims, TOp op, bool mean, string name) where TOp : struct, IReduceOp
    {
        int rank = x.Rank;
        var reduce = new bool[rank];
        if (axes is null || axes.Length == 0) Array.Fill(reduce, true);
        else
            foreach (int a in axes)
            {
                int ax = Shapes.Axis(name, a, rank);
                if (reduce[ax]) throw new ArgumentException($"{name}: axis {a} is listed twice in [{string.Join(", ", axes)}]");
                reduce[ax] = true;
            }

        var keptDims = new List<int>(); var keptStrides = new List<int>();
        var redDims = new List<int>(); var redStrides = new List<int>();
        var outShape = new List<int>();
        for (int i = 0; i < rank; i++)
        {
            if (reduce[i]) { redDims.Add(x.Shape[i]); redStrides.Add(x.Strides[i]); if (keepDims) outShape.Add(1); }
            else { keptDims.Add(x.Shape[i]); keptStrides.Add(x.Strides[i]); outShape.Add(x.Shape[i]); }
        }
        if (outShape.Count == 0) outShape.Add(1);
        var kept = StridedIndex.Create(name, keptDims.ToArray(), keptStrides.ToArray());
        var red = StridedIndex.Create(name, redDims.ToArray(), redStrides.ToArray());
        int outputs = kept.Count, reduceCount = red.Count;
        float scale = mean ? 1f / reduceCount : 1f;
        var y = Tensor.Empty(x.Device, outShape.ToArray());
        var dev = x.Device;

        if (dev.UseCpuFastPath)
        {
            ReduceCpu(x, y, outputs, reduceCount, kept, red, redDims.Count > 0 ? redDims[^1] : 1,
                redStrides.Count > 0 ? redStrides[^1] : 1, scale, op);
            return y;
        }

        // Lanes per output: enough outputs x lanes to fill the device, at most R. Above 1,024 lanes
        // (few outputs: a full reduction) a middle pass combines them down to 1,024, so that pass 2's
        // one thread per output sums at most 1,024 partials: the first GPU run showed a full sum of
        // 64M floats at 2 GB/s with pass 1 capped at 1,024 lanes (one or two multiprocessors).
        // The order of combination depends only on the shape and the device's grid size:
        // deterministic from run to run.
        int lanes = (int)Math.Clamp((long)dev.GridThreads / Math.Max(1, outputs), 1, reduceCount);
        using var partial = Tensor.Empty(dev, outputs * lanes);
        var k1 = dev.Kernel(ReduceKey<TOp>.Partial, acc =>
            acc.LoadAutoGroupedKernel<Index1D, ArrayView<float>, ArrayView<float>, int, int, int, int, StridedIndex, StridedIndex, int, TOp>(ReductionKernels.PartialKernel<TOp>));
        var k2 = dev.Kernel(ReduceKey<TOp>.Final, acc =>
            acc.LoadAutoGroupedKernel<Index1D, ArrayView<float>, ArrayView<float>, int, int, int, float, TOp>(ReductionKernels.FinalKernel<TOp>));
        int t1 = dev.LaunchThreads((long)outputs * lanes);
        // The reduced dimensions are one contiguous run when each stride is the next one's extent.
        bool unit = redDims.Count > 0 && redStrides[^1] == 1;
        for (int i = 0; unit && i + 1 < redDims.Count; i++) unit = redStrides[i] == redStrides[i + 1] * redDims[i + 1];
        k1(dev.Accelerator.DefaultStream, t1, x.View, partial.View, outputs, lanes, reduceCount, t1, kept, red, unit ? 1 : 0, op);
        Tensor? middle = null;
        try
        {
            var last = partial;
            if (lanes > 1024)
            {
                middle = Tensor.Empty(dev, outputs * 1024);
                var km = dev.Kernel(ReduceKey<TOp>.Combine, acc =>
                    acc.LoadAutoGroupedKernel<Index1D, ArrayView<float>, ArrayView<float>, int, int, int, int, TOp>(ReductionKernels.CombineKernel<TOp>));
                int tm = dev.LaunchThreads((long)outputs * 1024);
                km(dev.Accelerator.DefaultStream, tm, partial.View, middle.View, outputs, lanes, 1024, tm, op);
                last = middle;
                lanes = 1024;
            }
            int t2 = dev.LaunchThreads(outputs);
            k2(dev.Accelerator.DefaultStream, t2, last.View, y.View, outputs, lanes, t2, scale, op);
        }
        finally { middle?.Dispose(); }
        return y;
    }

    // CPU fast path. The innermost reduced dimension (length `inner`, stride `innerStride`) is
    // reduced as a span when contiguous; the other reduced dimensions are enumerated.
    static void ReduceCpu<TOp>(Tensor x, Tensor y, int outputs, int reduceCount, StridedIndex kept, StridedIndex red,
        int inner, int innerStride, float scale, TOp op) where TOp : struct, IReduceOp
    {
        int outerCount = reduceCount / inner;
        // Outer reduced index space, expressed through `red` with the innermost dim stepped by `inner`.
        // The partition depends on the shape alone (DeterministicChunks), so a sum repeats bit for bit
        // whatever the thread count; partials are stored by task index and combined in order.
        int chunksPerOutput = outputs >= DeterministicChunks.MaxChunks ? 1
            : Math.Clamp((int)((long)reduceCount / CpuParallel.MinChunk), 1, DeterministicChunks.MaxChunks);
        chunksPerOutput = Math.Min(chunksPerOutput, outerCount);
        var partial = new float[outputs * chunksPerOutput];
        int tasks = outputs * chunksPerOutput;
        int workers = Math.Min(tasks, 4 * Environment.ProcessorCount);  // who runs a task does not change its result
        Parallel.For(0, workers, w =>
        {
            ReadOnlySpan<float> xs = x.CpuSpan();
            for (int task = w; task < tasks; task += workers)
            {
                int o = task / chunksPerOutput, c = task % chunksPerOutput;
                int per = (outerCount + chunksPerOutput - 1) / chunksPerOutput;
                int begin = c * per, end = Math.Min(outerCount, begin + per);
                int baseOffset = kept.Offset(o);
                float acc = op.Identity;
                for (int q = begin; q < end; q++)
                {
                    int start = baseOffset + red.Offset(q * inner);
                    if (innerStride == 1) acc = op.Combine(acc, SpanReduce(xs.Slice(start, inner), op));
                    else
                        for (int i = 0; i < inner; i++) acc = op.Combine(acc, op.Map(xs[start + i * innerStride]));
                }
                partial[task] = acc;
            }
        });
        var ys = y.CpuSpan();
        for (int o = 0; o < outputs; o++)
        {
            float acc = op.Identity;
            for (int c = 0; c < chunksPerOutput; c++) acc = op.Combine(acc, partial[o * chunksPerOutput + c]);
            ys[o] = acc * scale;
        }
    }

    static float SpanReduce<TOp>(ReadOnlySpan<float> s, TOp op) where TOp : struct, IReduceOp
    {
        if (typeof(TOp) == typeof(SumReduce)) return TensorPrimitives.Sum(s);
        if (typeof(TOp) == typeof(SumSquaresReduce)) return TensorPrimitives.SumOfSquares(s);
        if (typeof(TOp) == typeof(MaxReduce)) return TensorPrimitives.Max(s);
        float acc = op.Identity;
        foreach (float v in s) acc = op.Combine(acc, op.Map(v));
        return acc;
    }
}

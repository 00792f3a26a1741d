// Nearest-neighbour upsampling x2 and 2x2 average-pool downsampling, with their backwards.
// Layout (..., H, W) contiguous (NCHW images; every leading dimension is a plane index p).
//   UpsampleNearest2x:  y[p, i, j] = x[p, i/2, j/2]                    (H, W) -> (2H, 2W)
//   its backward:       gx[p, i, j] = sum of the 2x2 block gy[p, 2i..2i+1, 2j..2j+1]
//   AvgPool2x:          y[p, i, j] = (1/4) sum of the 2x2 block x[p, 2i.., 2j..]  (2H, 2W) -> (H, W)
//   its backward:       gx[p, i, j] = gy[p, i/2, j/2] / 4
// So two kernels do all four: Expand2x (copy each value to a 2x2 block, times a scale) and
// Reduce2x (sum each 2x2 block, times a scale). Pooling needs even H and W (no implicit cropping).
//
// Variants:
//   1. float64 loops (Edm.Verification/References/PoolingReference.cs).
//   2. CPU fast path: Parallel.For over chunks of output rows, plain loops.
//   3. ILGPU kernels: grid-stride over output elements (implicitly grouped, elementwise).
using ILGPU;
using ILGPU.Runtime;

namespace Edm.Kernels;

/// <summary>Resampling kernels shared by the nearest upsample and the average pool.</summary>
public sealed class PoolingKernels : IKernelFamily<PoolingKernels>
{
    internal readonly Action<Index1D, ArrayView<float>, ArrayView<float>, int, int, int, float> Expand2x;
    internal readonly Action<Index1D, ArrayView<float>, ArrayView<float>, int, int, int, float> Reduce2x;

    PoolingKernels(Accelerator a)
    {
        Expand2x = a.LoadAutoGroupedStreamKernel<Index1D, ArrayView<float>, ArrayView<float>, int, int, int, float>(Expand2xKernel);
        Reduce2x = a.LoadAutoGroupedStreamKernel<Index1D, ArrayView<float>, ArrayView<float>, int, int, int, float>(Reduce2xKernel);
    }

    /// <inheritdoc/>
    public static PoolingKernels Load(EdmDevice device) => new(device.Accelerator);

    /// dst (P, 2h, 2w)[p, i, j] = scale * src (P, h, w)[p, i/2, j/2]; grid-stride over dst.
    static void Expand2xKernel(Index1D tid, ArrayView<float> src, ArrayView<float> dst, int h, int w, int stride, float scale)
    {
        int w2 = 2 * w, plane2 = 4 * h * w;
        for (int i = tid; i < dst.IntLength; i += stride)
        {
            int p = i / plane2, r = i - p * plane2;
            int oi = r / w2, oj = r - oi * w2;
            dst[i] = scale * src[(p * h + oi / 2) * w + oj / 2];
        }
    }

    /// dst (P, h, w)[p, i, j] = scale * sum of src (P, 2h, 2w)[p, 2i..2i+1, 2j..2j+1]; grid-stride over dst.
    static void Reduce2xKernel(Index1D tid, ArrayView<float> src, ArrayView<float> dst, int h, int w, int stride, float scale)
    {
        int plane = h * w, w2 = 2 * w;
        for (int i = tid; i < dst.IntLength; i += stride)
        {
            int p = i / plane, r = i - p * plane;
            int oi = r / w, oj = r - oi * w;
            int s = (p * 2 * h + 2 * oi) * w2 + 2 * oj;
            dst[i] = scale * (src[s] + src[s + 1] + src[s + w2] + src[s + w2 + 1]);
        }
    }
}

public static partial class Ops
{
    /// <summary>Nearest-neighbour upsampling by 2 along the last two axes: (..., H, W) -> (..., 2H, 2W).</summary>
    public static Tensor UpsampleNearest2x(Tensor x)
    {
        var (h, w) = PoolingValidate("UpsampleNearest2x", x, false);
        return Expand2x(x, h, w, 1f);
    }

    /// <summary>Backward of <see cref="UpsampleNearest2x"/>: gy (..., 2H, 2W) -> dx (..., H, W), summing each 2x2 block.</summary>
    public static Tensor UpsampleNearest2xBackward(Tensor gy)
    {
        var (h2, w2) = PoolingValidate("UpsampleNearest2xBackward", gy, true);
        return Reduce2x(gy, h2 / 2, w2 / 2, 1f);
    }

    /// <summary>2x2 average pooling: (..., H, W) -> (..., H/2, W/2); H and W must be even.</summary>
    public static Tensor AvgPool2x(Tensor x)
    {
        var (h2, w2) = PoolingValidate("AvgPool2x", x, true);
        return Reduce2x(x, h2 / 2, w2 / 2, 0.25f);
    }

    /// <summary>Backward of <see cref="AvgPool2x"/>: gy (..., H, W) -> dx (..., 2H, 2W) = gy/4 on each 2x2 block.</summary>
    public static Tensor AvgPool2xBackward(Tensor gy)
    {
        var (h, w) = PoolingValidate("AvgPool2xBackward", gy, false);
        return Expand2x(gy, h, w, 0.25f);
    }

    static (int H, int W) PoolingValidate(string op, Tensor x, bool needEven)
    {
        if (x.Rank < 2) throw new ArgumentException($"{op}: input has shape {x.ShapeString}; expected (..., H, W) of rank >= 2");
        int h = x.Shape[^2], w = x.Shape[^1];
        if (needEven && (h % 2 != 0 || w % 2 != 0))
            throw new ArgumentException($"{op}: input has shape {x.ShapeString}; H = {h} and W = {w} must both be even");
        return (h, w);
    }

    /// dst (..., 2h, 2w) = scale * src (..., h, w) repeated on 2x2 blocks.
    static Tensor Expand2x(Tensor src, int h, int w, float scale)
    {
        var shape = (int[])src.Shape.Clone();
        shape[^2] = 2 * h;
        shape[^1] = 2 * w;
        var dst = Tensor.Empty(src.Device, shape);
        var device = src.Device;
        int rows = src.Length / w; // source rows (p, i)
        if (device.UseCpuFastPath)
        {
            RowChunks.Run(rows, 4 * w, (r0, r1) =>
            {
                var s = src.CpuSpan();
                var d = dst.CpuSpan();
                for (int r = r0; r < r1; r++)
                {
                    var sr = s.Slice(r * w, w);
                    var d0 = d.Slice(2 * r * 2 * w, 2 * w);
                    for (int j = 0; j < w; j++) d0[2 * j] = d0[2 * j + 1] = scale * sr[j];
                    d0.CopyTo(d.Slice((2 * r + 1) * 2 * w, 2 * w));
                }
            });
            return dst;
        }
        device.Kernels<PoolingKernels>().Expand2x(device.LaunchThreads(dst.Length), src.View, dst.View, h, w, device.LaunchThreads(dst.Length), scale);
        return dst;
    }

    /// dst (..., h, w) = scale * 2x2 block sums of src (..., 2h, 2w).
    static Tensor Reduce2x(Tensor src, int h, int w, float scale)
    {
        var shape = (int[])src.Shape.Clone();
        shape[^2] = h;
        shape[^1] = w;
        var dst = Tensor.Empty(src.Device, shape);
        var device = src.Device;
        int rows = dst.Length / w; // destination rows (p, i)
        if (device.UseCpuFastPath)
        {
            RowChunks.Run(rows, 4 * w, (r0, r1) =>
            {
                var s = src.CpuSpan();
                var d = dst.CpuSpan();
                for (int r = r0; r < r1; r++)
                {
                    var a = s.Slice(2 * r * 2 * w, 2 * w);
                    var b = s.Slice((2 * r + 1) * 2 * w, 2 * w);
                    var dr = d.Slice(r * w, w);
                    for (int j = 0; j < w; j++) dr[j] = scale * (a[2 * j] + a[2 * j + 1] + b[2 * j] + b[2 * j + 1]);
                }
            });
            return dst;
        }
        device.Kernels<PoolingKernels>().Reduce2x(device.LaunchThreads(dst.Length), src.View, dst.View, h, w, device.LaunchThreads(dst.Length), scale);
        return dst;
    }
}

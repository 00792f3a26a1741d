// Softmax along the last axis: y[r, j] = exp(x[r, j] - m_r) / sum_k exp(x[r, k] - m_r), with the
// row maximum m_r subtracted for stability (exp never overflows; the largest term is exp(0) = 1).
// Backward: dx[r, j] = y[r, j] * (gy[r, j] - sum_k gy[r, k] y[r, k]).
// Layout: any rank >= 1, rows = product of the leading dimensions, cols = the last dimension.
//
// Variants:
//   1. float64 loops (Edm.Verification/References/SoftmaxReference.cs): max, exp, sum, divide.
//   2. CPU fast path: Parallel.For over row chunks, TensorPrimitives (max, subtract, exp, sum).
//   3. ILGPU kernel: one group of GroupReduction.GroupSize threads per row (grid-stride over rows);
//      each thread keeps a running (max, sum) over its strided elements ("online softmax": when a
//      larger value arrives the sum is rescaled by exp(old max - new max)), then the group combines
//      them with two shared-memory reductions; one read pass plus one read/write pass.
using System.Numerics.Tensors;
using ILGPU;
using ILGPU.Algorithms;
using ILGPU.Runtime;

namespace Edm.Kernels;

/// <summary>Softmax kernels (forward and backward along the last axis).</summary>
public sealed class SoftmaxKernels : IKernelFamily<SoftmaxKernels>
{
    internal readonly Action<KernelConfig, ArrayView<float>, ArrayView<float>, int, int> Forward;
    internal readonly Action<KernelConfig, ArrayView<float>, ArrayView<float>, ArrayView<float>, int, int> Backward;

    SoftmaxKernels(Accelerator a)
    {
        Forward = a.LoadStreamKernel<ArrayView<float>, ArrayView<float>, int, int>(ForwardKernel);
        Backward = a.LoadStreamKernel<ArrayView<float>, ArrayView<float>, ArrayView<float>, int, int>(BackwardKernel);
    }

    /// <inheritdoc/>
    public static SoftmaxKernels Load(EdmDevice device) => new(device.Accelerator);

    /// One group per row: online (max, sum) per thread, group reduction, then the normalised write.
    static void ForwardKernel(ArrayView<float> x, ArrayView<float> y, int rows, int cols)
    {
        var scratch = SharedMemory.Allocate<float>(GroupReduction.ScratchSize);
        int t = Group.IdxX;
        for (int row = Grid.IdxX; row < rows; row += Grid.DimX)
        {
            int b = row * cols;
            var (rowMax, sum) = GroupReduction.SoftmaxStats(scratch, x, b, cols);
            float inv = 1f / sum;
            for (int j = t; j < cols; j += GroupReduction.GroupSize)
                y[b + j] = XMath.Exp(x[b + j] - rowMax) * inv;
        }
    }

    /// One group per row: dot = sum gy*y, then dx = y*(gy - dot).
    static void BackwardKernel(ArrayView<float> y, ArrayView<float> gy, ArrayView<float> dx, int rows, int cols)
    {
        var scratch = SharedMemory.Allocate<float>(GroupReduction.ScratchSize);
        int t = Group.IdxX;
        for (int row = Grid.IdxX; row < rows; row += Grid.DimX)
        {
            int b = row * cols;
            float acc = 0f;
            for (int j = t; j < cols; j += GroupReduction.GroupSize) acc += gy[b + j] * y[b + j];
            float dot = GroupReduction.Sum(scratch, acc);
            for (int j = t; j < cols; j += GroupReduction.GroupSize)
                dx[b + j] = y[b + j] * (gy[b + j] - dot);
        }
    }
}

public static partial class Ops
{
    /// <summary>
    /// Softmax along the last axis (numerically stable: the row maximum is subtracted).
    /// </summary>
    /// <param name="x">Any shape of rank &gt;= 1; rows are the leading dimensions.</param>
    /// <returns>A new tensor of x's shape whose rows sum to 1.</returns>
    public static Tensor Softmax(Tensor x)
    {
        if (x.Rank < 1) throw new ArgumentException($"Softmax: x has shape {x.ShapeString}; expected rank >= 1");
        int cols = x.Shape[^1], rows = x.Length / cols;
        var y = Tensor.Empty(x.Device, x.Shape);
        var device = x.Device;
        if (device.UseCpuFastPath)
        {
            RowChunks.Run(rows, cols, (r0, r1) =>
            {
                var xs = x.CpuSpan();
                var ys = y.CpuSpan();
                for (int r = r0; r < r1; r++)
                {
                    var xr = xs.Slice(r * cols, cols);
                    var yr = ys.Slice(r * cols, cols);
                    float m = TensorPrimitives.Max(xr);
                    TensorPrimitives.Subtract(xr, m, yr);
                    TensorPrimitives.Exp(yr, yr);
                    TensorPrimitives.Multiply(yr, 1f / TensorPrimitives.Sum(yr), yr);
                }
            });
            return y;
        }
        device.Kernels<SoftmaxKernels>().Forward(GroupReduction.RowConfig(device, rows), x.View, y.View, rows, cols);
        return y;
    }

    /// <summary>
    /// Gradient of <see cref="Softmax"/>: dx = y * (gy - sum_last(gy * y)).
    /// </summary>
    /// <param name="y">The softmax output (saved by the forward).</param>
    /// <param name="gy">Gradient with respect to y, same shape.</param>
    /// <returns>A new tensor dx of y's shape.</returns>
    public static Tensor SoftmaxBackward(Tensor y, Tensor gy)
    {
        if (y.Rank < 1) throw new ArgumentException($"SoftmaxBackward: y has shape {y.ShapeString}; expected rank >= 1");
        Shapes.RequireEqual("SoftmaxBackward", "gy", y.Shape, gy.Shape);
        int cols = y.Shape[^1], rows = y.Length / cols;
        var dx = Tensor.Empty(y.Device, y.Shape);
        var device = y.Device;
        if (device.UseCpuFastPath)
        {
            RowChunks.Run(rows, cols, (r0, r1) =>
            {
                var ys = y.CpuSpan();
                var gs = gy.CpuSpan();
                var ds = dx.CpuSpan();
                for (int r = r0; r < r1; r++)
                {
                    var yr = ys.Slice(r * cols, cols);
                    var gr = gs.Slice(r * cols, cols);
                    var dr = ds.Slice(r * cols, cols);
                    float dot = TensorPrimitives.Dot(gr, yr);
                    TensorPrimitives.Subtract(gr, dot, dr);
                    TensorPrimitives.Multiply(dr, yr, dr);
                }
            });
            return dx;
        }
        device.Kernels<SoftmaxKernels>().Backward(GroupReduction.RowConfig(device, rows), y.View, gy.View, dx.View, rows, cols);
        return dx;
    }
}

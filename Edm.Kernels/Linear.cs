// Linear: y = x W^T + b (PyTorch's nn.Linear; EDM networks.py Linear), and its backward pieces,
// all through Gemm. Also the per-channel bias kernels shared with Conv2d:
//   AddBias:   y[b, c, s] += bias[c]            over y (B, C, S); grid-stride, one thread per element.
//   BiasGrad:  db[c] (+)= sum_{b,s} dy[b, c, s] in two grid-stride passes without barriers:
//              partial[j, c] sums images b = j, j+J, ... (J <= 256 slices), then one thread per
//              channel adds its J partials (barrier-free, so the CPU accelerator runs it quickly).
// Layouts: x (..., in), W (out, in), b (out), y (..., out); leading dimensions are flattened to N.
// Gradient semantics (STYLE 8): the *Into forms accumulate into parameter gradients when asked;
// activation gradients are fresh tensors.
using ILGPU;
using ILGPU.Runtime;

namespace Edm.Kernels;

/// <summary>Per-channel bias kernels (add and gradient), loaded once per device.</summary>
public sealed class BiasKernels : IKernelFamily<BiasKernels>
{
    /// <summary>Most batch slices of the first bias-gradient pass.</summary>
    public const int MaxSlices = 256;

    internal readonly Action<Index1D, ArrayView<float>, ArrayView<float>, int, int, int> Add;
    internal readonly Action<Index1D, ArrayView<float>, ArrayView<float>, int, int, int, int, int> GradPartial;
    internal readonly Action<Index1D, ArrayView<float>, ArrayView<float>, int, int, float, int> GradFinish;

    BiasKernels(Accelerator acc)
    {
        Add = acc.LoadAutoGroupedStreamKernel<Index1D, ArrayView<float>, ArrayView<float>, int, int, int>(AddBiasKernel);
        GradPartial = acc.LoadAutoGroupedStreamKernel<Index1D, ArrayView<float>, ArrayView<float>, int, int, int, int, int>(BiasGradPartialKernel);
        GradFinish = acc.LoadAutoGroupedStreamKernel<Index1D, ArrayView<float>, ArrayView<float>, int, int, float, int>(BiasGradFinishKernel);
    }

    /// <inheritdoc/>
    public static BiasKernels Load(EdmDevice device) => new(device.Accelerator);

    /// <summary>y (B, C, S) += bias (C) broadcast over B and S; grid-stride.</summary>
    static void AddBiasKernel(Index1D tid, ArrayView<float> y, ArrayView<float> bias, int channels, int spatial, int stride)
    {
        for (int i = tid; i < y.IntLength; i += stride)
            y[i] += bias[(i / spatial) % channels];
    }

    /// <summary>partial (J, C)[j, c] = sum over b = j, j+J, ... and s of dy (B, C, S); grid-stride over J*C.</summary>
    static void BiasGradPartialKernel(Index1D tid, ArrayView<float> dy, ArrayView<float> partial, int batch, int channels, int spatial, int slices, int stride)
    {
        for (int i = tid; i < slices * channels; i += stride)
        {
            int c = i % channels, j = i / channels;
            float acc = 0f;
            for (int b = j; b < batch; b += slices)
            {
                int o = (b * channels + c) * spatial;
                for (int s = 0; s < spatial; s++) acc += dy[o + s];
            }
            partial[i] = acc;
        }
    }

    /// <summary>db[c] = keep*db[c] + sum_j partial[j, c]; grid-stride over C.</summary>
    static void BiasGradFinishKernel(Index1D tid, ArrayView<float> partial, ArrayView<float> db, int channels, int slices, float keep, int stride)
    {
        for (int c = tid; c < channels; c += stride)
        {
            float acc = 0f;
            for (int j = 0; j < slices; j++) acc += partial[j * channels + c];
            db[c] = keep == 0f ? acc : keep * db[c] + acc;
        }
    }
}

public static partial class Ops
{
    /// <summary>
    /// Fully connected layer y = x W^T + b. <paramref name="x"/> (..., in), <paramref name="weight"/>
    /// (out, in), <paramref name="bias"/> (out) or null; returns (..., out).
    /// </summary>
    public static Tensor Linear(Tensor x, Tensor weight, Tensor? bias = null)
    {
        var (n, inF, outF) = CheckLinear("Linear", x, weight, bias);
        using var x2 = x.Reshape(n, inF);
        var y = MatMul(x2, weight, transB: true); // (N, out)
        try
        {
            if (bias is not null) AddBias(y, bias, n, outF, 1);
            var shape = (int[])x.Shape.Clone();
            shape[^1] = outF;
            var result = y.Reshape(shape);
            y.Dispose();
            return result;
        }
        catch
        {
            y.Dispose();
            throw;
        }
    }

    /// <summary>dx = dy W: <paramref name="dy"/> (..., out), <paramref name="weight"/> (out, in); returns (..., in).</summary>
    public static Tensor LinearBackwardData(Tensor dy, Tensor weight)
    {
        if (weight.Rank != 2 || dy.Rank < 1 || dy.Shape[^1] != weight.Shape[0])
            throw new ArgumentException($"LinearBackwardData: dy {dy.ShapeString} must end in out = weight {weight.ShapeString}[0]");
        int outF = weight.Shape[0], inF = weight.Shape[1];
        int n = dy.Length / outF;
        using var dy2 = dy.Reshape(n, outF);
        var dx = MatMul(dy2, weight); // (N, in)
        var shape = (int[])dy.Shape.Clone();
        shape[^1] = inF;
        var result = dx.Reshape(shape);
        dx.Dispose();
        return result;
    }

    /// <summary>dW = dy^T x as a new (out, in) tensor; <paramref name="dy"/> (..., out), <paramref name="x"/> (..., in).</summary>
    public static Tensor LinearBackwardWeight(Tensor dy, Tensor x)
    {
        var dw = Tensor.Empty(x.Device, dy.Shape[^1], x.Shape[^1]);
        try
        {
            LinearBackwardWeightInto(dy, x, dw, accumulate: false);
        }
        catch
        {
            dw.Dispose();
            throw;
        }
        return dw;
    }

    /// <summary>dw (out, in) = dy^T x, or dw += dy^T x when <paramref name="accumulate"/>.</summary>
    public static void LinearBackwardWeightInto(Tensor dy, Tensor x, Tensor dw, bool accumulate)
    {
        if (dy.Rank < 1 || x.Rank < 1 || dy.Length / dy.Shape[^1] != x.Length / x.Shape[^1])
            throw new ArgumentException($"LinearBackwardWeight: dy {dy.ShapeString} and x {x.ShapeString} must have the same leading dimensions");
        int outF = dy.Shape[^1], inF = x.Shape[^1], n = x.Length / inF;
        Shapes.RequireEqual("LinearBackwardWeight", "dw", [outF, inF], dw.Shape);
        using var dy2 = dy.Reshape(n, outF);
        using var x2 = x.Reshape(n, inF);
        MatMulInto(dy2, x2, dw, transA: true, beta: accumulate ? 1f : 0f);
    }

    /// <summary>db = sum of dy (..., out) over all leading dimensions, as a new (out) tensor.</summary>
    public static Tensor LinearBackwardBias(Tensor dy)
    {
        int outF = dy.Shape[^1];
        var db = Tensor.Empty(dy.Device, outF);
        BiasGradInto(dy, db, dy.Length / outF, outF, 1, accumulate: false);
        return db;
    }

    /// <summary>db (out) = or += sum of dy (..., out) over the leading dimensions.</summary>
    public static void LinearBackwardBiasInto(Tensor dy, Tensor db, bool accumulate)
    {
        int outF = dy.Shape[^1];
        Shapes.RequireEqual("LinearBackwardBias", "db", [outF], db.Shape);
        BiasGradInto(dy, db, dy.Length / outF, outF, 1, accumulate);
    }

    static (int N, int In, int Out) CheckLinear(string op, Tensor x, Tensor weight, Tensor? bias)
    {
        if (weight.Rank != 2)
            throw new ArgumentException($"{op}: weight must be (out, in), got {weight.ShapeString}");
        int outF = weight.Shape[0], inF = weight.Shape[1];
        if (x.Rank < 1 || x.Shape[^1] != inF)
            throw new ArgumentException($"{op}: x {x.ShapeString} must end in in = {inF} (weight {weight.ShapeString})");
        if (bias is not null) Shapes.RequireEqual(op, "bias", [outF], bias.Shape);
        return (x.Length / inF, inF, outF);
    }

    /// <summary>y (B, C, S) += bias (C), in place.</summary>
    internal static void AddBias(Tensor y, Tensor bias, int batch, int channels, int spatial)
    {
        var device = y.Device;
        if (device.UseCpuFastPath)
        {
            var ys = y.CpuSpan();
            var bs = bias.CpuSpan();
            for (int b = 0; b < batch; b++)
                for (int c = 0; c < channels; c++)
                {
                    var row = ys.Slice((b * channels + c) * spatial, spatial);
                    System.Numerics.Tensors.TensorPrimitives.Add(row, bs[c], row);
                }
            return;
        }
        int threads = device.LaunchThreads(y.Length);
        device.Kernels<BiasKernels>().Add(threads, y.View, bias.View, channels, spatial, threads);
    }

    /// <summary>db (C) = or += sum over (B, S) of dy (B, C, S).</summary>
    internal static void BiasGradInto(Tensor dy, Tensor db, int batch, int channels, int spatial, bool accumulate)
    {
        var device = dy.Device;
        if (device.UseCpuFastPath)
        {
            var ds = dy.CpuSpan();
            var dbs = db.CpuSpan();
            var sums = new double[channels];
            for (int b = 0; b < batch; b++)
                for (int c = 0; c < channels; c++)
                    sums[c] += spatial == 1 ? ds[b * channels + c] : System.Numerics.Tensors.TensorPrimitives.Sum(ds.Slice((b * channels + c) * spatial, spatial));
            for (int c = 0; c < channels; c++) dbs[c] = (float)((accumulate ? dbs[c] : 0.0) + sums[c]);
            return;
        }
        var k = device.Kernels<BiasKernels>();
        int slices = Math.Min(batch, BiasKernels.MaxSlices);
        using var partial = Tensor.Empty(device, slices * channels);
        int t1 = device.LaunchThreads((long)slices * channels);
        k.GradPartial(t1, dy.View, partial.View, batch, channels, spatial, slices, t1);
        int t2 = device.LaunchThreads(channels);
        k.GradFinish(t2, partial.View, db.View, channels, slices, accumulate ? 1f : 0f, t2);
    }
}

// Batch normalisation (PyTorch BatchNorm1d/2d semantics) over x (N, C, *spatial), per channel c:
//   training:  mean_c = mean of x[:, c] over N and spatial (M = N * HW values),
//              var_c = biased variance (1/M), y = (x - mean_c) / sqrt(var_c + eps) * w_c + b_c;
//              running_mean = (1 - m) running_mean + m mean_c,
//              running_var  = (1 - m) running_var  + m var_c M / (M - 1)   (unbiased, as PyTorch)
//   inference: the same y with mean_c = running_mean_c, var_c = running_var_c; nothing updated.
// Backward, with xhat = (x - mean) rstd and rstd = 1/sqrt(var + eps):
//   db_c = sum dy,  dw_c = sum dy xhat   (over N and spatial)
//   training:  dx = w rstd (dy - db_c / M - xhat dw_c / M)   (mean and var depend on x)
//   inference: dx = w rstd dy                                 (running statistics are constants)
// Layouts: x, y, dy (N, C, HW) contiguous; weight, bias, running stats, mean, rstd (C).
//
// Variants:
//   1. float64 loops (Edm.Verification/References/BatchNormReference.cs).
//   2. CPU fast path: statistics and parameter gradients Parallel.For over channels (each channel's
//      N planes as spans, two-pass mean as group norm), the normalisation and dx over (n, c) planes.
//   3. ILGPU kernels: one group of GroupReduction.GroupSize threads per channel for the statistics
//      (two-pass mean, centred variance) and for the backward sums; the normalisation, dx and the
//      running-statistics update are grid-stride elementwise kernels.
using ILGPU;
using ILGPU.Algorithms;
using ILGPU.Runtime;
using System.Numerics.Tensors;

namespace Edm.Kernels;

/// <summary>Shape of a batch norm: N samples, C channels, HW values per (n, c) plane.</summary>
public readonly record struct BatchNormShape(int N, int C, int HW, int Affine)
{
    /// <summary>Values per channel: N * HW.</summary>
    public int M => N * HW;
}

/// <summary>Output of <see cref="Ops.BatchNormForward"/>: y and the statistics the backward needs.</summary>
public sealed record BatchNormOutput(Tensor Y, Tensor Mean, Tensor Rstd);

/// <summary>Gradients of a batch norm; DWeight and DBias are null without an affine transform.</summary>
public sealed record BatchNormGrads(Tensor Dx, Tensor? DWeight, Tensor? DBias);

/// <summary>Batch-norm kernels, loaded once per device.</summary>
public sealed class BatchNormKernels : IKernelFamily<BatchNormKernels>
{
    internal readonly Action<KernelConfig, ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>, BatchNormShape, float> Stats;
    internal readonly Action<Index1D, ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>, BatchNormShape, int> Normalize;
    internal readonly Action<KernelConfig, ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>, BatchNormShape> BackwardSums;
    internal readonly Action<Index1D, ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>, BatchNormShape, float, int> BackwardInput;
    internal readonly Action<Index1D, ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>, float, float, int> RunningUpdate;
    internal readonly Action<Index1D, ArrayView<float>, ArrayView<float>, float, int> Rsqrt;

    BatchNormKernels(Accelerator a)
    {
        Stats = a.LoadStreamKernel<ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>, BatchNormShape, float>(StatsKernel);
        Normalize = a.LoadAutoGroupedStreamKernel<Index1D, ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>, BatchNormShape, int>(NormalizeKernel);
        BackwardSums = a.LoadStreamKernel<ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>, BatchNormShape>(BackwardSumsKernel);
        BackwardInput = a.LoadAutoGroupedStreamKernel<Index1D, ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>, BatchNormShape, float, int>(BackwardInputKernel);
        RunningUpdate = a.LoadAutoGroupedStreamKernel<Index1D, ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>, float, float, int>(RunningUpdateKernel);
        Rsqrt = a.LoadAutoGroupedStreamKernel<Index1D, ArrayView<float>, ArrayView<float>, float, int>(RsqrtKernel);
    }

    /// <inheritdoc/>
    public static BatchNormKernels Load(EdmDevice device) => new(device.Accelerator);

    /// One group per channel: mean (two passes), biased variance, rstd.
    static void StatsKernel(ArrayView<float> x, ArrayView<float> mean, ArrayView<float> var, ArrayView<float> rstd, BatchNormShape s, float eps)
    {
        var scratch = SharedMemory.Allocate<float>(GroupReduction.ScratchSize);
        int t = Group.IdxX, m = s.M;
        float invM = 1f / m;
        for (int c = Grid.IdxX; c < s.C; c += Grid.DimX)
        {
            float acc = 0f;
            for (int j = t; j < m; j += GroupReduction.GroupSize) acc += x[((j / s.HW) * s.C + c) * s.HW + j % s.HW];
            float mu0 = GroupReduction.Sum(scratch, acc) * invM;
            acc = 0f;
            for (int j = t; j < m; j += GroupReduction.GroupSize) acc += x[((j / s.HW) * s.C + c) * s.HW + j % s.HW] - mu0;
            float mu = mu0 + GroupReduction.Sum(scratch, acc) * invM;
            acc = 0f;
            for (int j = t; j < m; j += GroupReduction.GroupSize) { float d = x[((j / s.HW) * s.C + c) * s.HW + j % s.HW] - mu; acc += d * d; }
            float v = GroupReduction.Sum(scratch, acc) * invM;
            if (t == 0) { mean[c] = mu; var[c] = v; rstd[c] = XMath.Rsqrt(v + eps); }
        }
    }

    /// y = (x - mean[c]) rstd[c] w[c] + b[c]; grid-stride over x.
    static void NormalizeKernel(Index1D tid, ArrayView<float> x, ArrayView<float> mean, ArrayView<float> rstd,
        ArrayView<float> weight, ArrayView<float> bias, ArrayView<float> y, BatchNormShape s, int stride)
    {
        for (int i = tid; i < x.IntLength; i += stride)
        {
            int c = (i / s.HW) % s.C;
            float v = (x[i] - mean[c]) * rstd[c];
            y[i] = s.Affine != 0 ? v * weight[c] + bias[c] : v;
        }
    }

    /// One group per channel: sumDy[c] = sum dy, sumDyXhat[c] = sum dy xhat.
    static void BackwardSumsKernel(ArrayView<float> x, ArrayView<float> gy, ArrayView<float> mean, ArrayView<float> rstd,
        ArrayView<float> sumDy, ArrayView<float> sumDyXhat, BatchNormShape s)
    {
        var scratch = SharedMemory.Allocate<float>(2 * GroupReduction.ScratchSize);
        int t = Group.IdxX, m = s.M;
        for (int c = Grid.IdxX; c < s.C; c += Grid.DimX)
        {
            float mu = mean[c], a1 = 0f, a2 = 0f;
            for (int j = t; j < m; j += GroupReduction.GroupSize)
            {
                int i = ((j / s.HW) * s.C + c) * s.HW + j % s.HW;
                a1 += gy[i];
                a2 += gy[i] * (x[i] - mu);
            }
            var (s1, s2) = GroupReduction.Sum2(scratch, a1, a2);
            if (t == 0) { sumDy[c] = s1; sumDyXhat[c] = s2 * rstd[c]; }
        }
    }

    /// dx = w rstd (dy - training (sumDy + xhat sumDyXhat) / M); grid-stride over x.
    static void BackwardInputKernel(Index1D tid, ArrayView<float> x, ArrayView<float> gy, ArrayView<float> mean, ArrayView<float> rstd,
        ArrayView<float> weight, ArrayView<float> sumDy, ArrayView<float> sumDyXhat, ArrayView<float> dx, BatchNormShape s, float training, int stride)
    {
        float invM = training / s.M;
        for (int i = tid; i < x.IntLength; i += stride)
        {
            int c = (i / s.HW) % s.C;
            float r = rstd[c], xhat = (x[i] - mean[c]) * r;
            float g = gy[i] - invM * (sumDy[c] + xhat * sumDyXhat[c]);
            dx[i] = (s.Affine != 0 ? weight[c] * r : r) * g;
        }
    }

    /// rm = (1 - m) rm + m mean; rv = (1 - m) rv + m var unbias; grid-stride over C.
    static void RunningUpdateKernel(Index1D tid, ArrayView<float> mean, ArrayView<float> var, ArrayView<float> rm, ArrayView<float> rv, float momentum, float unbias, int stride)
    {
        for (int c = tid; c < mean.IntLength; c += stride)
        {
            rm[c] = (1f - momentum) * rm[c] + momentum * mean[c];
            rv[c] = (1f - momentum) * rv[c] + momentum * var[c] * unbias;
        }
    }

    /// rstd = 1 / sqrt(var + eps); grid-stride.
    static void RsqrtKernel(Index1D tid, ArrayView<float> var, ArrayView<float> rstd, float eps, int stride)
    {
        for (int c = tid; c < var.IntLength; c += stride) rstd[c] = 1f / XMath.Sqrt(var[c] + eps);
    }
}

public static partial class Ops
{
    /// <summary>
    /// Batch normalisation over x (N, C, *spatial). Training: batch statistics, and the running
    /// statistics (when given) updated in place with <paramref name="momentum"/>; inference: the
    /// running statistics (required). Returns y and the mean and rstd used (C), for the backward.
    /// </summary>
    /// <param name="x">(N, C, *spatial), rank &gt;= 2.</param>
    /// <param name="weight">(C) scale, or null with bias null (affine=False).</param>
    /// <param name="bias">(C) shift; given exactly when weight is.</param>
    /// <param name="runningMean">(C); required for inference, optional for training.</param>
    /// <param name="runningVar">(C); given exactly when runningMean is.</param>
    /// <param name="training">Batch statistics (true) or running statistics (false).</param>
    /// <param name="momentum">Running-statistics update factor in [0, 1] (PyTorch default 0.1).</param>
    /// <param name="eps">Added to the variance (PyTorch default 1e-5; pytorch-fid's Inception uses 1e-3).</param>
    public static BatchNormOutput BatchNormForward(Tensor x, Tensor? weight, Tensor? bias, Tensor? runningMean, Tensor? runningVar,
        bool training, float momentum = 0.1f, float eps = 1e-5f)
    {
        const string op = "BatchNorm";
        var s = BatchNormValidate(op, x, weight);
        if ((weight is null) != (bias is null))
            throw new ArgumentException($"{op}: weight and bias must be given together (weight {(weight is null ? "null" : weight.ShapeString)}, bias {(bias is null ? "null" : bias.ShapeString)})");
        if (bias is not null) Shapes.RequireEqual(op, "bias", [s.C], bias.Shape);
        if ((runningMean is null) != (runningVar is null))
            throw new ArgumentException($"{op}: running_mean and running_var must be given together");
        if (runningMean is not null) Shapes.RequireEqual(op, "running_mean", [s.C], runningMean.Shape);
        if (runningVar is not null) Shapes.RequireEqual(op, "running_var", [s.C], runningVar.Shape);
        if (!training && runningMean is null)
            throw new ArgumentException($"{op}: inference (training = false) needs running_mean and running_var");
        if (!(eps >= 0f)) throw new ArgumentException($"{op}: eps = {eps}; allowed: eps >= 0");
        if (!(momentum >= 0f && momentum <= 1f)) throw new ArgumentException($"{op}: momentum = {momentum}; allowed: 0 <= momentum <= 1");
        if (training && s.M < 2)
            throw new ArgumentException($"{op}: x has shape {x.ShapeString}: training needs more than one value per channel (N * spatial >= 2) to estimate the variance");

        var device = x.Device;
        var y = Tensor.Empty(device, x.Shape);
        var mean = Tensor.Empty(device, s.C);
        var rstd = Tensor.Empty(device, s.C);
        try
        {
            if (training)
            {
                using var var = Tensor.Empty(device, s.C);
                if (device.UseCpuFastPath) BatchNormStatsCpu(x, mean, var, rstd, s, eps);
                else device.Kernels<BatchNormKernels>().Stats(GroupReduction.RowConfig(device, s.C), x.View, mean.View, var.View, rstd.View, s, eps);
                if (runningMean is not null)
                {
                    float unbias = s.M / (float)(s.M - 1);
                    if (device.UseCpuFastPath)
                    {
                        var rm = runningMean.CpuSpan(); var rv = runningVar!.CpuSpan();
                        var ms = mean.CpuSpan(); var vs = var.CpuSpan();
                        for (int c = 0; c < s.C; c++)
                        {
                            rm[c] = (1f - momentum) * rm[c] + momentum * ms[c];
                            rv[c] = (1f - momentum) * rv[c] + momentum * vs[c] * unbias;
                        }
                    }
                    else
                    {
                        int th = device.LaunchThreads(s.C);
                        device.Kernels<BatchNormKernels>().RunningUpdate(th, mean.View, var.View, runningMean.View, runningVar!.View, momentum, unbias, th);
                    }
                }
            }
            else
            {
                runningMean!.View.CopyTo(mean.View);
                if (device.UseCpuFastPath)
                {
                    var rv = runningVar!.CpuSpan(); var rs = rstd.CpuSpan();
                    for (int c = 0; c < s.C; c++) rs[c] = 1f / MathF.Sqrt(rv[c] + eps);
                }
                else
                {
                    int th = device.LaunchThreads(s.C);
                    device.Kernels<BatchNormKernels>().Rsqrt(th, runningVar!.View, rstd.View, eps, th);
                }
            }
            if (device.UseCpuFastPath) BatchNormApplyCpu(x, mean, rstd, weight, bias, y, s);
            else
            {
                int th = device.LaunchThreads(x.Length);
                device.Kernels<BatchNormKernels>().Normalize(th, x.View, mean.View, rstd.View, weight?.View ?? x.View, bias?.View ?? x.View, y.View, s, th);
            }
        }
        catch
        {
            y.Dispose(); mean.Dispose(); rstd.Dispose();
            throw;
        }
        return new BatchNormOutput(y, mean, rstd);
    }

    /// <summary>Batch norm, returning y only (see <see cref="BatchNormForward"/>).</summary>
    public static Tensor BatchNorm(Tensor x, Tensor? weight, Tensor? bias, Tensor? runningMean, Tensor? runningVar,
        bool training, float momentum = 0.1f, float eps = 1e-5f)
    {
        var o = BatchNormForward(x, weight, bias, runningMean, runningVar, training, momentum, eps);
        o.Mean.Dispose();
        o.Rstd.Dispose();
        return o.Y;
    }

    /// <summary>
    /// Backward of <see cref="BatchNormForward"/> from its saved mean and rstd (C): fresh dx (x's
    /// shape), dweight and dbias (C; null without affine). <paramref name="training"/> as in the
    /// forward: with batch statistics dx includes their dependence on x.
    /// </summary>
    public static BatchNormGrads BatchNormBackward(Tensor x, Tensor gy, Tensor mean, Tensor rstd, Tensor? weight, bool training)
    {
        const string op = "BatchNormBackward";
        var s = BatchNormValidate(op, x, weight);
        Shapes.RequireEqual(op, "gy", x.Shape, gy.Shape);
        Shapes.RequireEqual(op, "mean", [s.C], mean.Shape);
        Shapes.RequireEqual(op, "rstd", [s.C], rstd.Shape);
        var device = x.Device;
        var dx = Tensor.Empty(device, x.Shape);
        var sumDy = Tensor.Empty(device, s.C);
        var sumDyXhat = Tensor.Empty(device, s.C);
        try
        {
            if (device.UseCpuFastPath) BatchNormBackwardCpu(x, gy, mean, rstd, weight, sumDy, sumDyXhat, dx, s, training);
            else
            {
                var k = device.Kernels<BatchNormKernels>();
                k.BackwardSums(GroupReduction.RowConfig(device, s.C), x.View, gy.View, mean.View, rstd.View, sumDy.View, sumDyXhat.View, s);
                int th = device.LaunchThreads(x.Length);
                k.BackwardInput(th, x.View, gy.View, mean.View, rstd.View, weight?.View ?? x.View, sumDy.View, sumDyXhat.View, dx.View, s, training ? 1f : 0f, th);
            }
        }
        catch
        {
            dx.Dispose(); sumDy.Dispose(); sumDyXhat.Dispose();
            throw;
        }
        if (weight is null)
        {
            sumDy.Dispose(); sumDyXhat.Dispose();
            return new BatchNormGrads(dx, null, null);
        }
        return new BatchNormGrads(dx, sumDyXhat, sumDy);
    }

    static BatchNormShape BatchNormValidate(string op, Tensor x, Tensor? weight)
    {
        if (x.Rank < 2) throw new ArgumentException($"{op}: x has shape {x.ShapeString}; expected (N, C, *spatial) of rank >= 2");
        int n = x.Shape[0], c = x.Shape[1];
        if (x.Length == 0) throw new ArgumentException($"{op}: x has shape {x.ShapeString}; expected no empty dimension");
        if (weight is not null)
        {
            if (weight.Device != x.Device) throw new ArgumentException($"{op}: x and weight are on different devices");
            Shapes.RequireEqual(op, "weight", [c], weight.Shape);
        }
        return new BatchNormShape(n, c, x.Length / (n * c), weight is not null ? 1 : 0);
    }

    // ---- CPU fast path ----

    static void BatchNormStatsCpu(Tensor x, Tensor mean, Tensor var, Tensor rstd, BatchNormShape s, float eps)
    {
        Parallel.For(0, s.C, c =>
        {
            var xs = x.CpuSpan();
            // Two-pass mean (the float32 plane sums corrected by the centred residuals), then the
            // centred sum of squares; per-plane partials added in double.
            double sum = 0;
            for (int n = 0; n < s.N; n++) sum += TensorPrimitives.Sum(xs.Slice((n * s.C + c) * s.HW, s.HW));
            float mu0 = (float)(sum / s.M);
            double corr = 0, sq = 0;
            for (int n = 0; n < s.N; n++) corr += CenteredSum(xs.Slice((n * s.C + c) * s.HW, s.HW), mu0);
            float mu = mu0 + (float)(corr / s.M);
            for (int n = 0; n < s.N; n++) sq += CenteredSquares(xs.Slice((n * s.C + c) * s.HW, s.HW), mu);
            float v = (float)(sq / s.M);
            mean.CpuSpan()[c] = mu;
            var.CpuSpan()[c] = v;
            rstd.CpuSpan()[c] = 1f / MathF.Sqrt(v + eps);
        });
    }

    static void BatchNormApplyCpu(Tensor x, Tensor mean, Tensor rstd, Tensor? weight, Tensor? bias, Tensor y, BatchNormShape s)
    {
        RowChunks.Run(s.N * s.C, s.HW, (p0, p1) =>
        {
            var xs = x.CpuSpan(); var ys = y.CpuSpan();
            var ms = mean.CpuSpan(); var rs = rstd.CpuSpan();
            for (int p = p0; p < p1; p++)
            {
                int c = p % s.C;
                float scale = weight is null ? rs[c] : rs[c] * weight.CpuSpan()[c];
                float shift = bias is null ? 0f : bias.CpuSpan()[c];
                CenteredAffine(xs.Slice(p * s.HW, s.HW), ms[c], scale, shift, ys.Slice(p * s.HW, s.HW));
            }
        });
    }

    static void BatchNormBackwardCpu(Tensor x, Tensor gy, Tensor mean, Tensor rstd, Tensor? weight,
        Tensor sumDy, Tensor sumDyXhat, Tensor dx, BatchNormShape s, bool training)
    {
        Parallel.For(0, s.C, c =>
        {
            var xs = x.CpuSpan(); var gs = gy.CpuSpan();
            float mu = mean.CpuSpan()[c];
            double a1 = 0, a2 = 0;
            for (int n = 0; n < s.N; n++)
            {
                int off = (n * s.C + c) * s.HW;
                a1 += TensorPrimitives.Sum(gs.Slice(off, s.HW));
                a2 += CenteredDot(gs.Slice(off, s.HW), xs.Slice(off, s.HW), mu);
            }
            sumDy.CpuSpan()[c] = (float)a1;
            sumDyXhat.CpuSpan()[c] = (float)a2 * rstd.CpuSpan()[c];
        });
        float invM = training ? 1f / s.M : 0f;
        RowChunks.Run(s.N * s.C, s.HW, (p0, p1) =>
        {
            var xs = x.CpuSpan(); var gs = gy.CpuSpan(); var ds = dx.CpuSpan();
            for (int p = p0; p < p1; p++)
            {
                int c = p % s.C;
                float r = rstd.CpuSpan()[c], mu = mean.CpuSpan()[c];
                float k = weight is null ? r : r * weight.CpuSpan()[c];
                float a = invM * sumDy.CpuSpan()[c], b = invM * sumDyXhat.CpuSpan()[c];
                var xp = xs.Slice(p * s.HW, s.HW); var gp = gs.Slice(p * s.HW, s.HW); var dp = ds.Slice(p * s.HW, s.HW);
                for (int j = 0; j < s.HW; j++) dp[j] = k * (gp[j] - a - (xp[j] - mu) * r * b);
            }
        });
    }
}

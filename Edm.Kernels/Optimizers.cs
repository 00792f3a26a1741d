// Optimizers: training-step kernels over flat parameter/gradient buffers, fused so that each
// touches memory once.
//
//   Adam     (Kingma & Ba 2015, Algorithm 1), in place, one pass:
//              m = beta1 m + (1-beta1) g;  v = beta2 v + (1-beta2) g^2
//              p -= lr * (m / (1-beta1^t)) / (sqrt(v / (1-beta2^t)) + eps)
//            bias corrections computed per step on the host in double; lr may change every step
//            (EDM's ramp-up). Bytes per parameter: p r/w, g r, m r/w, v r/w = 28.
//   EMA      ema = beta ema + (1-beta) p, in place (NVlabs/edm's ema, beta from the half-life).
//   NanToNum g: nan -> 0, +inf -> 1e5, -inf -> -1e5 in place (what NVlabs/edm does to gradients).
//   SumSquares / GlobalNorm: sqrt(sum over a tensor list of x^2), for logging and clipping.
//
// Layouts: every tensor is flat (any shape, same element count within one call).
// Variants, naive -> fast:
//   1. Adam/EMA/NanToNum: grid-stride elementwise loops (launched with device.LaunchThreads(n));
//      already one read and one write of each buffer, which is the floor for these updates.
//   2. SumSquares: explicitly grouped (256 threads) grid-stride partial sums in double, a shared
//      memory tree per group, one double atomic add per group.
// CPU fast paths: CpuParallel.For over a few chunks of tensor.CpuSpan().
using ILGPU;
using ILGPU.Algorithms;
using ILGPU.Runtime;

namespace Edm.Kernels;

/// <summary>Per-step Adam constants (bias corrections already folded in).</summary>
public readonly struct AdamArgs
{
    /// <summary>Learning rate of this step.</summary>
    public readonly float Lr;
    /// <summary>First-moment decay.</summary>
    public readonly float Beta1;
    /// <summary>Second-moment decay.</summary>
    public readonly float Beta2;
    /// <summary>Denominator epsilon (added after the square root, as in the paper).</summary>
    public readonly float Eps;
    /// <summary>1 / (1 - beta1^t).</summary>
    public readonly float InvBias1;
    /// <summary>1 / (1 - beta2^t).</summary>
    public readonly float InvBias2;

    /// <summary>Constants of step <paramref name="step"/> (1-based).</summary>
    public AdamArgs(float lr, float beta1, float beta2, float eps, long step)
    {
        if (step < 1) throw new ArgumentException($"AdamStep: step is {step}; steps count from 1");
        if (!(beta1 >= 0 && beta1 < 1) || !(beta2 >= 0 && beta2 < 1))
            throw new ArgumentException($"AdamStep: beta1 {beta1} and beta2 {beta2} must lie in [0, 1)");
        if (!(eps > 0)) throw new ArgumentException($"AdamStep: eps {eps} must be > 0");
        if (!float.IsFinite(lr)) throw new ArgumentException($"AdamStep: learning rate {lr} is not finite");
        Lr = lr;
        Beta1 = beta1;
        Beta2 = beta2;
        Eps = eps;
        InvBias1 = (float)(1.0 / (1.0 - Math.Pow(beta1, step)));
        InvBias2 = (float)(1.0 / (1.0 - Math.Pow(beta2, step)));
    }

    /// <summary>
    /// One element's Adam update, the one arithmetic the kernel, the CPU fast path and the bench
    /// baseline share: m = beta1 m + (1 - beta1) g, v = beta2 v + (1 - beta2) g^2, and
    /// p -= lr m_hat / (sqrt(v_hat) + eps) with m_hat = m / (1 - beta1^t), v_hat = v / (1 - beta2^t).
    /// </summary>
    public void Update(ref float p, ref float m, ref float v, float g)
    {
        float mi = Beta1 * m + (1f - Beta1) * g;
        float vi = Beta2 * v + (1f - Beta2) * g * g;
        m = mi;
        v = vi;
        p -= Lr * (mi * InvBias1) / (MathF.Sqrt(vi * InvBias2) + Eps);
    }
}

/// <summary>Replacement values of <see cref="Ops.NanToNumInPlace"/>.</summary>
public readonly struct NanToNumArgs(float nan, float posInf, float negInf)
{
    /// <summary>Value for NaN.</summary>
    public readonly float Nan = nan;
    /// <summary>Value for +inf.</summary>
    public readonly float PosInf = posInf;
    /// <summary>Value for -inf.</summary>
    public readonly float NegInf = negInf;
}

/// <summary>The optimizer kernels (Adam, EMA, nan_to_num, sum of squares), loaded once per device.</summary>
public sealed class OptimizerKernels : IKernelFamily<OptimizerKernels>
{
    internal readonly Action<Index1D, ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>, AdamArgs, int, int> Adam;
    internal readonly Action<Index1D, ArrayView<float>, ArrayView<float>, float, int, int> Ema;
    internal readonly Action<Index1D, ArrayView<float>, NanToNumArgs, int, int> NanToNum;
    internal readonly Action<KernelConfig, ArrayView<float>, ArrayView<double>, int> SumSquares;

    OptimizerKernels(Accelerator acc)
    {
        Adam = acc.LoadAutoGroupedStreamKernel<Index1D, ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>, AdamArgs, int, int>(OptimizerKernels.AdamKernel);
        Ema = acc.LoadAutoGroupedStreamKernel<Index1D, ArrayView<float>, ArrayView<float>, float, int, int>(OptimizerKernels.EmaKernel);
        NanToNum = acc.LoadAutoGroupedStreamKernel<Index1D, ArrayView<float>, NanToNumArgs, int, int>(OptimizerKernels.NanToNumKernel);
        SumSquares = acc.LoadStreamKernel<ArrayView<float>, ArrayView<double>, int>(OptimizerKernels.SumSquaresKernel);
    }

    /// <inheritdoc/>
    public static OptimizerKernels Load(EdmDevice device) => new(device.Accelerator);

    /// <summary>Threads per group of the sum-of-squares reduction (a power of two).</summary>
    public const int ReduceGroup = 256;

    /// <summary>One fused Adam step over n elements (grid-stride).</summary>
    public static void AdamKernel(Index1D first, ArrayView<float> p, ArrayView<float> g, ArrayView<float> m, ArrayView<float> v,
        AdamArgs a, int n, int stride)
    {
        for (int i = first; i < n; i += stride) a.Update(ref p[i], ref m[i], ref v[i], g[i]);
    }

    /// <summary>ema = beta ema + (1-beta) p (grid-stride).</summary>
    public static void EmaKernel(Index1D first, ArrayView<float> ema, ArrayView<float> p, float beta, int n, int stride)
    {
        for (int i = first; i < n; i += stride)
            ema[i] = beta * ema[i] + (1f - beta) * p[i];
    }

    /// <summary>Replaces non-finite values in place (grid-stride).</summary>
    public static void NanToNumKernel(Index1D first, ArrayView<float> x, NanToNumArgs a, int n, int stride)
    {
        for (int i = first; i < n; i += stride)
        {
            float xi = x[i];
            if (XMath.IsNaN(xi)) x[i] = a.Nan;
            else if (XMath.IsInfinity(xi)) x[i] = xi > 0 ? a.PosInf : a.NegInf;
        }
    }

    /// <summary>acc[0] += sum x^2 (explicitly grouped, ReduceGroup threads per group).</summary>
    public static void SumSquaresKernel(ArrayView<float> x, ArrayView<double> acc, int n)
    {
        var partial = SharedMemory.Allocate<double>(ReduceGroup);
        int t = Group.IdxX;
        int stride = Grid.DimX * ReduceGroup;
        double s = 0;
        for (int i = Grid.IdxX * ReduceGroup + t; i < n; i += stride)
        {
            double xi = x[i];
            s += xi * xi;
        }
        partial[t] = s;
        Group.Barrier();
        for (int k = ReduceGroup / 2; k > 0; k >>= 1)
        {
            if (t < k) partial[t] += partial[t + k];
            Group.Barrier();  // reached by every thread of the group
        }
        if (t == 0) Atomic.Add(ref acc[0], partial[0]);
    }
}


public static partial class Ops
{
    /// <summary>
    /// One Adam step in place on <paramref name="param"/>, <paramref name="m"/> and
    /// <paramref name="v"/> (all the shape of <paramref name="param"/>), reading
    /// <paramref name="grad"/>. <paramref name="step"/> counts from 1.
    /// </summary>
    public static void AdamStep(Tensor param, Tensor grad, Tensor m, Tensor v, float lr, float beta1, float beta2, float eps, long step)
    {
        const string op = "AdamStep";
        Shapes.RequireEqual(op, "grad", param.Shape, grad.Shape);
        Shapes.RequireEqual(op, "m", param.Shape, m.Shape);
        Shapes.RequireEqual(op, "v", param.Shape, v.Shape);
        RequireSameDevice(op, param, grad);
        RequireSameDevice(op, param, m);
        RequireSameDevice(op, param, v);
        var a = new AdamArgs(lr, beta1, beta2, eps, step);
        var device = param.Device;
        int n = param.Length;
        if (device.UseCpuFastPath)
        {
            CpuParallel.For(n, (start, count) =>
            {
                var ps = param.CpuSpan().Slice(start, count);
                var gs = grad.CpuSpan().Slice(start, count);
                var ms = m.CpuSpan().Slice(start, count);
                var vs = v.CpuSpan().Slice(start, count);
                for (int i = 0; i < ps.Length; i++) a.Update(ref ps[i], ref ms[i], ref vs[i], gs[i]);
            });
            return;
        }
        int threads = device.LaunchThreads(n);
        device.Kernels<OptimizerKernels>().Adam(threads, param.View, grad.View, m.View, v.View, a, n, threads);
    }

    /// <summary>ema = beta*ema + (1-beta)*param in place, for each pair of the two lists.</summary>
    public static void EmaUpdate(IReadOnlyList<Tensor> ema, IReadOnlyList<Tensor> param, float beta)
    {
        const string op = "EmaUpdate";
        if (ema.Count != param.Count)
            throw new ArgumentException($"{op}: {ema.Count} EMA tensors but {param.Count} parameters; the lists must pair up");
        if (!(beta >= 0 && beta <= 1)) throw new ArgumentException($"{op}: beta {beta} must lie in [0, 1]");
        for (int k = 0; k < ema.Count; k++)
        {
            Tensor e = ema[k], p = param[k];
            Shapes.RequireEqual(op, $"param[{k}]", e.Shape, p.Shape);
            RequireSameDevice(op, e, p);
            var device = e.Device;
            int n = e.Length;
            if (device.UseCpuFastPath)
            {
                CpuParallel.For(n, (start, count) =>
                {
                    var es = e.CpuSpan().Slice(start, count);
                    var ps = p.CpuSpan().Slice(start, count);
                    for (int i = 0; i < es.Length; i++) es[i] = beta * es[i] + (1f - beta) * ps[i];
                });
                continue;
            }
            int threads = device.LaunchThreads(n);
            device.Kernels<OptimizerKernels>().Ema(threads, e.View, p.View, beta, n, threads);
        }
    }

    /// <summary>
    /// Replaces non-finite values of <paramref name="x"/> in place: NaN by <paramref name="nan"/>,
    /// +inf by <paramref name="posInf"/>, -inf by <paramref name="negInf"/> (defaults as NVlabs/edm
    /// applies to gradients).
    /// </summary>
    public static void NanToNumInPlace(Tensor x, float nan = 0f, float posInf = 1e5f, float negInf = -1e5f)
    {
        var a = new NanToNumArgs(nan, posInf, negInf);
        var device = x.Device;
        int n = x.Length;
        if (device.UseCpuFastPath)
        {
            CpuParallel.For(n, (start, count) =>
            {
                var xs = x.CpuSpan().Slice(start, count);
                for (int i = 0; i < xs.Length; i++)
                {
                    float xi = xs[i];
                    if (float.IsNaN(xi)) xs[i] = a.Nan;
                    else if (float.IsInfinity(xi)) xs[i] = xi > 0 ? a.PosInf : a.NegInf;
                }
            });
            return;
        }
        int threads = device.LaunchThreads(n);
        device.Kernels<OptimizerKernels>().NanToNum(threads, x.View, a, n, threads);
    }

    /// <summary>
    /// sqrt of the sum of squares of every element of every tensor (the global gradient norm),
    /// accumulated in double. Synchronises (returns a host number).
    /// </summary>
    public static double GlobalNorm(IReadOnlyList<Tensor> xs)
    {
        const string op = "GlobalNorm";
        if (xs.Count == 0) return 0;
        var device = xs[0].Device;
        for (int k = 1; k < xs.Count; k++) RequireSameDevice(op, xs[0], xs[k]);
        if (device.UseCpuFastPath)
        {
            // Fixed chunks summed in order: the same bits whatever the thread count.
            double total = 0;
            foreach (var x in xs)
                foreach (double part in DeterministicChunks.Map(x.Length, DeterministicChunks.Count(x.Length), (start, count) =>
                {
                    double acc = 0;
                    foreach (float f in x.CpuSpan().Slice(start, count)) acc += (double)f * f;
                    return acc;
                }))
                    total += part;
            return Math.Sqrt(total);
        }
        var kernels = device.Kernels<OptimizerKernels>();
        const int G = OptimizerKernels.ReduceGroup;
        int maxGroups = Math.Max(1, device.GridThreads / G);
        using var acc = device.Accelerator.Allocate1D<double>(1);
        acc.MemSetToZero();
        foreach (var x in xs)
        {
            int groups = (int)Math.Min(maxGroups, (x.Length + G - 1) / G);
            kernels.SumSquares(new KernelConfig(groups, G), x.View, acc.View, x.Length);
        }
        var host = new double[1];
        acc.View.CopyToCPU(host);
        return Math.Sqrt(host[0]);
    }
}

// MixtureDenoiser: the ideal denoiser of an isotropic Gaussian mixture, which includes the finite
// point set (the empirical distribution of K points: s_k = 0, equal weights) of the truncation
// bench (docs/formulas.md section 8):
//   D(x; sigma)_b = sum_k r_bk (mu_k + c_bk (x_b - mu_k)),  c_bk = s_k^2 / (s_k^2 + sigma_b^2),
//   r_bk = softmax_k(l_bk),  l_bk = ln w_k - D/2 ln(s_k^2 + sigma_b^2) - ||x_b - mu_k||^2 / (2 (s_k^2 + sigma_b^2)).
// The squared distance is summed from the differences (not expanded as |x|^2 - 2 x.mu + |mu|^2,
// which cancels catastrophically when sigma = 0.002 makes the logits ~1e5 apart), and the softmax
// subtracts the row max, so small sigma gives the nearest point rather than NaN.
// Layouts: x (B, D), means (K, D), variances (K), logWeights (K), sigma (B); out (B, D).
// Variants:
//   v1 three grid-stride kernels: logits (one (b, k) pair per iteration), row softmax (one row per
//      iteration, also folding c_bk into the weights), weighted sum (one (b, e) output per
//      iteration, looping over k). Enough for thousands of points on a GPU; a batched GEMM
//      (NN-kernels work) can replace kernel 3 later.
//   v2 CPU fast path: the same three stages in plain C# per sample, double accumulators, the
//      weighted sum component-major (contiguous rows of mu, collapsed weights skipped).
using ILGPU;
using ILGPU.Runtime;

namespace Edm.Kernels;

/// <summary>Kernels of the mixture / point-set denoiser.</summary>
public sealed class MixtureDenoiserKernels : IKernelFamily<MixtureDenoiserKernels>
{
    internal readonly Action<AcceleratorStream, Index1D, ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>, int, int, int, int> Logits;
    internal readonly Action<AcceleratorStream, Index1D, ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>, int, int, int> Softmax;
    internal readonly Action<AcceleratorStream, Index1D, ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>, int, int, int, int> Combine;

    MixtureDenoiserKernels(Accelerator acc)
    {
        Logits = acc.LoadAutoGroupedKernel<Index1D, ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>, int, int, int, int>(MixtureDenoiserKernels.LogitsKernel);
        Softmax = acc.LoadAutoGroupedKernel<Index1D, ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>, int, int, int>(MixtureDenoiserKernels.SoftmaxKernel);
        Combine = acc.LoadAutoGroupedKernel<Index1D, ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>, int, int, int, int>(MixtureDenoiserKernels.CombineKernel);
    }

    /// <inheritdoc/>
    public static MixtureDenoiserKernels Load(EdmDevice device) => new(device.Accelerator);

    /// <summary>logits[b, k] = l_bk (see file header).</summary>
    public static void LogitsKernel(Index1D tid, ArrayView<float> x, ArrayView<float> means, ArrayView<float> variances, ArrayView<float> logWeights,
        ArrayView<float> sigma, ArrayView<float> logits, int batch, int k, int d, int stride)
    {
        int n = batch * k;
        for (int i = tid; i < n; i += stride)
        {
            int b = i / k, c = i - b * k;
            float s = sigma[b];
            float v = variances[c] + s * s;
            float dist = 0;
            for (int e = 0; e < d; e++)
            {
                float t = x[b * d + e] - means[c * d + e];
                dist += t * t;
            }
            logits[i] = logWeights[c] - 0.5f * d * MathF.Log(v) - dist / (2f * v);
        }
    }

    /// <summary>
    /// Row softmax in place, then w[b, k] = r_bk (1 - c_bk) and xCoef[b] = sum_k r_bk c_bk.
    /// </summary>
    public static void SoftmaxKernel(Index1D tid, ArrayView<float> w, ArrayView<float> variances, ArrayView<float> sigma, ArrayView<float> xCoef,
        int batch, int k, int stride)
    {
        for (int b = tid; b < batch; b += stride)
        {
            float max = float.NegativeInfinity;
            for (int c = 0; c < k; c++) max = MathF.Max(max, w[b * k + c]);
            float sum = 0;
            for (int c = 0; c < k; c++)
            {
                float p = MathF.Exp(w[b * k + c] - max);
                w[b * k + c] = p;
                sum += p;
            }
            float s2 = sigma[b] * sigma[b], coef = 0;
            for (int c = 0; c < k; c++)
            {
                float r = w[b * k + c] / sum;
                float shrink = variances[c] / (variances[c] + s2);
                coef += r * shrink;
                w[b * k + c] = r - r * shrink;
            }
            xCoef[b] = coef;
        }
    }

    /// <summary>y[b, e] = xCoef[b] x[b, e] + sum_k w[b, k] mu[k, e].</summary>
    public static void CombineKernel(Index1D tid, ArrayView<float> x, ArrayView<float> means, ArrayView<float> w, ArrayView<float> xCoef,
        ArrayView<float> y, int batch, int k, int d, int stride)
    {
        int n = batch * d;
        for (int i = tid; i < n; i += stride)
        {
            int b = i / d, e = i - b * d;
            float acc = xCoef[b] * x[i];
            for (int c = 0; c < k; c++) acc += w[b * k + c] * means[c * d + e];
            y[i] = acc;
        }
    }
}


public static partial class Ops
{
    /// <summary>
    /// Posterior mean of an isotropic Gaussian mixture (a point set when every variance is 0):
    /// x (B, D), means (K, D), variances (K), logWeights (K), sigma (B) > 0; returns (B, D).
    /// </summary>
    public static Tensor MixtureDenoise(Tensor x, Tensor means, Tensor variances, Tensor logWeights, Tensor sigma)
    {
        const string op = "MixtureDenoise";
        if (x.Rank != 2) throw new ArgumentException($"{op}: x has shape {x.ShapeString}, expected (B, D)");
        int batch = x.Shape[0], d = x.Shape[1];
        if (means.Rank != 2 || means.Shape[1] != d) throw new ArgumentException($"{op}: means has shape {means.ShapeString}, expected (K, {d})");
        int k = means.Shape[0];
        Shapes.RequireEqual(op, "variances", [k], variances.Shape);
        Shapes.RequireEqual(op, "logWeights", [k], logWeights.Shape);
        Shapes.RequireEqual(op, "sigma", [batch], sigma.Shape);
        foreach (var t in new[] { means, variances, logWeights, sigma }) RequireSameDevice(op, x, t);
        var dev = x.Device;
        var y = Tensor.Empty(dev, batch, d);
        if (dev.UseCpuFastPath)
        {
            MixtureDenoiseCpu(x, means, variances, logWeights, sigma, y, batch, k, d);
            return y;
        }
        using var w = Tensor.Empty(dev, batch, k);
        using var xCoef = Tensor.Empty(dev, batch);
        var f = dev.Kernels<MixtureDenoiserKernels>();
        var stream = dev.Accelerator.DefaultStream;
        int t1 = dev.LaunchThreads((long)batch * k);
        f.Logits(stream, t1, x.View, means.View, variances.View, logWeights.View, sigma.View, w.View, batch, k, d, t1);
        int t2 = dev.LaunchThreads(batch);
        f.Softmax(stream, t2, w.View, variances.View, sigma.View, xCoef.View, batch, k, t2);
        int t3 = dev.LaunchThreads((long)batch * d);
        f.Combine(stream, t3, x.View, means.View, w.View, xCoef.View, y.View, batch, k, d, t3);
        return y;
    }

    static void MixtureDenoiseCpu(Tensor x, Tensor means, Tensor variances, Tensor logWeights, Tensor sigma, Tensor y, int batch, int k, int d)
    {
        Parallel.For(0, batch, new ParallelOptions { MaxDegreeOfParallelism = Environment.ProcessorCount }, () => new double[2 * k + d], (b, _, buf) =>
        {
            MixtureDenoiseSample(x.CpuSpan().Slice(b * d, d), means.CpuSpan(), variances.CpuSpan(), logWeights.CpuSpan(), sigma.CpuSpan()[b],
                y.CpuSpan().Slice(b * d, d), buf, k, d);
            return buf;
        }, _ => { });
    }

    // One sample of the CPU fast path: a static method over spans with every size a parameter (no
    // closure fields in the inner loops).
    static void MixtureDenoiseSample(ReadOnlySpan<float> xs, ReadOnlySpan<float> mu, ReadOnlySpan<float> vars, ReadOnlySpan<float> lw, float s,
        Span<float> ys, double[] buf, int k, int d)
    {
        double s2 = (double)s * s, max = double.NegativeInfinity;
        var logit = buf.AsSpan(0, k);
        for (int c = 0; c < k; c++)
        {
            double v = vars[c] + s2, dist = 0;
            var m = mu.Slice(c * d, d);
            for (int e = 0; e < m.Length; e++) { double t = xs[e] - m[e]; dist += t * t; }
            logit[c] = lw[c] - 0.5 * d * Math.Log(v) - dist / (2 * v);
            max = Math.Max(max, logit[c]);
        }
        double sum = 0;
        for (int c = 0; c < k; c++) { logit[c] = Math.Exp(logit[c] - max); sum += logit[c]; }
        double coef = 0;
        var w = buf.AsSpan(k, k);
        for (int c = 0; c < k; c++)
        {
            double r = logit[c] / sum, shrink = vars[c] / (vars[c] + s2);
            coef += r * shrink;
            w[c] = r * (1 - shrink);
        }
        // Component-major accumulation: rows of mu are contiguous, and collapsed weights skip.
        var acc = buf.AsSpan(2 * k, d);
        for (int e = 0; e < acc.Length; e++) acc[e] = coef * xs[e];
        for (int c = 0; c < k; c++)
        {
            double wc = w[c];
            if (wc == 0) continue;
            var m = mu.Slice(c * d, d);
            for (int e = 0; e < m.Length; e++) acc[e] += wc * m[e];
        }
        for (int e = 0; e < acc.Length; e++) ys[e] = (float)acc[e];
    }
}

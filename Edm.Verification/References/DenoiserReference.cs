// Float64 host reference of the analytic denoisers (docs/formulas.md section 8): plain loops, one
// sample at a time. They share no code with the device denoisers (Denoisers.cs and
// Edm.Kernels/MixtureDenoiser.cs), which are checked against them.
using Edm.Sampling;

namespace Edm.Verification;

/// <summary>A float64 denoiser D(x; sigma) for one sample of dimension <see cref="Dim"/>.</summary>
public interface IHostDenoiser
{
    /// <summary>Dimension D.</summary>
    int Dim { get; }
    /// <summary>Writes D(x; sigma) into <paramref name="result"/>; x and result have length D.</summary>
    void Denoise(ReadOnlySpan<double> x, double sigma, Span<double> result);

    /// <summary>Rounds a noise level to one the denoiser supports (as <c>IDenoiser.RoundSigma</c>); identity by default.</summary>
    double RoundSigma(double sigma) => sigma;
}

/// <summary>The ideal denoiser of an isotropic Gaussian mixture (the point set is s_k = 0).</summary>
public sealed class HostMixtureDenoiser(AnalyticDataset data) : IHostDenoiser
{
    /// <summary>The dataset.</summary>
    public AnalyticDataset Data { get; } = data;
    /// <inheritdoc/>
    public int Dim => Data.Dim;

    /// <summary>
    /// Posterior mean E[y | x] for p(x; sigma) = sum_k w_k N(x; mu_k, (s_k^2 + sigma^2) I):
    /// D = sum_k r_k (mu_k + s_k^2 / (s_k^2 + sigma^2) (x - mu_k)), with responsibilities
    /// r_k = softmax_k(ln w_k - D/2 ln(s_k^2 + sigma^2) - ||x - mu_k||^2 / (2 (s_k^2 + sigma^2)))
    /// taken with the max subtracted (log-sum-exp), so sigma = 0.002 cannot overflow.
    /// </summary>
    public void Denoise(ReadOnlySpan<double> x, double sigma, Span<double> result)
    {
        int k = Data.Count, d = Data.Dim;
        var logit = new double[k];
        double max = double.NegativeInfinity;
        for (int c = 0; c < k; c++)
        {
            double v = Data.Variances[c] + sigma * sigma;
            double dist = 0;
            for (int e = 0; e < d; e++) { double t = x[e] - Data.Means[c * d + e]; dist += t * t; }
            logit[c] = Data.LogWeights[c] - 0.5 * d * Math.Log(v) - dist / (2 * v);
            max = Math.Max(max, logit[c]);
        }
        double sum = 0;
        for (int c = 0; c < k; c++) { logit[c] = Math.Exp(logit[c] - max); sum += logit[c]; }
        result.Clear();
        for (int c = 0; c < k; c++)
        {
            double r = logit[c] / sum;
            if (r == 0) continue;
            double v = Data.Variances[c] + sigma * sigma;
            double shrink = Data.Variances[c] / v;
            for (int e = 0; e < d; e++)
            {
                double mu = Data.Means[c * d + e];
                result[e] += r * (mu + shrink * (x[e] - mu));
            }
        }
    }
}

/// <summary>The ideal denoiser of N(mu, s^2 I): D(x; sigma) = mu + s^2/(s^2 + sigma^2) (x - mu), and its exact ODE solution.</summary>
public sealed class HostGaussianDenoiser : IHostDenoiser
{
    readonly double[] _mu;
    readonly double _var;

    /// <summary>From a Gaussian dataset (K = 1).</summary>
    public HostGaussianDenoiser(AnalyticDataset data)
    {
        if (data.Count != 1) throw new ArgumentException($"HostGaussianDenoiser: dataset has {data.Count} components, expected 1");
        _mu = data.Means;
        _var = data.Variances[0];
    }

    /// <inheritdoc/>
    public int Dim => _mu.Length;

    /// <inheritdoc/>
    public void Denoise(ReadOnlySpan<double> x, double sigma, Span<double> result)
    {
        double c = _var / (_var + sigma * sigma);
        for (int e = 0; e < _mu.Length; e++) result[e] = _mu[e] + c * (x[e] - _mu[e]);
    }

    /// <summary>
    /// Exact probability-flow solution (sigma(t) = t, s = 1): x(sigma) = mu + (x0 - mu)
    /// sqrt(s^2 + sigma^2) / sqrt(s^2 + sigma0^2) (docs/formulas.md section 8).
    /// </summary>
    public void Exact(ReadOnlySpan<double> x0, double sigma0, double sigma, Span<double> result)
    {
        double f = Math.Sqrt((_var + sigma * sigma) / (_var + sigma0 * sigma0));
        for (int e = 0; e < _mu.Length; e++) result[e] = _mu[e] + (x0[e] - _mu[e]) * f;
    }
}

/// <summary>Host denoiser construction for a dataset.</summary>
public static class HostDenoisers
{
    /// <summary>The closed-form Gaussian for gaussian data, the mixture posterior mean otherwise.</summary>
    public static IHostDenoiser For(AnalyticDataset data) =>
        data.Kind == DatasetKind.Gaussian ? new HostGaussianDenoiser(data) : new HostMixtureDenoiser(data);
}

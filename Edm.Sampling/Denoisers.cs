// The denoiser interface every sampler takes, D(x; sigma) on a batch with per-sample sigma, and
// the analytic device denoisers of docs/formulas.md section 8 (the preconditioned networks of the
// model issue implement the same interface).
using Edm.Kernels;

namespace Edm.Sampling;

/// <summary>A denoiser D(x; sigma): the network (preconditioned) or an analytic ideal denoiser.</summary>
public interface IDenoiser
{
    /// <summary>
    /// D(x; sigma) for a batch x (B, ...) with sigma[b] the noise level of sample b (> 0).
    /// Returns a new tensor of x's shape; never disposes x.
    /// </summary>
    Tensor Denoise(Tensor x, double[] sigma);

    /// <summary>Rounds a noise level to one the denoiser supports (iDDPM's u_j); identity by default.</summary>
    double RoundSigma(double sigma) => sigma;

    /// <summary>Smallest noise level supported (the sampler clamps its range to it).</summary>
    double SigmaMin => 0;

    /// <summary>Largest noise level supported.</summary>
    double SigmaMax => double.PositiveInfinity;
}

/// <summary>Counts denoiser evaluations (NFE: one per call, whatever the batch).</summary>
public sealed class CountingDenoiser(IDenoiser inner) : IDenoiser
{
    /// <summary>Calls so far.</summary>
    public int Calls { get; private set; }
    /// <inheritdoc/>
    public Tensor Denoise(Tensor x, double[] sigma) { Calls++; return inner.Denoise(x, sigma); }
    /// <inheritdoc/>
    public double RoundSigma(double sigma) => inner.RoundSigma(sigma);
    /// <inheritdoc/>
    public double SigmaMin => inner.SigmaMin;
    /// <inheritdoc/>
    public double SigmaMax => inner.SigmaMax;
}

/// <summary>
/// Ideal denoiser of N(mu, s^2 I) in closed form: D(x; sigma) = mu + s^2/(s^2 + sigma^2) (x - mu),
/// with Ops (broadcast of mu over the batch, of the per-sample factor over the elements).
/// </summary>
public sealed class GaussianDenoiser : IDenoiser, IDisposable
{
    readonly Tensor _mu;        // (1, ...) the sample shape with a leading 1
    readonly double _var;

    /// <summary>Mean <paramref name="mu"/> (one sample's elements, float32) and variance s^2.</summary>
    public GaussianDenoiser(EdmDevice device, ReadOnlySpan<float> mu, double variance, params int[] sampleShape)
    {
        if (!(variance > 0)) throw new ArgumentException($"GaussianDenoiser: variance {variance} is invalid; allowed: > 0");
        sampleShape = sampleShape.Length == 0 ? [mu.Length] : sampleShape;
        _mu = Tensor.FromArray(device, mu, [1, .. sampleShape]);
        _var = variance;
    }

    /// <inheritdoc/>
    public Tensor Denoise(Tensor x, double[] sigma)
    {
        if (x.Rank < 1 || x.Length / x.Shape[0] != _mu.Length)
            throw new ArgumentException($"GaussianDenoiser: x has shape {x.ShapeString}, expected (B, {string.Join(", ", _mu.Shape[1..])})");
        if (sigma.Length != x.Shape[0]) throw new ArgumentException($"GaussianDenoiser: {sigma.Length} sigmas for a batch of {x.Shape[0]}");
        int batch = x.Shape[0];
        using var scope = new TensorScope();
        var xs = x.Reshape([batch, .. _mu.Shape[1..]]);
        var coef = new float[batch];
        for (int b = 0; b < batch; b++) coef[b] = (float)(_var / (_var + sigma[b] * sigma[b]));
        var c = Tensor.FromArray(x.Device, coef, [batch, .. Enumerable.Repeat(1, _mu.Rank - 1)]);
        var result = Ops.Add(Ops.Mul(Ops.Sub(xs, _mu), c), _mu).Reshape(x.Shape);
        return scope.Escape(result);
    }

    /// <inheritdoc/>
    public void Dispose() => _mu.Dispose();
}

/// <summary>
/// Ideal denoiser of an isotropic Gaussian mixture, or of a finite point set (all variances 0),
/// on the device via <see cref="Ops.MixtureDenoise"/>. x is (B, D).
/// </summary>
public sealed class MixtureDenoiser : IDenoiser, IDisposable
{
    readonly Tensor _means, _variances, _logWeights;   // (K, D), (K), (K)

    /// <summary>From component means (K x D), variances and log weights.</summary>
    public MixtureDenoiser(EdmDevice device, ReadOnlySpan<float> means, ReadOnlySpan<float> variances, ReadOnlySpan<float> logWeights)
    {
        int k = variances.Length;
        if (k < 1 || logWeights.Length != k || means.Length % k != 0)
            throw new ArgumentException($"MixtureDenoiser: {means.Length} mean elements, {k} variances and {logWeights.Length} log weights do not describe K components");
        _means = Tensor.FromArray(device, means, k, means.Length / k);
        _variances = Tensor.FromArray(device, variances, k);
        _logWeights = Tensor.FromArray(device, logWeights, k);
    }

    /// <inheritdoc/>
    public Tensor Denoise(Tensor x, double[] sigma)
    {
        if (sigma.Length != x.Shape[0]) throw new ArgumentException($"MixtureDenoiser: {sigma.Length} sigmas for a batch of {x.Shape[0]}");
        foreach (double s in sigma)
            if (!(s > 0)) throw new ArgumentException($"MixtureDenoiser: sigma {s} is invalid; allowed: sigma > 0");
        using var x2 = x.Reshape(x.Shape[0], -1);
        using var sig = Tensor.FromArray(x.Device, sigma.Select(s => (float)s).ToArray(), sigma.Length);
        var y = Ops.MixtureDenoise(x2, _means, _variances, _logWeights, sig);
        if (x.Rank == 2) return y;
        using (y) return y.Reshape(x.Shape);      // the view keeps the storage alive
    }

    /// <inheritdoc/>
    public void Dispose()
    {
        _means.Dispose();
        _variances.Dispose();
        _logWeights.Dispose();
    }
}

/// <summary>Device denoisers for analytic datasets.</summary>
public static class AnalyticDenoisers
{
    /// <summary>The Gaussian closed form for gaussian data, the mixture kernel for mixture and points.</summary>
    public static IDenoiser For(EdmDevice device, AnalyticDataset data)
    {
        if (data.Kind == DatasetKind.Gaussian)
            return new GaussianDenoiser(device, data.Means.Select(v => (float)v).ToArray(), data.Variances[0], data.Dim);
        return new MixtureDenoiser(device, data.Means.Select(v => (float)v).ToArray(),
            data.Variances.Select(v => (float)v).ToArray(), data.LogWeights.Select(v => (float)v).ToArray());
    }
}

// verify rows for the mixture / point-set denoiser kernel family (Edm.Kernels/MixtureDenoiser.cs)
// against the float64 host denoiser (Edm.Verification.HostMixtureDenoiser), with noise
// levels from 0.002 to 80 and x near the data (the regime where small sigma separates logits by ~1e5).
using Edm.Kernels;
using Edm.Sampling;
using Edm.Verification;

namespace Edm.Verification;

/// <summary>Checks of Ops.MixtureDenoise.</summary>
public sealed class MixtureDenoiserVerify : IVerifySuite
{
    /// <inheritdoc/>
    public string Family => "mixture_denoiser";

    /// <inheritdoc/>
    public IEnumerable<VerifyRow> Run(EdmDevice d)
    {
        yield return Check(d, DatasetKind.Points, batch: 9, dim: 7, count: 13);
        yield return Check(d, DatasetKind.Points, batch: 33, dim: 3, count: 1000);
        yield return Check(d, DatasetKind.Mixture, batch: 17, dim: 5, count: 4);
    }

    /// <summary>One shape: x (batch, dim) near the data, sigma cycling over 0.002..80.</summary>
    public static VerifyRow Check(EdmDevice d, DatasetKind kind, int batch, int dim, int count)
    {
        double[] levels = [0.002, 0.01, 0.05, 0.3, 1, 5, 80];
        var data = AnalyticDataset.Create(kind, dim, count, seed: 7);
        var sigma = new double[batch];
        var x = new float[batch * dim];
        for (int b = 0; b < batch; b++)
        {
            sigma[b] = levels[b % levels.Length];
            int k = b % data.Count;
            for (int e = 0; e < dim; e++)
                x[b * dim + e] = (float)(data.Means[k * dim + e] + sigma[b] * DetRandom.Normal(5, 0, b * dim + e));
        }
        var den = new MixtureDenoiser(d, data.Means.Select(v => (float)v).ToArray(), data.Variances.Select(v => (float)v).ToArray(),
            data.LogWeights.Select(v => (float)v).ToArray());
        using (den)
        {
            using var xt = Tensor.FromArray(d, x, batch, dim);
            using var y = den.Denoise(xt, sigma);
            var host = new HostMixtureDenoiser(data);
            var reference = new double[batch * dim];
            for (int b = 0; b < batch; b++)
                host.Denoise(x.AsSpan(b * dim, dim).ToArray().Select(v => (double)v).ToArray(), sigma[b], reference.AsSpan(b * dim, dim));
            return Compare.Row($"mixture_denoise {data.Name}", $"x ({batch}, {dim}), K {count}", y.ToArray(), reference, 2e-5,
                "sigma 0.002..80");
        }
    }
}

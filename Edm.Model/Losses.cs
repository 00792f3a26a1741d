// Training losses (Table 1 and section 6 of docs/formulas.md; NVlabs/edm training/loss.py):
//   VP:  t ~ U(eps_t, 1), sigma = sigma(t), lambda = 1 / sigma^2
//   VE:  ln sigma ~ U(ln sigma_min, ln sigma_max), lambda = 1 / sigma^2
//   EDM: ln sigma ~ N(P_mean, P_std^2), lambda = (sigma^2 + sigma_data^2) / (sigma sigma_data)^2
// loss = lambda(sigma) || D(y + n; sigma) - y ||^2 with n ~ N(0, sigma^2 I), summed over pixels and
// averaged over the batch. k-diffusion's weightings train the EDM network on the F-space target
// (y - c_skip (y + n)) / c_out with weight w(sigma): karras 1, snr sigma_data^2 / (sigma^2 +
// sigma_data^2), soft-min-snr (sigma sigma_data)^2 / (sigma^2 + sigma_data^2)^2 (the karras
// weighting equals EDM's lambda-weighted D-space loss).
using Edm.Autograd;
using Edm.Kernels;

namespace Edm.Model;

/// <summary>Which loss.</summary>
public enum LossKind
{
    /// <summary>VP loss (Table 1): t ~ U(eps_t, 1), lambda = 1 / sigma^2.</summary>
    Vp,
    /// <summary>VE loss (Table 1): ln sigma ~ U(ln sigma_min, ln sigma_max), lambda = 1 / sigma^2.</summary>
    Ve,
    /// <summary>EDM loss (Table 1): ln sigma ~ N(P_mean, P_std^2), lambda = (sigma^2 + sigma_data^2) / (sigma sigma_data)^2.</summary>
    Edm,
    /// <summary>k-diffusion's karras weighting in F space.</summary>
    Karras,
    /// <summary>k-diffusion's SNR weighting.</summary>
    Snr,
    /// <summary>k-diffusion's soft-min-SNR weighting.</summary>
    SoftMinSnr,
}

/// <summary>Loss settings with the paper's defaults.</summary>
public sealed record LossSettings
{
    /// <summary>Which loss.</summary>
    public LossKind Kind { get; init; } = LossKind.Edm;
    /// <summary>EDM: mean of ln sigma.</summary>
    public double PMean { get; init; } = -1.2;
    /// <summary>EDM: std of ln sigma.</summary>
    public double PStd { get; init; } = 1.2;
    /// <summary>sigma_data.</summary>
    public double SigmaData { get; init; } = 0.5;
    /// <summary>VE: sigma range.</summary>
    public double SigmaMin { get; init; } = 0.02;
    /// <summary>VE: sigma range.</summary>
    public double SigmaMax { get; init; } = 100;
    /// <summary>VP: minimum t.</summary>
    public double EpsilonT { get; init; } = 1e-5;

    /// <summary>Parses a loss name.</summary>
    public static LossKind Parse(string name) => name switch
    {
        "vp" => LossKind.Vp, "ve" => LossKind.Ve, "edm" => LossKind.Edm, "karras" => LossKind.Karras, "snr" => LossKind.Snr,
        "soft-min-snr" => LossKind.SoftMinSnr,
        _ => throw new ArgumentException($"unknown loss '{name}'; allowed: vp, ve, edm, karras, snr, soft-min-snr"),
    };
}

/// <summary>Computes training losses.</summary>
public static class Losses
{
    /// <summary>
    /// Per-sample noise levels for a batch, drawn from Philox (seed, stream) so a step is
    /// reproducible: sample b uses element b.
    /// </summary>
    public static double[] SampleSigma(LossSettings s, int batch, ulong seed, ulong stream)
    {
        var sigma = new double[batch];
        for (int b = 0; b < batch; b++)
        {
            double u = Philox.Uniform(seed, stream, (uint)b);
            double z = Philox.Normal(seed, stream, (uint)b);
            sigma[b] = s.Kind switch
            {
                LossKind.Vp => Precond.VpSigma(1 + u * (s.EpsilonT - 1)),
                LossKind.Ve => Math.Exp(Math.Log(s.SigmaMin) + u * (Math.Log(s.SigmaMax) - Math.Log(s.SigmaMin))),
                _ => Math.Exp(s.PMean + s.PStd * z),
            };
        }
        return sigma;
    }

    /// <summary>lambda(sigma) of the D-space losses.</summary>
    public static double Weight(LossSettings s, double sigma) => s.Kind switch
    {
        LossKind.Vp or LossKind.Ve => 1 / (sigma * sigma),
        LossKind.Edm => (sigma * sigma + s.SigmaData * s.SigmaData) / Math.Pow(sigma * s.SigmaData, 2),
        LossKind.Karras => 1,
        LossKind.Snr => s.SigmaData * s.SigmaData / (sigma * sigma + s.SigmaData * s.SigmaData),
        _ => Math.Pow(sigma * s.SigmaData, 2) / Math.Pow(sigma * sigma + s.SigmaData * s.SigmaData, 2),
    };

    /// <summary>
    /// The loss of one batch y (B, C, R, R) in [-1, 1]: a scalar variable (sum over pixels, mean
    /// over the batch). Noise from Philox (seed, stream); sigma per sample from (seed, stream).
    /// </summary>
    public static Variable Compute(Precond net, Variable y, Variable? classLabels, Variable? augmentLabels, LossSettings s, ulong seed, ulong stream)
    {
        int b = y.Shape[0];
        var sigma = SampleSigma(s, b, seed, 2 * stream);
        var eps = Tensor.Empty(y.Device, y.Shape);
        Ops.Normal(eps, seed, 2 * stream + 1);
        return Compute(net, y, classLabels, augmentLabels, s, sigma, eps);
    }

    /// <summary>
    /// The loss with the caller's noise levels <paramref name="sigma"/> (one per image, &gt; 0) and
    /// unit Gaussian noise <paramref name="noise"/> (the shape of y): the noised input is
    /// y + sigma noise, as in k-diffusion's <c>Denoiser.loss(input, noise, sigma)</c>. For parity
    /// checks against other code and for ablations over sigma. Never disposes its inputs.
    /// </summary>
    public static Variable Compute(Precond net, Variable y, Variable? classLabels, Variable? augmentLabels, LossSettings s, double[] sigma, Tensor noise)
    {
        int b = y.Shape[0];
        if (sigma.Length != b) throw new ArgumentException($"Losses.Compute: {sigma.Length} sigmas for a batch of {b}");
        if (sigma.Any(v => !(v > 0) || double.IsInfinity(v))) throw new ArgumentException("Losses.Compute: every sigma must be a positive finite number");
        if (!Shapes.Equal(noise.Shape, y.Shape)) throw new ArgumentException($"Losses.Compute: noise has shape {noise.ShapeString}, expected y's {y.Value.ShapeString}");
        var dev = y.Device;
        Tensor n;
        using (var sig = Tensor.FromArray(dev, sigma.Select(v => (float)v).ToArray(), b, 1, 1, 1)) n = Ops.Mul(noise, sig);  // n ~ N(0, sigma^2 I)
        var yn = Fn.Add(y, new Variable(n));
        var w = new Variable(Tensor.FromArray(dev, sigma.Select(v => (float)Weight(s, v)).ToArray(), b, 1, 1, 1));
        Variable err;
        if (s.Kind is LossKind.Vp or LossKind.Ve or LossKind.Edm)
        {
            var d = net.Forward(yn, sigma, classLabels, augmentLabels);
            err = Fn.Sub(d, y);
        }
        else
        {
            // F-space target (y - c_skip (y + n)) / c_out (k-diffusion's Denoiser.loss).
            net.Forward(yn, sigma, classLabels, augmentLabels, out var f, out var c);
            var cSkip = new Variable(Tensor.FromArray(dev, c.Select(v => (float)v.CSkip).ToArray(), b, 1, 1, 1));
            var invOut = new Variable(Tensor.FromArray(dev, c.Select(v => (float)(1 / v.COut)).ToArray(), b, 1, 1, 1));
            var target = Fn.Mul(Fn.Sub(y, Fn.Mul(yn, cSkip)), invOut);
            err = Fn.Sub(f, target);
        }
        return Fn.Scale(Fn.Sum(Fn.Mul(Fn.Square(err), w)), 1f / b);
    }
}

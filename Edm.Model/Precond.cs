// Preconditioning (Table 1 of the paper; docs/formulas.md section 2): a network F wrapped as the
// denoiser D(x; sigma) = c_skip(sigma) x + c_out(sigma) F(c_in(sigma) x; c_noise(sigma)),
// for the VP, VE, iDDPM and EDM formulations. All coefficients are computed per sample in double
// and applied as (B, 1, 1, 1) factors. A preconditioned network is a Sampling IDenoiser, so every
// sampler runs on it.
using Edm.Autograd;
using Edm.Kernels;
using Edm.Model.Networks;
using Edm.Sampling;

namespace Edm.Model;

/// <summary>The four formulations of Table 1.</summary>
public enum PrecondKind
{
    /// <summary>Variance preserving.</summary>
    Vp,
    /// <summary>Variance exploding.</summary>
    Ve,
    /// <summary>Improved DDPM (Nichol and Dhariwal), with the u_j table of noise levels.</summary>
    Iddpm,
    /// <summary>EDM (the paper's).</summary>
    Edm,
}

/// <summary>c_skip, c_out, c_in, c_noise of one formulation at one sigma.</summary>
public readonly record struct PrecondCoefficients(double CSkip, double COut, double CIn, double CNoise);

/// <summary>A network wrapped with Table 1's preconditioning; implements the sampler's denoiser interface.</summary>
public sealed class Precond : IDenoiser, IDisposable
{
    // Table 1 parameters (constructor defaults of NVlabs/edm's *Precond classes).
    /// <summary>VP: beta_d.</summary>
    public const double BetaD = 19.9;
    /// <summary>VP: beta_min.</summary>
    public const double BetaMin = 0.1;
    /// <summary>VP / iDDPM: number of DDPM steps M.</summary>
    public const int M = 1000;
    /// <summary>VP: minimum training t.</summary>
    public const double EpsilonT = 1e-5;

    readonly double[]? _u; // iDDPM noise levels u_0 > ... > u_M = 0

    /// <summary>The raw network F.</summary>
    public INetwork Network { get; }
    /// <summary>The formulation.</summary>
    public PrecondKind Kind { get; }
    /// <summary>EDM sigma_data.</summary>
    public double SigmaData { get; }
    /// <inheritdoc/>
    public double SigmaMin { get; }
    /// <inheritdoc/>
    public double SigmaMax { get; }
    /// <summary>Image channels of D's input and output (iDDPM's network outputs twice as many).</summary>
    public int ImgChannels { get; }
    /// <summary>Class labels used by <see cref="Denoise"/> (B, LabelDim), or null (zeros for a conditional network).</summary>
    public Tensor? SamplingLabels { get; set; }

    /// <summary>
    /// Classifier-free guidance weight w of <see cref="Denoise"/> for a conditional network:
    /// D_w = D(x; sigma, 0) + w (D(x; sigma, labels) - D(x; sigma, 0)), the unconditional branch being
    /// zero labels (what label_dropout trains). 1 (the default) is plain conditional sampling; 0 is
    /// unconditional; w &gt; 1 strengthens the class. Any finite w is allowed; w != 1 needs labels.
    /// </summary>
    public double Guidance
    {
        get => _guidance;
        set
        {
            if (!double.IsFinite(value)) throw new ArgumentException($"Precond: guidance {value} is invalid; it must be a finite number (1 = no guidance)");
            if (value != 1 && Network.LabelDim == 0)
                throw new ArgumentException($"Precond: guidance {value} needs a class-conditional network; this one has label_dim 0 (use 1)");
            _guidance = value;
        }
    }
    double _guidance = 1;

    /// <summary>Wraps <paramref name="network"/>.</summary>
    public Precond(INetwork network, PrecondKind kind, double sigmaData = 0.5)
    {
        Network = network;
        Kind = kind;
        SigmaData = sigmaData;
        ImgChannels = network.InChannels;
        if (kind == PrecondKind.Iddpm && network.OutChannels != 2 * network.InChannels)
            throw new ArgumentException($"iDDPM preconditioning needs a network with {2 * network.InChannels} output channels (learned variance), got {network.OutChannels}");
        switch (kind)
        {
            case PrecondKind.Vp: SigmaMin = VpSigma(EpsilonT); SigmaMax = VpSigma(1); break;
            case PrecondKind.Ve: SigmaMin = 0.02; SigmaMax = 100; break;
            case PrecondKind.Iddpm:
                _u = TimeSteps.IddpmUFloat32(M); // float32 like NVlabs/edm's iDDPMPrecond buffer (docs/model.md)
                SigmaMin = _u[M - 1]; SigmaMax = _u[0];
                break;
            default: SigmaMin = 0; SigmaMax = double.PositiveInfinity; break;
        }
    }

    /// <summary>Parses "vp" | "ve" | "iddpm" | "edm".</summary>
    public static PrecondKind Parse(string name) => name switch
    {
        "vp" => PrecondKind.Vp, "ve" => PrecondKind.Ve, "iddpm" => PrecondKind.Iddpm, "edm" => PrecondKind.Edm,
        _ => throw new ArgumentException($"unknown preconditioning '{name}'; allowed: vp, ve, iddpm, edm"),
    };

    /// <summary>VP sigma(t) = sqrt(exp(beta_d t^2 / 2 + beta_min t) - 1).</summary>
    public static double VpSigma(double t) => Math.Sqrt(Math.Exp(0.5 * BetaD * t * t + BetaMin * t) - 1);
    /// <summary>VP sigma^-1.</summary>
    public static double VpSigmaInv(double sigma) => (Math.Sqrt(BetaMin * BetaMin + 2 * BetaD * Math.Log(1 + sigma * sigma)) - BetaMin) / BetaD;

    /// <summary>Table 1's c_skip, c_out, c_in, c_noise at <paramref name="sigma"/> (> 0).</summary>
    public PrecondCoefficients Coefficients(double sigma)
    {
        if (!(sigma > 0) || double.IsInfinity(sigma))
            throw new ArgumentException($"Precond: sigma {sigma} is invalid; sigma must be finite and > 0");
        double s2 = sigma * sigma;
        return Kind switch
        {
            PrecondKind.Vp => new(1, -sigma, 1 / Math.Sqrt(s2 + 1), (M - 1) * VpSigmaInv(sigma)),
            PrecondKind.Ve => new(1, sigma, 1, Math.Log(0.5 * sigma)),
            PrecondKind.Iddpm => new(1, -sigma, 1 / Math.Sqrt(s2 + 1), M - 1 - NearestU(sigma)),
            _ => new(SigmaData * SigmaData / (s2 + SigmaData * SigmaData),
                     sigma * SigmaData / Math.Sqrt(s2 + SigmaData * SigmaData),
                     1 / Math.Sqrt(s2 + SigmaData * SigmaData),
                     Math.Log(sigma) / 4),
        };
    }

    int NearestU(double sigma)
    {
        int best = 0;
        for (int j = 1; j < _u!.Length; j++) if (Math.Abs(_u[j] - sigma) < Math.Abs(_u[best] - sigma)) best = j;
        return best;
    }

    /// <inheritdoc/>
    public double RoundSigma(double sigma) => Kind == PrecondKind.Iddpm ? _u![NearestU(sigma)] : sigma;

    /// <summary>
    /// D(x; sigma) on the tape: x (B, C, R, R), one sigma per sample. Returns the denoised batch;
    /// the F-space losses get F's output and c_* from the overload that returns them.
    /// </summary>
    public Variable Forward(Variable x, double[] sigma, Variable? classLabels = null, Variable? augmentLabels = null)
        => Forward(x, sigma, classLabels, augmentLabels, out _, out _);

    /// <inheritdoc cref="Forward(Variable, double[], Variable?, Variable?)"/>
    public Variable Forward(Variable x, double[] sigma, Variable? classLabels, Variable? augmentLabels, out Variable fOut, out PrecondCoefficients[] c)
    {
        int b = x.Shape[0];
        if (sigma.Length != b) throw new ArgumentException($"Precond: {sigma.Length} sigmas for a batch of {b}");
        var coef = sigma.Select(Coefficients).ToArray();
        c = coef;
        var dev = x.Device;
        Variable Col(Func<PrecondCoefficients, double> f) =>
            new(Tensor.FromArray(dev, coef.Select(v => (float)f(v)).ToArray(), b, 1, 1, 1));
        var cIn = Col(v => v.CIn);
        // A conditional network called without labels gets zero labels (NVlabs/edm's preconditioners
        // do the same), so its label layer still runs: SongUNet's map_label adds its bias.
        if (classLabels is null && Network.LabelDim > 0) classLabels = new Variable(Tensor.Zeros(dev, b, Network.LabelDim));
        var f = Network.Forward(Fn.Mul(x, cIn), coef.Select(v => v.CNoise).ToArray(), classLabels, augmentLabels);
        if (Kind == PrecondKind.Iddpm) f = Fn.Slice(f, 1, 0, ImgChannels); // the variance channels are not used by D
        fOut = f;
        var d = Fn.Mul(f, Col(v => v.COut));
        return Kind == PrecondKind.Edm ? Fn.Add(Fn.Mul(x, Col(v => v.CSkip)), d) : Fn.Add(x, d); // c_skip = 1 otherwise
    }

    /// <summary>Sampler interface: D(x; sigma) without recording, in eval mode, class labels from <see cref="SamplingLabels"/>.</summary>
    public Tensor Denoise(Tensor x, double[] sigma)
    {
        using var noGrad = Tape.NoGrad();
        using var scope = new TensorScope();
        bool was = Network.Module.Training;
        Network.Module.Eval();
        try
        {
            Variable? labels = null;
            if (Network.LabelDim > 0)
            {
                if (SamplingLabels is not null) labels = new Variable(Ops.Copy(SamplingLabels));
                else labels = new Variable(Tensor.Zeros(x.Device, x.Shape[0], Network.LabelDim));
            }
            Variable? aug = Network.AugmentDim > 0 ? new Variable(Tensor.Zeros(x.Device, x.Shape[0], Network.AugmentDim)) : null;
            var xv = new Variable(Ops.Copy(x));
            var d = Forward(xv, sigma, labels, aug).Value;
            if (_guidance != 1 && labels is not null)
            {
                // D_w = w D(labels) + (1 - w) D(zero labels)
                var uncond = Forward(xv, sigma, new Variable(Tensor.Zeros(x.Device, x.Shape[0], Network.LabelDim)), aug).Value;
                Ops.Map(d, d, new ScaleOp((float)_guidance), "Scale");
                Ops.Axpy((float)(1 - _guidance), uncond, d);
            }
            return scope.Escape(d);
        }
        finally { Network.Module.Train(was); }
    }

    /// <inheritdoc/>
    public void Dispose() => Network.Dispose();
}

// Basic layers as NVlabs/edm's training/networks.py defines them (Appendix F.4): Linear, Conv2d
// with optional FIR up/down resampling, GroupNorm (groups = min(G, C / min_channels_per_group)),
// positional and Fourier noise embeddings.
using Edm.Autograd;
using Edm.Kernels;
using Edm.Model.IO;

namespace Edm.Model.Modules;

/// <summary>y = x W^T + b; x (N, in), W (out, in), b (out).</summary>
public sealed class Linear : Module
{
    /// <summary>Weight (out, in).</summary>
    public Variable Weight { get; }
    /// <summary>Bias (out), or null.</summary>
    public Variable? Bias { get; }
    /// <summary>Input features.</summary>
    public int InFeatures { get; }
    /// <summary>Output features.</summary>
    public int OutFeatures { get; }

    /// <summary>Creates the layer, initialised as weight_init(mode, fan_in = in, fan_out = out) x spec multipliers.</summary>
    public Linear(InitContext ctx, int inFeatures, int outFeatures, bool bias = true, Init.Spec? init = null) : base(ctx.Device)
    {
        var s = init ?? new Init.Spec(Init.Mode.KaimingNormal);
        InFeatures = inFeatures; OutFeatures = outFeatures;
        Weight = RegisterParameter("weight", ctx.Draw([outFeatures, inFeatures], s.Mode, inFeatures, outFeatures, s.Weight));
        if (bias) Bias = RegisterParameter("bias", ctx.Draw([outFeatures], s.Mode, inFeatures, outFeatures, s.Bias));
    }

    /// <summary>x (N, in) -> (N, out).</summary>
    public Variable Forward(Variable x) => Fn.Linear(x, Weight, Bias);
}

/// <summary>
/// 2-D convolution, stride 1, same padding, optional bias, with optional 2x up- or downsampling by
/// a separable FIR filter (NVlabs/edm Conv2d; kernel 0 = resampling only).
/// </summary>
public sealed class Conv2d : Module
{
    /// <summary>Weight (out, in, k, k), or null for kernel 0.</summary>
    public Variable? Weight { get; }
    /// <summary>Bias (out), or null.</summary>
    public Variable? Bias { get; }
    /// <summary>Input channels.</summary>
    public int InChannels { get; }
    /// <summary>Output channels.</summary>
    public int OutChannels { get; }
    readonly Resample _mode;
    readonly float[] _filter;
    readonly bool _fused;

    /// <summary>Creates the layer; fan_in = in k^2, fan_out = out k^2.</summary>
    public Conv2d(InitContext ctx, int inChannels, int outChannels, int kernel, bool bias = true, bool up = false, bool down = false,
        float[]? resampleFilter = null, bool fusedResample = false, Init.Spec? init = null) : base(ctx.Device)
    {
        if (up && down) throw new ArgumentException("Conv2d: up and down cannot both be set");
        if (kernel < 0 || (kernel > 0 && kernel % 2 == 0))
            throw new ArgumentException($"Conv2d: kernel {kernel} is not supported; allowed: 0 (resampling only) or an odd size");
        var s = init ?? new Init.Spec(Init.Mode.KaimingNormal);
        InChannels = inChannels; OutChannels = outChannels;
        _mode = up ? Resample.Up : down ? Resample.Down : Resample.None;
        _filter = resampleFilter ?? [1, 1];
        _fused = fusedResample;
        if (kernel > 0)
        {
            int fanIn = inChannels * kernel * kernel, fanOut = outChannels * kernel * kernel;
            Weight = RegisterParameter("weight", ctx.Draw([outChannels, inChannels, kernel, kernel], s.Mode, fanIn, fanOut, s.Weight));
            if (bias) Bias = RegisterParameter("bias", ctx.Draw([outChannels], s.Mode, fanIn, fanOut, s.Bias));
        }
    }

    /// <summary>x (B, in, H, W) -> (B, out, H', W') with H' = 2H (up), H/2 (down) or H.</summary>
    public Variable Forward(Variable x) => Fn.ResampleConv2d(x, Weight, Bias, _mode, _filter, _fused);

    /// <summary>
    /// The 2-D resampling filter as NVlabs/edm keeps it in its `resample_filter` buffer, (1, 1, k, k):
    /// the outer product f f^T / (sum f)^2; null when the layer does not resample (edm keeps none then).
    /// We compute it from the 1-D filter instead of storing it; loading checks a file's copy against it.
    /// </summary>
    public HostTensor? ResampleFilterBuffer
    {
        get
        {
            if (_mode == Resample.None) return null;
            int k = _filter.Length;
            float sum = 0;
            foreach (float v in _filter) sum += v;
            var f2 = new float[k * k];
            for (int i = 0; i < k; i++)
                for (int j = 0; j < k; j++) f2[i * k + j] = _filter[i] * _filter[j] / (sum * sum);
            return new HostTensor([1, 1, k, k], f2);
        }
    }
}

/// <summary>Group normalisation with affine weight and bias (C); groups = min(numGroups, C / minChannelsPerGroup).</summary>
public sealed class GroupNorm : Module
{
    /// <summary>Scale (C), initialised to 1.</summary>
    public Variable Weight { get; }
    /// <summary>Shift (C), initialised to 0.</summary>
    public Variable Bias { get; }
    /// <summary>Number of groups used.</summary>
    public int Groups { get; }
    readonly float _eps;

    /// <summary>Creates the layer.</summary>
    public GroupNorm(InitContext ctx, int numChannels, int numGroups = 32, int minChannelsPerGroup = 4, double eps = 1e-5) : base(ctx.Device)
    {
        Groups = Math.Max(1, Math.Min(numGroups, numChannels / minChannelsPerGroup));
        _eps = (float)eps;
        var w = Tensor.Empty(ctx.Device, numChannels);
        Ops.Fill(w, 1);
        Weight = RegisterParameter("weight", w);
        Bias = RegisterParameter("bias", Tensor.Zeros(ctx.Device, numChannels));
    }

    /// <summary>x (B, C, H, W) -> same shape.</summary>
    public Variable Forward(Variable x) => Fn.GroupNorm(x, Groups, Weight, Bias, _eps);

    /// <summary>SiLU(norm(x)) as one op (<see cref="Fn.GroupNormSilu"/>); with <paramref name="addend"/> (N, C, 1, 1), SiLU(norm(x + addend)).</summary>
    public Variable ForwardSilu(Variable x, Variable? addend = null) => Fn.GroupNormSilu(x, Groups, Weight, Bias, _eps, addend);
}

/// <summary>
/// Positional embedding of noise labels (DDPM++, ADM): freqs_j = (1/maxPositions)^(j / (C/2 - endpoint)),
/// emb = [cos(x freqs), sin(x freqs)] (B, C). Computed on the host in double: labels need no gradient.
/// </summary>
public sealed class PositionalEmbedding(InitContext ctx, int numChannels, int maxPositions = 10000, bool endpoint = false) : Module(ctx.Device)
{
    /// <summary>Embedding width.</summary>
    public int NumChannels { get; } = numChannels;

    /// <summary>Noise labels (B) -> (B, C) constant variable.</summary>
    public Variable Forward(ReadOnlySpan<double> x)
    {
        int half = NumChannels / 2;
        var e = new float[x.Length * NumChannels];
        for (int b = 0; b < x.Length; b++)
            for (int j = 0; j < half; j++)
            {
                double f = Math.Pow(1.0 / maxPositions, (double)j / (half - (endpoint ? 1 : 0)));
                e[b * NumChannels + j] = (float)Math.Cos(x[b] * f);
                e[b * NumChannels + half + j] = (float)Math.Sin(x[b] * f);
            }
        return new Variable(Tensor.FromArray(Device, e, x.Length, NumChannels));
    }
}

/// <summary>Fourier embedding (NCSN++): freqs ~ N(0, scale^2) (a saved buffer); emb = [cos(2 pi x f), sin(2 pi x f)].</summary>
public sealed class FourierEmbedding : Module
{
    readonly Tensor _freqs; // (C/2)
    /// <summary>Embedding width.</summary>
    public int NumChannels { get; }

    /// <summary>Creates the embedding with random frequencies.</summary>
    public FourierEmbedding(InitContext ctx, int numChannels, double scale = 16) : base(ctx.Device)
    {
        NumChannels = numChannels;
        _freqs = RegisterBuffer("freqs", ctx.Normal([numChannels / 2], scale));
    }

    /// <summary>Noise labels (B) -> (B, C) constant variable.</summary>
    public Variable Forward(ReadOnlySpan<double> x)
    {
        int half = NumChannels / 2;
        var freqs = _freqs.ToArray(); // read each call: loading weights may replace the buffer's contents
        var e = new float[x.Length * NumChannels];
        for (int b = 0; b < x.Length; b++)
            for (int j = 0; j < half; j++)
            {
                double a = 2 * Math.PI * freqs[j] * x[b];
                e[b * NumChannels + j] = (float)Math.Cos(a);
                e[b * NumChannels + half + j] = (float)Math.Sin(a);
            }
        return new Variable(Tensor.FromArray(Device, e, x.Length, NumChannels));
    }
}

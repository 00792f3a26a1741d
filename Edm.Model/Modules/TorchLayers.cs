// PyTorch layers with PyTorch's parameter names, for networks ported from PyTorch (the FID
// Inception-v3): nn.Conv2d with any geometry ("weight", "bias") and nn.BatchNorm2d ("weight",
// "bias", buffers "running_mean", "running_var"; num_batches_tracked is not kept).
using Edm.Autograd;
using Edm.Kernels;

namespace Edm.Model.Modules;

/// <summary>nn.Conv2d: kernel (kh, kw), stride and padding per side, optional bias.</summary>
public sealed class TorchConv2d : Module
{
    /// <summary>Weight (out, in, kh, kw).</summary>
    public Variable Weight { get; }
    /// <summary>Bias (out), or null.</summary>
    public Variable? Bias { get; }
    /// <summary>Stride and padding.</summary>
    public Conv2dParams Geometry { get; }

    /// <summary>Creates the layer, weights drawn Kaiming-uniform (fan_in = in kh kw), bias zero.</summary>
    public TorchConv2d(InitContext ctx, int inChannels, int outChannels, int kh, int kw, Conv2dParams geometry, bool bias = false) : base(ctx.Device)
    {
        if (inChannels < 1 || outChannels < 1 || kh < 1 || kw < 1)
            throw new ArgumentException($"TorchConv2d: channels {inChannels} -> {outChannels} and kernel ({kh}, {kw}) must all be >= 1");
        Geometry = geometry;
        int fanIn = inChannels * kh * kw;
        Weight = RegisterParameter("weight", ctx.Draw([outChannels, inChannels, kh, kw], Init.Mode.KaimingUniform, fanIn, outChannels * kh * kw, 1));
        if (bias) Bias = RegisterParameter("bias", Tensor.Zeros(ctx.Device, outChannels));
    }

    /// <summary>x (B, in, H, W) -> (B, out, Ho, Wo).</summary>
    public Variable Forward(Variable x) => Fn.Conv2d(x, Weight, Bias, Geometry);
}

/// <summary>nn.BatchNorm2d (affine, tracking running statistics): batch statistics in training, running ones in eval.</summary>
public sealed class BatchNorm2d : Module
{
    /// <summary>Scale (C), initially 1.</summary>
    public Variable Weight { get; }
    /// <summary>Shift (C), initially 0.</summary>
    public Variable Bias { get; }
    /// <summary>Running mean (C), initially 0.</summary>
    public Tensor RunningMean { get; }
    /// <summary>Running variance (C), initially 1.</summary>
    public Tensor RunningVar { get; }
    /// <summary>Added to the variance.</summary>
    public float Eps { get; }
    /// <summary>Running-statistics update factor.</summary>
    public float Momentum { get; }

    /// <summary>Creates the layer with PyTorch's initial values.</summary>
    public BatchNorm2d(EdmDevice device, int channels, float eps = 1e-5f, float momentum = 0.1f) : base(device)
    {
        Eps = eps; Momentum = momentum;
        var one = Tensor.Empty(device, channels);
        Ops.Fill(one, 1f);
        Weight = RegisterParameter("weight", one);
        Bias = RegisterParameter("bias", Tensor.Zeros(device, channels));
        RunningMean = RegisterBuffer("running_mean", Tensor.Zeros(device, channels));
        var v = Tensor.Empty(device, channels);
        Ops.Fill(v, 1f);
        RunningVar = RegisterBuffer("running_var", v);
    }

    /// <summary>x (N, C, H, W) -> normalised, same shape.</summary>
    public Variable Forward(Variable x) => Fn.BatchNorm(x, Weight, Bias, RunningMean, RunningVar, Training, Momentum, Eps);
}

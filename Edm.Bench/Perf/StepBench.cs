// `kernels --op step_ddpmpp`: one training step of the paper's CIFAR-10 network without the
// optimizer: the DDPM++ preset (conditional, label_dim 10, no augmentation; 55,734,147
// parameters) under EDM preconditioning (Table 1), the EDM loss (section 6 of edm-reference.md:
// ln sigma ~ N(-1.2, 1.2^2), lambda(sigma) weighting, dropout 0.13 on) and the backward pass into
// every parameter gradient. Batch 8 on the CPU accelerator, 128 on a GPU, 2 with --quick.
// Everything a step allocates lives in a TensorScope, so each repetition starts from the same memory.
// FLOPs: the convolutions, linear layers and attention products of the forward, counted by walking
// the network's modules (StepFlops below; group norm, SiLU and the other elementwise work are not
// counted), times 3 for forward + backward (each weighted layer's backward computes the input and
// the weight gradient: twice its forward). Bytes: not estimated (0).
// Baseline: none in-process (NaN); the peer is PyTorch: bench/torch_baseline.py --ops step_ddpmpp
// times the same step with the same shape string, and `compare` joins the two JSON files.
using System.Text.RegularExpressions;
using Edm.Autograd;
using Edm.Kernels;
using Edm.Model;
using Edm.Model.Networks;
using Edm.Model.Nn;

namespace Edm.Bench.Perf;

/// <summary>Training-step bench (forward + EDM loss + backward) of the DDPM++ CIFAR-10 network.</summary>
public sealed class StepBench : IKernelBench
{
    /// <summary>Preset benched.</summary>
    public const string Preset = "ddpmpp-cifar10";
    /// <summary>Class-label dimension (CIFAR-10).</summary>
    public const int LabelDim = 10;

    /// <inheritdoc/>
    public IReadOnlyList<string> Ops { get; } = ["step_ddpmpp"];

    /// <summary>Batch size of the step: 2 with --quick, else 8 on the CPU accelerator and 128 on a GPU.</summary>
    public static int BatchFor(EdmDevice device, bool quick) => quick ? 2 : device.IsCpu ? 8 : 128;

    /// <summary>The row's shape string (mirrored by bench/torch_baseline.py).</summary>
    public static string ShapeString(int batch) => $"{Preset} {Shapes.Format([batch, 3, 32, 32])} label_dim {LabelDim}";

    /// <inheritdoc/>
    public IEnumerable<BenchCase> Cases(EdmDevice device, string op, bool quick)
    {
        if (op != "step_ddpmpp") yield break;
        int batch = BatchFor(device, quick);
        var net = Presets.Create(Preset, new InitContext(device, 0), labelDim: LabelDim);
        var precond = new Precond(net, PrecondKind.Edm);
        var y = new Variable(Tensor.Empty(device, batch, 3, 32, 32));          // (B, 3, 32, 32) in [-1, 1]
        Kernels.Ops.Uniform(y.Value, 1);
        using (var scaled = Kernels.Ops.AddScalar(Kernels.Ops.Scale(y.Value, 2), -1)) Kernels.Ops.CopyInto(scaled, y.Value);
        var oneHot = new float[batch * LabelDim];                              // (B, 10), class b mod 10
        for (int b = 0; b < batch; b++) oneHot[b * LabelDim + b % LabelDim] = 1;
        var labels = new Variable(Tensor.FromArray(device, oneHot, batch, LabelDim));
        var settings = new LossSettings();
        ulong step = 0;

        void Step()
        {
            net.Module.ZeroGrad();
            using var scope = new TensorScope();
            var loss = Losses.Compute(precond, y, labels, null, settings, seed: 7, stream: step++);
            loss.Backward();
        }

        long parameters = net.Module.ParameterCount();
        double flops = 3 * StepFlops.Forward(net.Module, batch);
        var resources = new Baselines.Disposables(precond, y, labels);
        yield return new BenchCase(op, ShapeString(batch), 0, flops, Step, "none", null, resources,
            $"images/s = {batch} x 1000 / ms; {parameters:N0} parameters; GFLOP/s from {flops / 1e9:F1} GFLOP per step " +
            "(3 x forward conv/linear/attention FLOPs)");
    }
}

/// <summary>
/// Analytic FLOP count of a U-Net forward pass (SongUNet / DhariwalUNet module naming): 2 x MACs of
/// every convolution, linear layer and attention product. A layer's resolution is read from its
/// module name ("enc.16x16_block0.conv0": 16x16), which is the output resolution of the block and
/// the resolution at which its convolutions run (resampling precedes the convolution).
/// </summary>
public static partial class StepFlops
{
    [GeneratedRegex(@"(\d+)x\1_")]
    private static partial Regex Resolution();

    /// <summary>Forward FLOPs of <paramref name="network"/> at batch <paramref name="batch"/>.</summary>
    public static double Forward(Module network, int batch)
    {
        double total = 0;
        foreach (var (name, m) in network.NamedModules())
        {
            var match = Resolution().Match(name);
            double pixels = match.Success ? Math.Pow(int.Parse(match.Groups[1].Value), 2) : 0;
            switch (m)
            {
                case Conv2d { Weight: not null } c:
                    if (!match.Success) throw new ArgumentException($"StepFlops: no resolution in the module name '{name}'");
                    var w = c.Weight.Shape;                                     // (out, in, k, k)
                    total += 2.0 * batch * pixels * w[0] * w[1] * w[2] * w[3];
                    break;
                case Linear l:
                    total += 2.0 * batch * l.InFeatures * l.OutFeatures;
                    break;
                case UNetBlock { NumHeads: > 0 } u:
                    // Q^T K and V P^T: 2 x N^2 x (C / heads) MACs per head, N = H W.
                    total += 4.0 * batch * pixels * pixels * u.OutChannels;
                    break;
            }
        }
        return total;
    }
}

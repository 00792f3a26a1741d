// `kernels --op step_ddpmpp_tiny` and `--op step_ddpmpp_tiny_fwd` (explicit-only rows, issue #15):
// the `ddpmpp-tiny` preset (16 channels, mult [1, 2], 1 block, attention at R/2, dropout 0,
// positional embedding; 188,769 parameters at every resolution) with 1 image channel,
// unconditional, under EDM preconditioning (Table 1).
//   step_ddpmpp_tiny:     one full training step: EDM loss (docs/formulas.md section 6), backward into
//                         every parameter gradient, then Edm.Autograd's Adam (0.9, 0.999, 1e-8, as
//                         Edm.Model/Training/Trainer.cs builds it, over flat parameter buffers) at lr 1e-3. Batch 32 at 16x16 and
//                         32x32. Trainer's NaN-to-number pass and EMA are not in the row (PyTorch's
//                         peer has neither).
//   step_ddpmpp_tiny_fwd: the sampler's forward pass, Precond.Denoise (no tape, eval mode), batch
//                         64 at 16x16 and 32x32, one sigma per image, log-spaced over [0.002, 80].
// --quick: one 8x8 row each at batch 2 (a smoke pass; bench/torch_baseline.py --quick mirrors it).
// FLOPs: StepFlops (conv, linear and attention products of the forward), x 3 for the step.
// Baselines: none in-process (NaN), except the forward rows with --onnx DIR, whose baseline is ONNX
// Runtime running the same network's exported D(x; sigma) on the same input (OnnxPeer.cs), so the
// ratio ours / ONNX Runtime comes from one run. PyTorch is the peer of both rows through `compare`:
// bench/torch_baseline.py --ops step_ddpmpp_tiny,step_ddpmpp_tiny_fwd writes the same op and shape.
using Edm.Autograd;
using Edm.Kernels;
using Edm.Model;
using Edm.Model.Modules;
using Edm.Model.Networks;

namespace Edm.Bench.Perf;

/// <summary>Training-step and forward benches of the tiny DDPM++ (1 channel, unconditional).</summary>
public sealed class TinyStepBench : IKernelBench
{
    /// <summary>Preset benched.</summary>
    public const string Preset = "ddpmpp-tiny";
    /// <summary>Training step op.</summary>
    public const string StepOp = "step_ddpmpp_tiny";
    /// <summary>Forward (sampling) op.</summary>
    public const string ForwardOp = "step_ddpmpp_tiny_fwd";
    /// <summary>Images per training step.</summary>
    public const int StepBatch = 32;
    /// <summary>Images per forward pass.</summary>
    public const int ForwardBatch = 64;
    /// <summary>Batch of both ops with --quick.</summary>
    public const int QuickBatch = 2;
    /// <summary>Adam's learning rate in the step.</summary>
    public const float Lr = 1e-3f;

    /// <inheritdoc/>
    public IReadOnlyList<string> Ops { get; } = [StepOp, ForwardOp];

    /// <inheritdoc/>
    /// <remarks>Seconds per row on the CPU: they run only when named (`kernels --op step_ddpmpp_tiny`).</remarks>
    public IReadOnlyList<string> ExplicitOps => Ops;

    /// <summary>Resolutions of the rows: 16 and 32, or 8 with --quick.</summary>
    public static int[] Resolutions(bool quick) => quick ? [8] : [16, 32];

    /// <summary>The row's shape string (mirrored by bench/torch_baseline.py's tiny_shape).</summary>
    public static string ShapeString(int batch, int resolution) => $"{Preset} {Shapes.Format([batch, 1, resolution, resolution])} label_dim 0";

    /// <inheritdoc/>
    public IEnumerable<BenchCase> Cases(EdmDevice device, string op, bool quick) => Cases(device, op, new BenchSettings(quick));

    /// <inheritdoc/>
    public IEnumerable<BenchCase> Cases(EdmDevice device, string op, BenchSettings settings)
    {
        foreach (int res in Resolutions(settings.Quick))
        {
            if (op == StepOp) yield return StepCase(device, res, settings.Quick ? QuickBatch : StepBatch);
            else if (op == ForwardOp) yield return ForwardCase(device, res, settings.Quick ? QuickBatch : ForwardBatch, settings.OnnxDir);
        }
    }

    /// <summary>The tiny network at <paramref name="resolution"/>, 1 channel, unconditional, seed 0.</summary>
    public static INetwork CreateNetwork(EdmDevice device, int resolution) =>
        Presets.Create(Preset, new InitContext(device, 0), resolution, channels: 1, labelDim: 0);

    static BenchCase StepCase(EdmDevice device, int res, int batch)
    {
        var step = new TinyTrainStep(device, res, batch);
        double flops = 3 * StepFlops.Forward(step.Network.Module, batch);
        return new BenchCase(StepOp, ShapeString(batch, res), 0, flops, step.Run, "none", null, step,
            $"images/s = {batch} x 1000 / ms; {step.Network.Module.ParameterCount():N0} parameters; forward + EDM loss + backward + Adam (lr {Lr}); " +
            $"GFLOP/s from {flops / 1e9:F2} GFLOP per step (3 x forward conv/linear/attention FLOPs)");
    }

    static BenchCase ForwardCase(EdmDevice device, int res, int batch, string? onnxDir)
    {
        var fwd = new TinyDenoise(device, res, batch);
        OnnxPeer? peer = null;
        try { peer = onnxDir is null ? null : new OnnxPeer(onnxDir, res, fwd.HostX, fwd.HostSigma); }
        catch { fwd.Dispose(); throw; }
        double flops = StepFlops.Forward(fwd.Network.Module, batch);
        string note = $"images/s = {batch} x 1000 / ms; {fwd.Network.Module.ParameterCount():N0} parameters; Precond.Denoise (no tape, eval); " +
                      $"{flops / 1e9:F2} GFLOP per pass; " +
                      (peer is null ? "PyTorch peer via compare; --onnx DIR adds ONNX Runtime"
                                    : $"baseline ONNX Runtime {OnnxPeer.Version} CPU EP, {peer.Threads} intra-op threads, all graph optimisations, {peer.Path}");
        return new BenchCase(ForwardOp, ShapeString(batch, res), 0, flops, fwd.Run, peer is null ? "none" : OnnxPeer.Name, peer is null ? null : peer.Run,
            new Baselines.Disposables(fwd, peer), note);
    }
}

/// <summary>
/// One training step of the tiny DDPM++ (see TinyStepBench's header), ready to repeat: each
/// <see cref="Run"/> zeroes the gradients, computes the EDM loss on a fixed batch (fresh sigma and
/// noise per step), backpropagates and takes an Adam step. Everything a step allocates lives in a
/// TensorScope.
/// </summary>
public sealed class TinyTrainStep : IDisposable
{
    readonly Precond _precond;
    readonly ParameterSet _set;           // parameters in flat buffers, as Trainer packs them
    readonly Adam _adam;
    readonly Variable _y;                 // (B, 1, R, R) in [-1, 1]
    readonly LossSettings _settings = new();
    ulong _stream;

    /// <summary>The raw network.</summary>
    public INetwork Network { get; }

    /// <summary>Builds the network (seed 0), Adam and a uniform random batch of <paramref name="batch"/> images.</summary>
    public TinyTrainStep(EdmDevice device, int resolution, int batch)
    {
        Network = TinyStepBench.CreateNetwork(device, resolution);
        Network.Module.Train();
        _precond = new Precond(Network, PrecondKind.Edm);
        _set = ParameterSet.Pack(Network.Module.Parameters());
        _adam = new Adam(_set, 0.9f, 0.999f, 1e-8f);
        _y = new Variable(Tensor.Empty(device, batch, 1, resolution, resolution));
        Kernels.Ops.Uniform(_y.Value, 1);
        using var doubled = Kernels.Ops.Scale(_y.Value, 2);
        using var scaled = Kernels.Ops.AddScalar(doubled, -1);
        Kernels.Ops.CopyInto(scaled, _y.Value);
    }

    /// <summary>One step; returns nothing (the loss stays on the device).</summary>
    public void Run()
    {
        _adam.ZeroGrad();
        using (var scope = new TensorScope())
            Losses.Compute(_precond, _y, null, null, _settings, seed: 7, stream: _stream++).Backward();
        _adam.Step(TinyStepBench.Lr);
    }

    /// <inheritdoc/>
    public void Dispose()
    {
        _adam.Dispose();
        _set.Dispose();
        _y.Value.Dispose();
        _precond.Dispose();
    }
}

/// <summary>
/// The tiny DDPM++'s sampling forward pass D(x; sigma) (Precond.Denoise: no tape, eval mode) on a
/// fixed batch: x = y + sigma n with y uniform in [-1, 1], n normal, sigma log-spaced over
/// [0.002, 80] across the batch. The host copies feed the ONNX Runtime peer the same input.
/// </summary>
public sealed class TinyDenoise : IDisposable
{
    readonly Precond _precond;
    readonly Tensor _x;                   // (B, 1, R, R)
    readonly double[] _sigma;             // (B)

    /// <summary>The raw network.</summary>
    public INetwork Network { get; }
    /// <summary>x on the host (B, 1, R, R).</summary>
    public float[] HostX { get; }
    /// <summary>sigma on the host (B).</summary>
    public float[] HostSigma { get; }

    /// <summary>Builds the network (seed 0) and the input batch.</summary>
    public TinyDenoise(EdmDevice device, int resolution, int batch)
    {
        Network = TinyStepBench.CreateNetwork(device, resolution);
        _precond = new Precond(Network, PrecondKind.Edm);
        _sigma = Enumerable.Range(0, batch)
            .Select(i => Math.Exp(Math.Log(0.002) + (Math.Log(80) - Math.Log(0.002)) * i / Math.Max(batch - 1, 1))).ToArray();
        HostSigma = _sigma.Select(s => (float)s).ToArray();
        var rng = new Random(1);
        int pixels = resolution * resolution;
        HostX = new float[batch * pixels];
        for (int i = 0; i < HostX.Length; i++)
        {
            double n = Math.Sqrt(-2 * Math.Log(1 - rng.NextDouble())) * Math.Cos(2 * Math.PI * rng.NextDouble());  // Box-Muller
            HostX[i] = (float)(2 * rng.NextDouble() - 1 + _sigma[i / pixels] * n);
        }
        _x = Tensor.FromArray(device, HostX, batch, 1, resolution, resolution);
    }

    /// <summary>One forward pass (the denoised batch is released at once).</summary>
    public void Run() => _precond.Denoise(_x, _sigma).Dispose();

    /// <inheritdoc/>
    public void Dispose()
    {
        _x.Dispose();
        _precond.Dispose();
    }
}

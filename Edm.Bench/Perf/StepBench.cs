// `kernels --op step_ddpmpp`: one training step of the paper's CIFAR-10 network without the
// optimizer: the DDPM++ preset (conditional, label_dim 10, no augmentation; 55,734,147
// parameters) under EDM preconditioning (Table 1), the EDM loss (section 6 of docs/formulas.md:
// ln sigma ~ N(-1.2, 1.2^2), lambda(sigma) weighting, dropout 0.13 on) and the backward pass into
// every parameter gradient. Batch 8 on the CPU accelerator (2 with --quick), 128 on a GPU (also with
// --quick: there a step takes seconds, and bench/gpu-check.sh --quick should still time the real batch).
// Everything a step allocates lives in a TensorScope, so each repetition starts from the same memory.
// FLOPs: the convolutions, linear layers and attention products of the forward, counted by walking
// the network's modules (StepFlops below; group norm, SiLU and the other elementwise work are not
// counted), times 3 for forward + backward (each weighted layer's backward computes the input and
// the weight gradient: twice its forward). Bytes: not estimated (0).
// Baseline: none in-process (NaN); the peer is PyTorch: bench/torch_baseline.py --ops step_ddpmpp
// times the same step with the same shape string, and `compare` joins the two JSON files.
// Parts (where the step's time goes; same batch): step_ddpmpp_conv runs the forward and backward
// kernels of every convolution of the network at its own shape once (resampling included; no input
// gradient for the first conv, as in the step), step_ddpmpp_groupnorm every group norm, and
// step_ddpmpp_attention every attention product (one head, (B, N, C) = (B, H W, C)), on random
// inputs; the step's remaining time is elementwise work, layout copies (concat, permute), linear
// layers, the tape and allocation.
using Edm.Autograd;
using Edm.Kernels;
using Edm.Model;
using Edm.Model.Networks;
using Edm.Model.Modules;

namespace Edm.Bench.Perf;

/// <summary>Training-step bench (forward + EDM loss + backward) of the DDPM++ CIFAR-10 network.</summary>
public sealed class StepBench : IKernelBench
{
    /// <summary>Preset benched.</summary>
    public const string Preset = "ddpmpp-cifar10";
    /// <summary>Class-label dimension (CIFAR-10).</summary>
    public const int LabelDim = 10;

    /// <inheritdoc/>
    public IReadOnlyList<string> Ops { get; } = ["step_ddpmpp", "step_ddpmpp_conv", "step_ddpmpp_groupnorm", "step_ddpmpp_attention"];

    /// <inheritdoc/>
    /// <remarks>Minutes per row on the CPU: they run only when named (`kernels --op step_ddpmpp`).</remarks>
    public IReadOnlyList<string> ExplicitOps => Ops;

    /// <summary>Batch size of the step: 128 on a GPU; on the CPU accelerator 8, or 2 with --quick.</summary>
    public static int BatchFor(EdmDevice device, bool quick) => !device.IsCpu ? 128 : quick ? 2 : 8;

    /// <summary>The row's shape string (mirrored by bench/torch_baseline.py).</summary>
    public static string ShapeString(int batch) => $"{Preset} {Shapes.Format([batch, 3, 32, 32])} label_dim {LabelDim}";

    /// <inheritdoc/>
    public IEnumerable<BenchCase> Cases(EdmDevice device, string op, bool quick)
    {
        if (op != "step_ddpmpp")
        {
            if (Ops.Contains(op)) yield return Part(device, op, BatchFor(device, quick));
            yield break;
        }
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

    /// <summary>One family's kernels (forward + backward) at every layer shape of the network.</summary>
    static BenchCase Part(EdmDevice device, string op, int batch)
    {
        var net = Presets.Create(Preset, new InitContext(device, 0), labelDim: LabelDim);
        var inputs = new Dictionary<string, Tensor>();
        Tensor Random(params int[] shape)                                  // one random tensor per distinct shape
        {
            string key = Shapes.Format(shape);
            if (!inputs.TryGetValue(key, out var t))
            {
                t = Tensor.Empty(device, shape);
                Kernels.Ops.Normal(t, (ulong)inputs.Count + 1);
                inputs[key] = t;
            }
            return t;
        }
        var work = new List<Action>();
        double flops = 0;
        foreach (var l in StepLayers.Of(net.Module))
        {
            if (op == "step_ddpmpp_conv" && l.Module is Conv2d { Weight: not null } c)
            {
                var w = c.Weight.Value;                                          // (out, in, k, k)
                var b = c.Bias?.Value;
                int k = w.Shape[2];
                var x = Random(batch, w.Shape[1], l.InRes, l.InRes);
                var dy = Random(batch, w.Shape[0], l.OutRes, l.OutRes);
                bool dataGrad = w.Shape[1] != 3;                                 // the image input needs no gradient
                flops += 2.0 * batch * w.Shape[0] * w.Shape[1] * k * k * l.OutRes * l.OutRes * (dataGrad ? 3 : 2);
                if (l.Mode == Resample.None)
                    work.Add(() =>
                    {
                        Kernels.Ops.Conv2d(x, w, b).Dispose();
                        if (dataGrad) Kernels.Ops.Conv2dBackwardData(dy, w).Dispose();
                        Kernels.Ops.Conv2dBackwardWeight(x, dy, k).Dispose();
                        Kernels.Ops.Conv2dBackwardBias(dy).Dispose();
                    });
                else
                    work.Add(() =>
                    {
                        Kernels.Ops.ResampleConv2d(x, w, b, l.Mode, [1, 1]).Dispose();
                        var g = Kernels.Ops.ResampleConv2dBackward(x, w, b is not null, dy, l.Mode, [1, 1]);
                        g.Dx.Dispose(); g.Dw?.Dispose(); g.Db?.Dispose();
                    });
            }
            else if (op == "step_ddpmpp_groupnorm" && l.Module is GroupNorm n)
            {
                var x = Random(batch, n.Weight.Shape[0], l.InRes, l.InRes);
                var w = n.Weight.Value;
                var b = n.Bias.Value;
                work.Add(() =>
                {
                    var o = Kernels.Ops.GroupNormForward(x, n.Groups, w, b, 1e-6f);
                    var g = Kernels.Ops.GroupNormBackward(x, x, o.Mean, o.Rstd, n.Groups, w);  // x doubles as the incoming gradient
                    o.Y.Dispose(); o.Mean.Dispose(); o.Rstd.Dispose(); g.Dx.Dispose(); g.DWeight.Dispose(); g.DBias.Dispose();
                });
            }
            else if (op == "step_ddpmpp_attention" && l.Module is UNetBlock { NumHeads: > 0 } u)
            {
                int tokens = l.OutRes * l.OutRes, ch = u.OutChannels / u.NumHeads;
                var q = Random(batch * u.NumHeads, tokens, ch);                  // q, k, v, dO share one random tensor
                flops += 3.5 * 4.0 * batch * u.NumHeads * tokens * (double)tokens * ch;
                work.Add(() =>
                {
                    var o = Kernels.Ops.AttentionForward(q, q, q);
                    var g = Kernels.Ops.AttentionBackward(q, q, q, o.O, o.Lse, q);
                    o.O.Dispose(); o.Lse.Dispose(); g.DQ.Dispose(); g.DK.Dispose(); g.DV.Dispose();
                });
            }
        }
        var resources = new Baselines.Disposables([net, .. inputs.Values]);
        return new BenchCase(op, ShapeString(batch), 0, flops, () => { foreach (var a in work) a(); }, "none", null, resources,
            $"{work.Count} layers, forward + backward once each; share of the step = ms / step_ddpmpp ms");
    }
}

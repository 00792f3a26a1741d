// The training loop (docs/formulas.md section 6; NVlabs/edm training/training_loop.py), step by step:
//   1. gradients accumulate over rounds of B_gpu images: loss_r * (B_gpu / B) per round, so the sum
//      of the rounds' gradients equals the gradient of the mean loss over the full batch B;
//   2. lr = lr_max * min(nimg / (lr_rampup_kimg * 1000), 1), with nimg counted BEFORE this step
//      (so the first step has lr 0 and only warms Adam's moments, as edm does);
//   3. non-finite gradients: nan -> 0, +-inf -> +-1e5; then one Adam step (0.9, 0.999, 1e-8);
//   4. EMA: h = min(halflife_kimg * 1000, nimg * rampup_ratio), beta = 0.5^(B / max(h, 1e-8)),
//      ema = beta ema + (1 - beta) param (nimg again before this step: the first step copies);
//   5. nimg += B.
// Determinism: the images of step s come from DataOrderSampler (a saved state), sigma and noise of
// round r from Philox keyed by (seed, stream s * rounds + r) (Losses.Compute), dropout from the
// network's DropoutRng (its counter is saved). A training state holds all of it, so a resumed run
// repeats the uninterrupted run's losses bit for bit on the CPU accelerator.
using System.Diagnostics;
using System.Globalization;
using System.Text.Json;
using System.Text.Json.Serialization;
using Edm.Autograd;
using Edm.Kernels;
using Edm.Model.Data;
using Edm.Model.IO;
using Edm.Model.Networks;

namespace Edm.Model.Training;

/// <summary>Training hyper-parameters (NVlabs/edm's defaults where they exist; lengths in thousands of images).</summary>
public sealed record TrainingOptions
{
    /// <summary>Network preset (Presets.All).</summary>
    public string Preset { get; init; } = "ddpmpp-tiny";
    /// <summary>Images per optimizer step B.</summary>
    public int Batch { get; init; } = 512;
    /// <summary>Images per forward/backward round (gradient accumulation when smaller than B); null = B.</summary>
    public int? BatchGpu { get; init; }
    /// <summary>Training length in kimg.</summary>
    public double Kimg { get; init; } = 200_000;
    /// <summary>Snapshot interval in kimg.</summary>
    public double SnapKimg { get; init; } = 500;
    /// <summary>Progress/statistics interval in kimg (0: a tenth of <see cref="SnapKimg"/>).</summary>
    public double TickKimg { get; init; }
    /// <summary>Peak learning rate (edm: 1e-3).</summary>
    public double Lr { get; init; } = 1e-3;
    /// <summary>Learning-rate ramp-up length in kimg (edm: 10,000).</summary>
    public double LrRampupKimg { get; init; } = 10_000;
    /// <summary>
    /// Linear learning-rate decay to 0 over the last this many kimg of the run (0: none, as edm).
    /// An addition to the paper's recipe, for the end of short CPU runs.
    /// </summary>
    public double LrDecayKimg { get; init; }
    /// <summary>EMA half-life in kimg (edm: 500).</summary>
    public double EmaHalflifeKimg { get; init; } = 500;
    /// <summary>EMA ramp-up ratio (edm: 0.05; 0 = none).</summary>
    public double EmaRampupRatio { get; init; } = 0.05;
    /// <summary>Dropout probability; null = the preset's.</summary>
    public double? Dropout { get; init; }
    /// <summary>Probability of training a sample without its class label (classifier-free guidance; needs Cond; 0 = off).</summary>
    public double LabelDropout { get; init; }
    /// <summary>Augmentation probability (needs an augmentation pipeline; 0 = off).</summary>
    public double Augment { get; init; }
    /// <summary>Seed of the initial weights, the data order, sigma/noise and dropout.</summary>
    public ulong Seed { get; init; }
    /// <summary>Loss.</summary>
    public LossKind Loss { get; init; } = LossKind.Edm;
    /// <summary>Preconditioning.</summary>
    public PrecondKind Precond { get; init; } = PrecondKind.Edm;
    /// <summary>Class-conditional training (needs a labelled dataset).</summary>
    public bool Cond { get; init; }
    /// <summary>Training resolution: the dataset's (null) or a divisor of it (box-filter downsampling).</summary>
    public int? Resolution { get; init; }
    /// <summary>
    /// Transfer learning (NVlabs/edm's --transfer): a network snapshot whose weights start the run,
    /// both the trained weights and the EMA; Adam, the counters and the data order start fresh.
    /// Null: weights drawn from <see cref="Seed"/>. A resumed run takes its weights from the state.
    /// </summary>
    public string? Transfer { get; init; }

    /// <summary>Images per round.</summary>
    [JsonIgnore] public int RoundBatch => BatchGpu ?? Batch;
    /// <summary>The tick interval actually used.</summary>
    [JsonIgnore] public double EffectiveTickKimg => TickKimg > 0 ? TickKimg : SnapKimg / 10;

    static readonly JsonSerializerOptions Json = new()
    {
        WriteIndented = true,
        PropertyNamingPolicy = JsonNamingPolicy.SnakeCaseLower,
        Converters = { new JsonStringEnumConverter(JsonNamingPolicy.SnakeCaseLower) },
    };

    /// <summary>The options as JSON (training_options.json).</summary>
    public string ToJson() => JsonSerializer.Serialize(this, Json);

    /// <summary>Options from <see cref="ToJson"/>'s output.</summary>
    public static TrainingOptions FromJson(string json) =>
        JsonSerializer.Deserialize<TrainingOptions>(json, Json) ?? throw new JsonException("training options are null");

    /// <summary>
    /// Checks the options against a dataset. A bad value is an <see cref="InvalidOptionException"/>
    /// naming the property (e.g. "Batch") and what is allowed.
    /// </summary>
    public void Validate(ImageDataset data)
    {
        static InvalidOptionException Bad(string option, string problem) => new(option, problem);
        var p = Presets.Get(Preset);
        if (Batch < 1) throw Bad(nameof(Batch), $"{Batch} must be >= 1");
        if (RoundBatch < 1 || RoundBatch > Batch || Batch % RoundBatch != 0)
            throw Bad(nameof(BatchGpu), $"{RoundBatch} must divide the batch size {Batch}");
        if (!(Kimg > 0) || double.IsInfinity(Kimg)) throw Bad(nameof(Kimg), $"{Kimg} must be > 0");
        if (!(SnapKimg > 0)) throw Bad(nameof(SnapKimg), $"{SnapKimg} must be > 0");
        if (TickKimg < 0) throw Bad(nameof(TickKimg), $"{TickKimg} must be >= 0");
        if (!(Lr > 0) || double.IsInfinity(Lr)) throw Bad(nameof(Lr), $"{Lr} must be > 0");
        if (!(LrRampupKimg >= 0)) throw Bad(nameof(LrRampupKimg), $"{LrRampupKimg} must be >= 0");
        if (!(LrDecayKimg >= 0 && LrDecayKimg <= Kimg)) throw Bad(nameof(LrDecayKimg), $"{LrDecayKimg} must lie in [0, the run's kimg {Kimg}]");
        if (!(EmaHalflifeKimg >= 0)) throw Bad(nameof(EmaHalflifeKimg), $"{EmaHalflifeKimg} must be >= 0");
        if (!(EmaRampupRatio >= 0)) throw Bad(nameof(EmaRampupRatio), $"{EmaRampupRatio} must be >= 0");
        if (Dropout is < 0 or >= 1) throw Bad(nameof(Dropout), $"{Dropout} must lie in [0, 1)");
        if (!(LabelDropout >= 0 && LabelDropout < 1)) throw Bad(nameof(LabelDropout), $"{LabelDropout} must lie in [0, 1)");
        if (LabelDropout > 0 && !Cond) throw Bad(nameof(LabelDropout), $"{LabelDropout} needs class-conditional training (--cond)");
        if (!(Augment >= 0 && Augment <= 1)) throw Bad(nameof(Augment), $"{Augment} must lie in [0, 1]");
        if (Loss is not (LossKind.Edm or LossKind.Vp or LossKind.Ve)) throw Bad(nameof(Loss), $"{Loss} is not supported in training; allowed: edm, vp, ve");
        if (Precond is not (PrecondKind.Edm or PrecondKind.Vp or PrecondKind.Ve)) throw Bad(nameof(Precond), $"{Precond} is not supported in training; allowed: edm, vp, ve");
        if (Cond && data.LabelDim == 0) throw Bad(nameof(Cond), $"needs a labelled dataset; '{data.Path}' has no dataset.json labels");
        int res = Resolution ?? data.Resolution;
        if ((long)RoundBatch * data.Channels * res * res > int.MaxValue)
            throw Bad(BatchGpu is null ? nameof(Batch) : nameof(BatchGpu), $"{RoundBatch} images of {data.Channels}x{res}x{res} per round exceed the {int.MaxValue:N0} elements of one tensor; " +
                "use a smaller batch, or gradient accumulation (a smaller images-per-round that divides the batch)");
        if (res < 1 || res > data.Resolution || data.Resolution % res != 0)
            throw Bad(nameof(Resolution), $"{res} must divide the dataset's resolution {data.Resolution}");
        if (!p.Resolutions.Contains(res))
            throw Bad(nameof(Preset), $"'{Preset}' does not support resolution {res} (dataset '{data.Path}' is {data.Resolution}x{data.Resolution}); " +
                $"allowed: {string.Join(", ", p.Resolutions)} (convert the dataset to one of them, or train at a divisor of its resolution)");
    }
}

/// <summary>The training loss became NaN or infinite; the run stopped without saving the step.</summary>
public sealed class TrainingDivergedException(string message) : Exception(message);

/// <summary>One tick's statistics (a line of stats.jsonl).</summary>
public sealed record TickStats(int Tick, long Step, double Kimg, double Loss, double ImagesPerSecond, double Seconds);

/// <summary>A training run: network, EMA, Adam, data order and counters (see the file header).</summary>
public sealed class Trainer : IDisposable
{
    readonly EdmDevice _device;
    readonly ImageDataset _data;
    readonly INetwork _net;
    readonly Precond _precond;
    readonly Adam _adam;
    readonly Variable[] _params;  // NamedParameters order
    readonly string[] _names;
    readonly ParameterSet _set;   // the parameters' values and gradients in flat buffers
    readonly FlatTensors _emaFlat; // EMA in the set's layout
    readonly IReadOnlyList<Tensor> _ema; // EMA of each parameter (views of _emaFlat)
    readonly DataOrderSampler _order;
    readonly LossSettings _loss;
    readonly AugmentPipe? _augment; // non-leaking augmentation (section 6), null when Augment = 0
    readonly int _rounds;

    // Statistics of the current tick (saved with the state so stats.jsonl resumes exactly).
    double _tickLossSum;
    long _tickSteps;

    /// <summary>The options.</summary>
    public TrainingOptions Options { get; private set; }
    /// <summary>The network's description (what snapshots record).</summary>
    public NetworkSpec Spec { get; }
    /// <summary>Optimizer steps done.</summary>
    public long Step { get; private set; }
    /// <summary>Images done.</summary>
    public long CurNimg { get; private set; }
    /// <summary>The preconditioned network (training weights).</summary>
    public Precond Precond => _precond;
    /// <summary>The EMA weights in NamedParameters order.</summary>
    public IReadOnlyList<Tensor> Ema => _ema;
    /// <summary>The dataset.</summary>
    public ImageDataset Data => _data;

    Trainer(EdmDevice device, ImageDataset data, TrainingOptions o)
    {
        o.Validate(data);
        _device = device;
        _data = data;
        Options = o;
        int res = o.Resolution ?? data.Resolution;
        Spec = new NetworkSpec(o.Preset, res, data.Channels, o.Cond ? data.LabelDim : 0, o.Augment > 0 ? 9 : 0,
            o.Dropout, o.Precond, 0.5, o.LabelDropout);
        _net = Spec.CreateNetwork(device, o.Seed);
        _net.Rng.Seed = o.Seed;
        _net.Rng.Counter = 0;
        _precond = new Precond(_net, o.Precond, Spec.SigmaData);
        var named = _net.Module.NamedParameters().ToArray();
        _params = named.Select(n => n.Param).ToArray();
        _names = named.Select(n => n.Name).ToArray();
        // Flat buffers: zeroing, nan_to_num, Adam and EMA are one launch each per step.
        _set = ParameterSet.Pack(_params);
        _adam = new Adam(_set, 0.9f, 0.999f, 1e-8f);
        _emaFlat = _set.CopyOfValues();  // edm: ema = deepcopy(net)
        _ema = _emaFlat.Views;
        _order = new DataOrderSampler(data.Count, o.Seed);
        _loss = new LossSettings { Kind = o.Loss };
        _augment = o.Augment > 0 ? new AugmentPipe(o.Augment) : null;
        _rounds = o.Batch / o.RoundBatch;
    }

    /// <summary>
    /// The learning rate of the step that starts after <paramref name="nimg"/> images: edm's ramp-up
    /// lr * min(nimg / rampup, 1), times the linear decay (kimg_end - nimg) / decay over the last
    /// <see cref="TrainingOptions.LrDecayKimg"/> kimg (docs/training.md).
    /// </summary>
    public static double LearningRate(TrainingOptions o, long nimg)
    {
        double lr = o.Lr * Math.Min(nimg / Math.Max(o.LrRampupKimg * 1000, 1e-8), 1);
        if (o.LrDecayKimg > 0) lr *= Math.Clamp((o.Kimg * 1000 - nimg) / (o.LrDecayKimg * 1000), 0, 1);
        return lr;
    }

    /// <summary>Starts a fresh run (from <see cref="TrainingOptions.Transfer"/>'s weights when given).</summary>
    public static Trainer Start(EdmDevice device, ImageDataset data, TrainingOptions options)
    {
        var t = new Trainer(device, data, options);
        if (options.Transfer is null) return t;
        try { t.LoadTransfer(options.Transfer); }
        catch
        {
            t.Dispose();
            throw;
        }
        return t;
    }

    /// <summary>
    /// Copies a snapshot's parameters and buffers into the network and its parameters into the EMA.
    /// The snapshot must describe the same network (preset, resolution, channels, labels, augment
    /// labels, preconditioning); dropout may differ.
    /// </summary>
    void LoadTransfer(string path)
    {
        var f = Checkpoints.Read(path, Checkpoints.SnapshotFormat);
        var spec = NetworkSpec.FromMetadata(f.Metadata, path);
        if (spec with { Dropout = Spec.Dropout, LabelDropout = Spec.LabelDropout } != Spec)
            throw new CheckpointException($"--transfer '{path}' is a snapshot of {spec}, but this run trains {Spec} " +
                "(preset, resolution, channels, label and augment dimensions and preconditioning must match; dropout may differ)");
        var expected = new HashSet<string>(StringComparer.Ordinal);
        for (int i = 0; i < _names.Length; i++)
        {
            Checkpoints.Fill(path, f, _names[i], _params[i].Value);
            Ops.CopyInto(_params[i].Value, _ema[i]);
            expected.Add(_names[i]);
        }
        foreach (var (name, b) in _net.Module.NamedBuffers()) { Checkpoints.Fill(path, f, name, b); expected.Add(name); }
        Checkpoints.RequireNoExtra(path, f, expected);
    }

    /// <summary>
    /// Resumes from a training state file. The run's options come from the state; <paramref name="adjust"/>
    /// may change the length, the end-of-run learning-rate decay, and the snapshot and tick intervals
    /// (anything else must stay as saved).
    /// </summary>
    public static Trainer Resume(EdmDevice device, ImageDataset data, string statePath, Func<TrainingOptions, TrainingOptions>? adjust = null)
    {
        var f = Checkpoints.Read(statePath, Checkpoints.StateFormat);
        var m = f.Metadata;
        TrainingOptions saved;
        try { saved = TrainingOptions.FromJson(TrainingCounters.Value(m, TrainingState.OptionsKey, statePath)); }
        catch (JsonException e) { throw new CheckpointException($"training state '{statePath}': its options are not valid JSON ({e.Message})", e); }
        var o = adjust?.Invoke(saved) ?? saved;
        if (o with { Kimg = saved.Kimg, LrDecayKimg = saved.LrDecayKimg, SnapKimg = saved.SnapKimg, TickKimg = saved.TickKimg } is var fixedPart && fixedPart != saved)
        {
            var changed = typeof(TrainingOptions).GetProperties().First(q => q.CanWrite && !Equals(q.GetValue(fixedPart), q.GetValue(saved)));
            throw new InvalidOptionException(changed.Name, $"{changed.GetValue(fixedPart) ?? "(default)"} differs from the resumed run's {changed.GetValue(saved) ?? "(default)"}; " +
                "only the training length, the learning-rate decay (--lr-decay), the snapshot and the tick intervals may change on resume");
        }
        var t = new Trainer(device, data, o);
        try
        {
            var spec = NetworkSpec.FromMetadata(m, statePath);
            if (spec != t.Spec)
                throw new CheckpointException($"training state '{statePath}' is for {spec}, but this dataset gives {t.Spec}");
            var expected = new HashSet<string>(StringComparer.Ordinal);
            foreach (var (name, dst) in t.StateTensors())
            {
                Checkpoints.Fill(statePath, f, name, dst);
                expected.Add(name);
            }
            Checkpoints.RequireNoExtra(statePath, f, expected);
            var c = TrainingCounters.Read(m, statePath);
            if (c.DatasetCount != data.Count)
                throw new CheckpointException($"training state '{statePath}' was trained on {c.DatasetCount} images, the dataset '{data.Path}' has {data.Count}");
            t.Step = c.Step;
            t.CurNimg = c.CurNimg;
            t._adam.RestoreStepCount(c.AdamStep);
            t._net.Rng.Counter = c.DropoutCounter;
            t._tickSteps = c.TickSteps;
            t._tickLossSum = c.TickLossSum;
            var state = new SamplerState(c.SamplerEpoch, c.SamplerPosition);
            t._order.Restore(state);
        }
        catch (FormatException e)
        {
            t.Dispose();
            throw new CheckpointException($"training state '{statePath}': malformed metadata ({e.Message})", e);
        }
        catch
        {
            t.Dispose();
            throw;
        }
        return t;
    }

    /// <summary>Every tensor of this run's training state, by its name in the state file.</summary>
    IEnumerable<(string Name, Tensor Tensor)> StateTensors() =>
        TrainingState.Tensors(_names, _params.Select(p => p.Value).ToArray(), _ema, _adam.FirstMoments, _adam.SecondMoments, _net.Module.NamedBuffers());

    /// <summary>Images of the given dataset indices at the training resolution, (B, C, R, R) on the host.</summary>
    float[] LoadImages(int[] idx)
    {
        var src = _data.ReadImages(idx);
        int f = _data.Resolution / Spec.Resolution;
        if (f == 1) return src;
        // Box-filter downsampling by f: each output pixel is the mean of an f x f block.
        int c = Spec.Channels, r = Spec.Resolution, rs = _data.Resolution;
        var dst = new float[idx.Length * c * r * r];
        float inv = 1f / (f * f);
        for (int p = 0; p < idx.Length * c; p++)
            for (int y = 0; y < r; y++)
                for (int x = 0; x < r; x++)
                {
                    float s = 0;
                    for (int dy = 0; dy < f; dy++)
                        for (int dx = 0; dx < f; dx++) s += src[(p * rs + y * f + dy) * rs + x * f + dx];
                    dst[(p * r + y) * r + x] = s * inv;
                }
        return dst;
    }

    /// <summary>
    /// Device memory one round of <see cref="TrainingOptions.RoundBatch"/> images needs, from a probe
    /// forward and backward pass of one zero image (peak bytes above what is in use, times the round
    /// size). The probe leaves the run's state as it was: gradients zeroed, dropout counter restored,
    /// no data drawn.
    /// </summary>
    public long EstimateRoundBytes()
    {
        int c = Spec.Channels, r = Spec.Resolution;
        ulong counter = _net.Rng.Counter;
        long before = _device.BytesInUse;
        _device.ResetPeak();
        using (var scope = new TensorScope())
        {
            var y = new Variable(Tensor.Zeros(_device, 1, c, r, r));
            Variable? labels = Spec.LabelDim > 0 ? new Variable(Tensor.Zeros(_device, 1, Spec.LabelDim)) : null;
            Variable? augLabels = Spec.AugmentDim > 0 ? new Variable(Tensor.Zeros(_device, 1, Spec.AugmentDim)) : null;
            Losses.Compute(_precond, y, labels, augLabels, _loss, Options.Seed, ulong.MaxValue).Backward();
        }
        long perImage = Math.Max(0, _device.PeakBytes - before);
        _adam.ZeroGrad();
        _net.Rng.Counter = counter;
        return perImage * Options.RoundBatch;
    }

    /// <summary>
    /// Throws <see cref="InvalidOptionException"/> when one round would not fit in the device's free
    /// memory (<see cref="EstimateRoundBytes"/> against what the device has left), before any step.
    /// </summary>
    public void RequireMemory()
    {
        long need = EstimateRoundBytes(), free = _device.MemorySize - _device.BytesInUse;
        if (need <= free * 0.9) return;
        var o = Options;
        double gib = 1024.0 * 1024 * 1024;
        throw new InvalidOptionException(o.BatchGpu is null ? nameof(TrainingOptions.Batch) : nameof(TrainingOptions.BatchGpu),
            $"{o.RoundBatch}: a round of {o.RoundBatch} images needs about {need / gib:F1} GiB (measured on one image), the device has {free / gib:F1} GiB free; " +
            $"pass --batch-gpu with a smaller divisor of the batch {o.Batch} (gradient accumulation keeps the batch)");
    }

    /// <summary>
    /// One optimizer step over a batch of <see cref="TrainingOptions.Batch"/> images (in rounds of
    /// <see cref="TrainingOptions.RoundBatch"/>). Returns the mean loss per pixel (edm's reported loss).
    /// </summary>
    public double TrainStep()
    {
        var o = Options;
        int b = o.RoundBatch, c = Spec.Channels, r = Spec.Resolution;
        _adam.ZeroGrad();
        _net.Module.Train();
        double lossSum = 0;
        for (int round = 0; round < _rounds; round++)
        {
            using var scope = new TensorScope();
            var idx = _order.Next(b);
            var y = new Variable(Tensor.FromArray(_device, LoadImages(idx), b, c, r, r));
            Variable? labels = Spec.LabelDim > 0 ? new Variable(_data.LabelBatch(_device, idx)!) : null;
            ulong stream = (ulong)Step * (ulong)_rounds + (ulong)round;
            Variable? augLabels = null;
            if (_augment is not null)
            {
                // Augmentation draws use their own key so they do not correlate with sigma and noise.
                var (img, lab) = _augment.Apply(y.Value, o.Seed ^ 0x5DEECE66DUL, stream);
                y = new Variable(img);
                augLabels = new Variable(lab);
            }
            var loss = Losses.Compute(_precond, y, labels, augLabels, _loss, o.Seed, stream);  // sum over pixels, mean over the round
            lossSum += loss.Value.Item();
            Fn.Scale(loss, (float)b / o.Batch).Backward();
        }
        double lr = LearningRate(o, CurNimg);
        Edm.Autograd.Training.NanToNumGrads(_set);
        _adam.Step((float)lr);
        double halflife = o.EmaHalflifeKimg * 1000;
        if (o.EmaRampupRatio > 0) halflife = Math.Min(halflife, CurNimg * o.EmaRampupRatio);
        double beta = Math.Pow(0.5, o.Batch / Math.Max(halflife, 1e-8));
        Ops.EmaUpdate([_emaFlat.Flat], [_set.Values], (float)beta);
        CurNimg += o.Batch;
        Step++;
        double mean = lossSum / _rounds / (c * r * r);
        _tickLossSum += mean;
        _tickSteps++;
        return mean;
    }

    /// <summary>Writes the EMA snapshot for the images done so far into <paramref name="dir"/>; returns its path.</summary>
    public string SaveSnapshot(string dir)
    {
        var path = Path.Combine(dir, Checkpoints.SnapshotName(CurNimg));
        Checkpoints.SaveSnapshot(path, _net, Spec, _ema, new Dictionary<string, string>
        {
            ["kimg"] = (CurNimg / 1000.0).ToString("R", CultureInfo.InvariantCulture),
            ["step"] = Step.ToString(CultureInfo.InvariantCulture),
        });
        return path;
    }

    /// <summary>Writes the full training state into <paramref name="dir"/>; returns its path.</summary>
    public string SaveState(string dir)
    {
        var path = Path.Combine(dir, Checkpoints.StateName(CurNimg));
        static HostTensor H(Tensor t) => new((int[])t.Shape.Clone(), t.ToArray());
        var tensors = StateTensors().Select(t => new KeyValuePair<string, HostTensor>(t.Name, H(t.Tensor))).ToList();
        var meta = Spec.ToMetadata();
        meta["format"] = Checkpoints.StateFormat;
        meta[TrainingState.OptionsKey] = Options.ToJson();
        new TrainingCounters(Step, CurNimg, _adam.StepCount, _net.Rng.Counter, _order.State.Epoch, _order.State.Position, _data.Count, _tickSteps, _tickLossSum)
            .WriteTo(meta);
        SafeTensors.Write(path, tensors, meta);
        return path;
    }

    /// <summary>
    /// Trains until <see cref="TrainingOptions.Kimg"/>: a progress line per tick to
    /// <paramref name="log"/> and a line in stats.jsonl, a snapshot + state + training_options.json
    /// every <see cref="TrainingOptions.SnapKimg"/> and at the end, all in <paramref name="outDir"/>.
    /// When <paramref name="cancel"/> is signalled the current step finishes, a checkpoint is written
    /// and the method returns false (true when the run reached its length). <paramref name="keepStates"/>
    /// &gt; 0 keeps only the newest that many training states. A NaN or infinite loss throws
    /// <see cref="TrainingDivergedException"/> before anything of that step is saved.
    /// </summary>
    public bool Run(string outDir, Action<string> log, CancellationToken cancel = default, int keepStates = 0)
    {
        var o = Options;
        long totalNimg = (long)Math.Ceiling(o.Kimg * 1000);
        long tickNimg = Math.Max(1, (long)Math.Round(o.EffectiveTickKimg * 1000));
        long snapNimg = Math.Max(1, (long)Math.Round(o.SnapKimg * 1000));
        var statsPath = Path.Combine(outDir, "stats.jsonl");
        TrimStats(statsPath);
        int tick = (int)(CurNimg / tickNimg);
        long nextTick = (CurNimg / tickNimg + 1) * tickNimg, nextSnap = (CurNimg / snapNimg + 1) * snapNimg;
        var clock = Stopwatch.StartNew();
        long startNimg = CurNimg;
        double tickStart = 0;
        long tickStartNimg = CurNimg;
        if (CurNimg >= totalNimg)
        {
            log($"nothing to train: the run has done kimg {CurNimg / 1000.0:F3} (step {Step}), not below the requested length {o.Kimg:F3}");
            return true;
        }
        log($"training {Spec.Preset} at {Spec.Resolution}x{Spec.Resolution}x{Spec.Channels} ({_net.Module.ParameterCount():N0} parameters) " +
            $"on {_data.Count} images, batch {o.Batch} ({_rounds} round(s) of {o.RoundBatch}), from kimg {CurNimg / 1000.0:F3} to {o.Kimg:F3}");
        while (CurNimg < totalNimg)
        {
            double loss = TrainStep();
            if (!double.IsFinite(loss))
                throw new TrainingDivergedException($"the loss diverged ({loss.ToString(CultureInfo.InvariantCulture)}) at step {Step} (kimg {CurNimg / 1000.0:F3}); " +
                    $"nothing of this step was saved and the last checkpoint in '{outDir}' is intact; lower the learning rate (now {o.Lr.ToString(CultureInfo.InvariantCulture)})");
            bool done = CurNimg >= totalNimg;
            bool stop = cancel.IsCancellationRequested;
            if (CurNimg >= nextTick || done)
            {
                double now = clock.Elapsed.TotalSeconds;
                double ips = (CurNimg - tickStartNimg) / Math.Max(now - tickStart, 1e-9);
                double overall = (CurNimg - startNimg) / Math.Max(now, 1e-9);
                var eta = TimeSpan.FromSeconds(Math.Round((totalNimg - CurNimg) / Math.Max(overall, 1e-9)));
                var stats = new TickStats(tick, Step, CurNimg / 1000.0, _tickLossSum / Math.Max(_tickSteps, 1), ips, now - tickStart);
                log(string.Create(CultureInfo.InvariantCulture,
                    $"tick {tick,-4} kimg {stats.Kimg,9:F3}  step {Step,-6} loss {stats.Loss,8:F4}  img/s {ips,7:F1}  eta {eta:hh\\:mm\\:ss}"));
                AppendStats(statsPath, stats);
                tick++;
                _tickLossSum = 0;
                _tickSteps = 0;
                tickStart = now;
                tickStartNimg = CurNimg;
                while (nextTick <= CurNimg) nextTick += tickNimg;
            }
            if (CurNimg >= nextSnap || done || stop)
            {
                SaveCheckpoint(outDir, log, keepStates);
                while (nextSnap <= CurNimg) nextSnap += snapNimg;
            }
            if (stop && !done)
            {
                log($"interrupted after step {Step} (kimg {CurNimg / 1000.0:F3}); the training state is saved");
                return false;
            }
        }
        return true;
    }

    /// <summary>
    /// Writes training_options.json (the options with the tick interval in use and the dataset path),
    /// the EMA snapshot and the training state (in that order); with <paramref name="keepStates"/> &gt; 0
    /// deletes all but the newest that many training states (snapshots are all kept).
    /// </summary>
    public void SaveCheckpoint(string outDir, Action<string> log, int keepStates = 0)
    {
        var json = System.Text.Json.Nodes.JsonNode.Parse(Options.ToJson())!.AsObject();
        json["tick_kimg"] = Options.EffectiveTickKimg;
        json["dataset"] = Path.GetFullPath(_data.Path);
        AtomicFile.WriteAllText(Path.Combine(outDir, "training_options.json"), json.ToJsonString(new JsonSerializerOptions { WriteIndented = true }) + "\n");
        var snap = SaveSnapshot(outDir);
        var state = SaveState(outDir);
        int pruned = 0;
        if (keepStates > 0)
            foreach (var old in Checkpoints.List(outDir, Checkpoints.StatePrefix).Skip(keepStates))
            {
                File.Delete(old);
                pruned++;
            }
        log($"saved {Path.GetFileName(snap)} and {Path.GetFileName(state)} (kimg {CurNimg / 1000.0:F3}, step {Step})" +
            (pruned > 0 ? $"; removed {pruned} older training state(s), keeping {keepStates}" : ""));
    }

    // A resumed run drops the stats lines written after its state (they will be written again).
    void TrimStats(string path)
    {
        if (!File.Exists(path)) return;
        var keep = new List<string>();
        foreach (var line in File.ReadAllLines(path))
        {
            try
            {
                using var doc = JsonDocument.Parse(line);
                if (doc.RootElement.GetProperty("step").GetInt64() <= Step) keep.Add(line);
            }
            catch (Exception e) when (e is JsonException or KeyNotFoundException or InvalidOperationException or FormatException) { }
        }
        AtomicFile.WriteAllText(path, keep.Count == 0 ? "" : string.Join("\n", keep) + "\n");
    }

    static readonly JsonSerializerOptions StatsJson = new() { PropertyNamingPolicy = JsonNamingPolicy.SnakeCaseLower };

    static void AppendStats(string path, TickStats s) =>
        File.AppendAllText(path, JsonSerializer.Serialize(s, StatsJson) + "\n");

    /// <inheritdoc/>
    public void Dispose()
    {
        _adam.Dispose();
        _emaFlat.Dispose();
        _set.Dispose();
        _precond.Dispose();
    }
}

// The layout of a training-state file (training-state-NNNNNN.safetensors), owned here and nowhere
// else: its tensor groups (weights "net.", EMA "ema.", Adam moments "adam_m." / "adam_v.", buffers
// "buffer."), and the counters and options in its metadata. Trainer writes and resumes through it;
// Checkpoints.CheckState checks a file against it.
using System.Globalization;
using Edm.Kernels;

namespace Edm.Model.Training;

/// <summary>The tensor names and metadata keys of a training state.</summary>
public static class TrainingState
{
    /// <summary>Prefix of the network weights.</summary>
    public const string Net = "net.";
    /// <summary>Prefix of the EMA weights.</summary>
    public const string Ema = "ema.";
    /// <summary>Prefix of Adam's first moments.</summary>
    public const string AdamM = "adam_m.";
    /// <summary>Prefix of Adam's second moments.</summary>
    public const string AdamV = "adam_v.";
    /// <summary>Prefix of the network's buffers.</summary>
    public const string Buffer = "buffer.";
    /// <summary>Metadata key of the run's options (TrainingOptions as JSON).</summary>
    public const string OptionsKey = "options";

    /// <summary>
    /// Every tensor of a state, by name: per parameter i its weights, EMA and both moments, then the
    /// buffers. <paramref name="names"/>[i] names <paramref name="weights"/>[i] and the others' i-th.
    /// </summary>
    public static IEnumerable<(string Name, Tensor Tensor)> Tensors(IReadOnlyList<string> names, IReadOnlyList<Tensor> weights,
        IReadOnlyList<Tensor> ema, IReadOnlyList<Tensor> adamM, IReadOnlyList<Tensor> adamV, IEnumerable<(string Name, Tensor Tensor)> buffers)
    {
        for (int i = 0; i < names.Count; i++)
        {
            yield return (Net + names[i], weights[i]);
            yield return (Ema + names[i], ema[i]);
            yield return (AdamM + names[i], adamM[i]);
            yield return (AdamV + names[i], adamV[i]);
        }
        foreach (var (name, b) in buffers) yield return (Buffer + name, b);
    }
}

/// <summary>The counters of a training run that an exact resume restores.</summary>
/// <param name="Step">Optimizer steps done.</param>
/// <param name="CurNimg">Training images shown.</param>
/// <param name="AdamStep">Adam's step count (bias correction).</param>
/// <param name="DropoutCounter">Philox counter of the dropout masks.</param>
/// <param name="SamplerEpoch">Data-order epoch.</param>
/// <param name="SamplerPosition">Position in the epoch's permutation.</param>
/// <param name="DatasetCount">Images in the dataset the run was trained on.</param>
/// <param name="TickSteps">Steps in the current progress tick.</param>
/// <param name="TickLossSum">Sum of the losses of the current tick.</param>
public sealed record TrainingCounters(long Step, long CurNimg, long AdamStep, ulong DropoutCounter, long SamplerEpoch, int SamplerPosition,
    long DatasetCount, long TickSteps, double TickLossSum)
{
    /// <summary>The integer metadata keys, in the order they are written.</summary>
    public static readonly string[] CountKeys = ["step", "cur_nimg", "adam_step", "dropout_counter", "sampler_epoch", "sampler_position", "dataset_count", "tick_steps"];

    /// <summary>Writes the counters into <paramref name="meta"/>.</summary>
    public void WriteTo(IDictionary<string, string> meta)
    {
        var inv = CultureInfo.InvariantCulture;
        long[] values = [Step, CurNimg, AdamStep, (long)DropoutCounter, SamplerEpoch, SamplerPosition, DatasetCount, TickSteps];
        for (int i = 0; i < CountKeys.Length; i++) meta[CountKeys[i]] = values[i].ToString(inv);
        meta["tick_loss_sum"] = TickLossSum.ToString("R", inv);
    }

    /// <summary>Reads the counters of the state file <paramref name="path"/>; throws <see cref="CheckpointException"/> naming a missing or malformed key.</summary>
    public static TrainingCounters Read(IReadOnlyDictionary<string, string> meta, string path)
    {
        var v = CountKeys.Select(k => Count(meta, k, path)).ToArray();
        string loss = Value(meta, "tick_loss_sum", path);
        if (!double.TryParse(loss, NumberStyles.Float, CultureInfo.InvariantCulture, out double tickLoss))
            throw new CheckpointException($"training state '{path}': metadata 'tick_loss_sum' = '{loss}' is not a number");
        if (v[5] > int.MaxValue) throw new CheckpointException($"training state '{path}': metadata 'sampler_position' = {v[5]} is out of range");
        return new TrainingCounters(v[0], v[1], v[2], (ulong)v[3], v[4], (int)v[5], v[6], v[7], tickLoss);
    }

    /// <summary>A metadata value; throws <see cref="CheckpointException"/> when it is missing.</summary>
    public static string Value(IReadOnlyDictionary<string, string> meta, string key, string path) =>
        meta.TryGetValue(key, out var v) ? v : throw new CheckpointException($"training state '{path}' has no '{key}' in its metadata");

    static long Count(IReadOnlyDictionary<string, string> meta, string key, string path) =>
        long.TryParse(Value(meta, key, path), NumberStyles.Integer, CultureInfo.InvariantCulture, out long v) && v >= 0 ? v
            : throw new CheckpointException($"training state '{path}': metadata '{key}' = '{meta[key]}' is not a count");
}

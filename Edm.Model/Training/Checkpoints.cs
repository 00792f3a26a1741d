// Checkpoint files of a training run, all float32 safetensors written atomically (AtomicFile):
//   network-snapshot-NNNNNN.safetensors  the EMA weights (parameter names from NamedParameters, then
//                                         buffers from NamedBuffers) with metadata that rebuilds the
//                                         network (NetworkSpec); what `generate` loads
//   training-state-NNNNNN.safetensors    everything an exact resume needs: weights ("net."), EMA
//                                         ("ema."), Adam moments ("adam_m.", "adam_v."), buffers
//                                         ("buffer."), and in the metadata the step, images done, Adam
//                                         step, dropout counter, data-order state and options
// NNNNNN is the number of thousands of images done, rounded down (NVlabs/edm's naming), so with
// fractional --snap two snapshots may share a name; the later one replaces the earlier atomically.
using System.Globalization;
using Edm.Kernels;
using Edm.Model.IO;
using Edm.Model.Networks;
using Edm.Model.Modules;

namespace Edm.Model.Training;

/// <summary>A checkpoint file is missing, corrupt or does not match the network it is loaded into.</summary>
public sealed class CheckpointException(string message, Exception? inner = null) : Exception(message, inner);

/// <summary>What rebuilds a network: preset, image shape, label dimensions, dropout (null: the preset's) and preconditioning.</summary>
public sealed record NetworkSpec(string Preset, int Resolution, int Channels, int LabelDim, int AugmentDim, double? Dropout,
    PrecondKind Precond, double SigmaData, double LabelDropout = 0)
{
    /// <summary>Builds the network (initial weights drawn with <paramref name="seed"/>).</summary>
    public INetwork CreateNetwork(EdmDevice device, ulong seed = 0) =>
        Presets.Create(Preset, new InitContext(device, seed), Resolution, Channels, LabelDim, AugmentDim, Dropout, labelDropout: LabelDropout);

    /// <summary>The metadata entries that describe this spec.</summary>
    public Dictionary<string, string> ToMetadata() => new(StringComparer.Ordinal)
    {
        ["preset"] = Preset,
        ["resolution"] = Resolution.ToString(CultureInfo.InvariantCulture),
        ["channels"] = Channels.ToString(CultureInfo.InvariantCulture),
        ["label_dim"] = LabelDim.ToString(CultureInfo.InvariantCulture),
        ["augment_dim"] = AugmentDim.ToString(CultureInfo.InvariantCulture),
        ["dropout"] = Dropout?.ToString("R", CultureInfo.InvariantCulture) ?? "preset",
        ["precond"] = Precond.ToString().ToLowerInvariant(),
        ["sigma_data"] = SigmaData.ToString("R", CultureInfo.InvariantCulture),
        ["label_dropout"] = LabelDropout.ToString("R", CultureInfo.InvariantCulture),
    };

    /// <summary>Reads a spec back from metadata; a missing or malformed entry throws naming the file.</summary>
    public static NetworkSpec FromMetadata(IReadOnlyDictionary<string, string> m, string path)
    {
        string Get(string key) => m.TryGetValue(key, out var v) ? v
            : throw new CheckpointException($"checkpoint '{path}' has no '{key}' in its metadata (not written by `train`?)");
        int Int(string key) => int.TryParse(Get(key), NumberStyles.Integer, CultureInfo.InvariantCulture, out int v) ? v
            : throw new CheckpointException($"checkpoint '{path}': metadata '{key}' = '{Get(key)}' is not an integer");
        double Dbl(string key) => double.TryParse(Get(key), NumberStyles.Float, CultureInfo.InvariantCulture, out double v) ? v
            : throw new CheckpointException($"checkpoint '{path}': metadata '{key}' = '{Get(key)}' is not a number");
        PrecondKind kind;
        try { kind = Model.Precond.Parse(Get("precond")); }
        catch (ArgumentException e) { throw new CheckpointException($"checkpoint '{path}': {e.Message}"); }
        double sigmaData = Dbl("sigma_data");
        if (!(sigmaData > 0) || double.IsInfinity(sigmaData))
            throw new CheckpointException($"checkpoint '{path}': metadata 'sigma_data' = '{Get("sigma_data")}'; it must be a positive finite number (corrupt file?)");
        // label_dropout was added later: snapshots without it trained with none.
        double labelDropout = m.ContainsKey("label_dropout") ? Dbl("label_dropout") : 0;
        return new NetworkSpec(Get("preset"), Int("resolution"), Int("channels"), Int("label_dim"), Int("augment_dim"), Get("dropout") == "preset" ? null : Dbl("dropout"),
            kind, sigmaData, labelDropout);
    }
}

/// <summary>Reads and writes network snapshots and training states (see the file header).</summary>
public static class Checkpoints
{
    /// <summary>Metadata "format" of a network snapshot.</summary>
    public const string SnapshotFormat = "edm-kernels-network-snapshot/1";
    /// <summary>Metadata "format" of a training state.</summary>
    public const string StateFormat = "edm-kernels-training-state/1";
    /// <summary>File name prefix of snapshots.</summary>
    public const string SnapshotPrefix = "network-snapshot-";
    /// <summary>File name prefix of training states.</summary>
    public const string StatePrefix = "training-state-";
    /// <summary>File name extension of both.</summary>
    public const string Extension = ".safetensors";

    /// <summary>"network-snapshot-NNNNNN.safetensors" for <paramref name="nimg"/> images done.</summary>
    public static string SnapshotName(long nimg) => $"{SnapshotPrefix}{nimg / 1000:D6}{Extension}";

    /// <summary>"training-state-NNNNNN.safetensors" for <paramref name="nimg"/> images done.</summary>
    public static string StateName(long nimg) => $"{StatePrefix}{nimg / 1000:D6}{Extension}";

    /// <summary>The files of one kind in <paramref name="dir"/>, newest (largest NNNNNN) first.</summary>
    public static string[] List(string dir, string prefix)
    {
        if (!Directory.Exists(dir)) return [];
        return Directory.GetFiles(dir, prefix + "*" + Extension)
            .Select(f => (File: f, Kimg: ParseKimg(Path.GetFileName(f), prefix)))
            .Where(x => x.Kimg >= 0)
            .OrderByDescending(x => x.Kimg)
            .Select(x => x.File)
            .ToArray();
    }

    static long ParseKimg(string name, string prefix)
    {
        var digits = name[prefix.Length..^Extension.Length];
        return digits.Length > 0 && digits.All(char.IsAsciiDigit) && long.TryParse(digits, out long k) ? k : -1;
    }

    /// <summary>Copies the tensors of a network (parameters then buffers, by name) to the host.</summary>
    public static IEnumerable<KeyValuePair<string, HostTensor>> NetworkTensors(INetwork net, IReadOnlyList<Tensor>? parameterValues = null)
    {
        var named = net.Module.NamedParameters().ToArray();
        for (int i = 0; i < named.Length; i++)
        {
            var t = parameterValues?[i] ?? named[i].Param.Value;
            yield return new(named[i].Name, new HostTensor((int[])t.Shape.Clone(), t.ToArray()));
        }
        foreach (var (name, b) in net.Module.NamedBuffers())
            yield return new(name, new HostTensor((int[])b.Shape.Clone(), b.ToArray()));
    }

    /// <summary>
    /// Writes a network snapshot: <paramref name="parameterValues"/> (e.g. the EMA weights, in
    /// NamedParameters order; null: the network's own) and the network's buffers, with the spec and
    /// <paramref name="extra"/> in the metadata.
    /// </summary>
    public static void SaveSnapshot(string path, INetwork net, NetworkSpec spec, IReadOnlyList<Tensor>? parameterValues,
        IReadOnlyDictionary<string, string>? extra = null)
    {
        var meta = spec.ToMetadata();
        meta["format"] = SnapshotFormat;
        if (extra is not null) foreach (var (k, v) in extra) meta[k] = v;
        SafeTensors.Write(path, NetworkTensors(net, parameterValues).ToList(), meta);
    }

    /// <summary>Reads a checkpoint file, turning every read problem into a <see cref="CheckpointException"/> that names the file.</summary>
    public static SafeTensorsFile Read(string path, string format)
    {
        SafeTensorsFile f;
        try { f = SafeTensors.Read(path); }
        catch (FileNotFoundException) { throw new CheckpointException(Directory.Exists(path) ? $"checkpoint '{path}' is a folder; give the path of a .safetensors file" : $"checkpoint '{path}' does not exist"); }
        catch (SafeTensorsException e) { throw new CheckpointException($"{e.Message}; the file is corrupt or truncated", e); }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            throw new CheckpointException($"cannot read checkpoint '{path}': {e.Message}", e);
        }
        if (!f.Metadata.TryGetValue("format", out var got) || got != format)
            throw new CheckpointException($"'{path}' is not a {(format == SnapshotFormat ? "network snapshot" : "training state")} " +
                $"(metadata format '{got ?? "(none)"}', expected '{format}')");
        return f;
    }

    /// <summary>
    /// Loads a network snapshot: rebuilds the network from its metadata and copies every parameter
    /// and buffer in (names and shapes must match exactly).
    /// </summary>
    public static (INetwork Network, NetworkSpec Spec, IReadOnlyDictionary<string, string> Metadata) LoadSnapshot(EdmDevice device, string path)
    {
        var f = Read(path, SnapshotFormat);
        var spec = NetworkSpec.FromMetadata(f.Metadata, path);
        INetwork net;
        try { net = spec.CreateNetwork(device); }
        catch (ArgumentException e) { throw new CheckpointException($"checkpoint '{path}' describes a network that cannot be built: {e.Message}", e); }
        try
        {
            var expected = new HashSet<string>(StringComparer.Ordinal);
            foreach (var (name, p) in net.Module.NamedParameters()) { Fill(path, f, name, p.Value); expected.Add(name); }
            foreach (var (name, b) in net.Module.NamedBuffers()) { Fill(path, f, name, b); expected.Add(name); }
            RequireNoExtra(path, f, expected);
        }
        catch
        {
            net.Dispose();
            throw;
        }
        return (net, spec, f.Metadata);
    }

    /// <summary>Copies tensor <paramref name="name"/> of <paramref name="f"/> into <paramref name="dst"/>, checking its shape.</summary>
    public static void Fill(string path, SafeTensorsFile f, string name, Tensor dst)
    {
        if (!f.Tensors.TryGetValue(name, out var t))
            throw new CheckpointException($"checkpoint '{path}' has no tensor '{name}' (written for a different network?)");
        if (!Shapes.Equal(t.Shape, dst.Shape))
            throw new CheckpointException($"checkpoint '{path}': tensor '{name}' has shape {Shapes.Format(t.Shape)}, the network needs {dst.ShapeString}");
        // Training never stores NaN or infinity (gradients go through nan_to_num): such a value is corruption.
        int bad = Array.FindIndex(t.Data, v => !float.IsFinite(v));
        if (bad >= 0)
            throw new CheckpointException($"checkpoint '{path}': tensor '{name}' holds a non-finite value ({t.Data[bad]} at element {bad}); the file is corrupt");
        dst.CopyFrom(t.Data);
    }

    /// <summary>Throws if <paramref name="f"/> holds tensors outside <paramref name="expected"/>.</summary>
    public static void RequireNoExtra(string path, SafeTensorsFile f, IReadOnlySet<string> expected)
    {
        var extra = f.Tensors.Keys.FirstOrDefault(k => !expected.Contains(k));
        if (extra is not null)
            throw new CheckpointException($"checkpoint '{path}' has a tensor '{extra}' that the network does not have (written for a different network?)");
    }

    /// <summary>
    /// Checks a training state without a dataset: readable, the network it describes can be built,
    /// and every weight, EMA, Adam-moment and buffer tensor is present with the right shape, nothing
    /// extra, and the counters parse. Returns "step S, kimg K". Throws <see cref="CheckpointException"/>.
    /// </summary>
    public static string CheckState(EdmDevice device, string path)
    {
        var f = Read(path, StateFormat);
        var spec = NetworkSpec.FromMetadata(f.Metadata, path);
        INetwork net;
        try { net = spec.CreateNetwork(device); }
        catch (ArgumentException e) { throw new CheckpointException($"training state '{path}' describes a network that cannot be built: {e.Message}", e); }
        using (net)
        {
            var named = net.Module.NamedParameters().ToList();
            var names = named.Select(n => n.Name).ToArray();
            var weights = named.Select(n => n.Param.Value).ToArray();  // every group has the weights' shapes
            var expected = new HashSet<string>(StringComparer.Ordinal);
            foreach (var (name, t) in TrainingState.Tensors(names, weights, weights, weights, weights, net.Module.NamedBuffers()))
            {
                Fill(path, f, name, t);
                expected.Add(name);
            }
            RequireNoExtra(path, f, expected);
        }
        TrainingCounters.Read(f.Metadata, path);
        long nimg = long.Parse(f.Metadata["cur_nimg"], CultureInfo.InvariantCulture);
        return $"step {f.Metadata["step"]}, kimg {nimg / 1000.0:F3}";
    }
}

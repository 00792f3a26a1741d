// Network weights as safetensors with PyTorch-style names: every parameter (NamedParameters) and
// buffer (NamedBuffers, e.g. map_noise.freqs) under the path NVlabs/edm's modules would give it.
// Written atomically (SafeTensors.Write goes through AtomicFile). Loading checks the file holds
// exactly the network's tensors with the right shapes, naming the first that is missing, extra or
// mis-shaped. Loading from a path reads safetensors, PyTorch .pth/.pt (zip or legacy) and
// NVlabs/edm .pkl files alike (chosen by content); edm's names under its preconditioner ("model.")
// are found too. edm's Conv2d keeps its 2-D resampling filter as a buffer `resample_filter`, which
// our layer computes from the 1-D filter instead: such a tensor is accepted when it equals ours.
using Edm.Kernels;
using Edm.Model.Modules;

namespace Edm.Model.IO;

/// <summary>Saves and loads a module's parameters and buffers.</summary>
public static class Weights
{
    /// <summary>The module's tensors, copied to the host, in registration order.</summary>
    public static OrderedDictionary<string, HostTensor> ToHost(Module m, string prefix = "")
    {
        var d = new OrderedDictionary<string, HostTensor>();
        foreach (var (n, p) in m.NamedParameters(prefix)) d.Add(n, new HostTensor((int[])p.Value.Shape.Clone(), p.Value.ToArray()));
        foreach (var (n, b) in m.NamedBuffers(prefix)) d.Add(n, new HostTensor((int[])b.Shape.Clone(), b.ToArray()));
        return d;
    }

    /// <summary>Writes the module's tensors to <paramref name="path"/> atomically, with metadata.</summary>
    public static void Save(Module m, string path, IReadOnlyDictionary<string, string>? metadata = null) =>
        SafeTensors.Write(path, ToHost(m), metadata is null ? null : new Dictionary<string, string>(metadata));

    /// <summary>
    /// Copies tensors into the module. Every parameter and buffer must be present with its exact
    /// shape and no extra tensor may be present (with <paramref name="prefix"/>, only names under it count).
    /// </summary>
    public static void Load(Module m, IReadOnlyDictionary<string, HostTensor> tensors, string source, string prefix = "")
    {
        var targets = m.NamedParameters(prefix).Select(p => (p.Name, T: p.Param.Value))
            .Concat(m.NamedBuffers(prefix).Select(b => (b.Name, T: b.Buffer))).ToList();
        foreach (var (name, t) in targets)
        {
            if (!tensors.TryGetValue(name, out var h))
                throw new SafeTensorsException($"{source}: tensor '{name}' {Shapes.Format(t.Shape)} is missing");
            if (!Shapes.Equal(h.Shape, t.Shape))
                throw new SafeTensorsException($"{source}: tensor '{name}' has shape {Shapes.Format(h.Shape)}, the network expects {Shapes.Format(t.Shape)}");
        }
        var expected = targets.Select(t => t.Name).ToHashSet();
        var filters = m.NamedModules(prefix).Where(x => x.Module is Conv2d { ResampleFilterBuffer: not null })
            .ToDictionary(x => x.Name + ".resample_filter", x => ((Conv2d)x.Module).ResampleFilterBuffer!);
        foreach (var (name, ours) in filters)
            if (tensors.TryGetValue(name, out var theirs))
            {
                CheckFilter(name, theirs, ours, source);
                expected.Add(name);
            }
        var extra = tensors.Keys.Where(k => k.StartsWith(prefix, StringComparison.Ordinal) && !expected.Contains(k)).ToList();
        if (extra.Count > 0)
            throw new SafeTensorsException($"{source}: unexpected tensor '{extra[0]}'{(extra.Count > 1 ? $" (and {extra.Count - 1} more)" : "")}; the network has no such parameter");
        foreach (var (name, t) in targets) t.CopyFrom(tensors[name].Data);
    }

    static void CheckFilter(string name, HostTensor theirs, HostTensor ours, string source)
    {
        bool same = Shapes.Equal(theirs.Shape, ours.Shape)
                    && theirs.Data.Zip(ours.Data).All(p => Math.Abs(p.First - p.Second) <= 1e-6f * Math.Max(1f, Math.Abs(p.Second)));
        if (!same)
            throw new SafeTensorsException($"{source}: tensor '{name}' {Shapes.Format(theirs.Shape)} is not the resampling filter this layer uses " +
                                           $"{Shapes.Format(ours.Shape)} [{string.Join(", ", ours.Data.Take(4).Select(v => v.ToString("G4")))}...]; " +
                                           "the file was made with another resample_filter");
    }

    /// <summary>
    /// Reads <paramref name="path"/> (safetensors, PyTorch .pth/.pt or NVlabs/edm .pkl, by content) and
    /// loads it into the module; returns the file's metadata (safetensors only; empty otherwise).
    /// Names may carry NVlabs/edm's preconditioner prefix "model.". Problems are
    /// <see cref="SafeTensorsException"/>s or <see cref="PickleException"/>s naming the file.
    /// </summary>
    public static Dictionary<string, string> Load(Module m, string path)
    {
        OrderedDictionary<string, HostTensor> tensors;
        Dictionary<string, string> metadata = new();
        if (NetworkFiles.IsSafeTensors(path))
        {
            var f = SafeTensors.Read(path);
            (tensors, metadata) = (f.Tensors, f.Metadata);
        }
        else tensors = TorchFile.Read(path).Tensors();
        Load(m, tensors, path, PrefixOf(m, tensors));
        return metadata;
    }

    // "" when the file names the module's tensors as the module does, "model." when under edm's preconditioner.
    static string PrefixOf(Module m, IReadOnlyDictionary<string, HostTensor> tensors)
    {
        var first = m.NamedParameters().Select(p => p.Name).FirstOrDefault();
        return first is not null && !tensors.ContainsKey(first) && tensors.ContainsKey("model." + first) ? "model." : "";
    }
}

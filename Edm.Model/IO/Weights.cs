// Network weights as safetensors with PyTorch-style names: every parameter (NamedParameters) and
// buffer (NamedBuffers, e.g. map_noise.freqs) under the path NVlabs/edm's modules would give it.
// Written atomically (SafeTensors.Write goes through AtomicFile). Loading checks the file holds
// exactly the network's tensors with the right shapes, naming the first that is missing, extra or
// mis-shaped.
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
        var extra = tensors.Keys.Where(k => k.StartsWith(prefix, StringComparison.Ordinal) && !expected.Contains(k)).ToList();
        if (extra.Count > 0)
            throw new SafeTensorsException($"{source}: unexpected tensor '{extra[0]}'{(extra.Count > 1 ? $" (and {extra.Count - 1} more)" : "")}; the network has no such parameter");
        foreach (var (name, t) in targets) t.CopyFrom(tensors[name].Data);
    }

    /// <summary>Reads <paramref name="path"/> and loads it into the module; returns the file's metadata.</summary>
    public static Dictionary<string, string> Load(Module m, string path)
    {
        var f = SafeTensors.Read(path);
        Load(m, f.Tensors, path);
        return f.Metadata;
    }
}

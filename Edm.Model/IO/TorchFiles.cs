// PyTorch and NVlabs/edm files, read natively (no Python) through the data-only Unpickler:
//
// - torch.save's zip format (.pth/.pt, PyTorch >= 1.6): a zip whose one folder PREFIX/ holds
//   data.pkl (the object; each storage a persistent id ('storage', torch.FloatStorage, KEY, location,
//   numel)), data/KEY (each storage's raw little-endian bytes), version, and byteorder (newer torch).
// - torch.save's legacy format (_use_new_zipfile_serialization=False): five pickles back to back
//   (magic number 0x1950a86a20f9469cfc6c, protocol version 1001, sys info, the object, the sorted list
//   of storage keys), then for each key an 8-byte little-endian element count and the raw bytes.
//   The object's persistent ids are ('storage', type, KEY, location, numel, view_metadata).
// - a plain pickle, as NVlabs/edm's training loop writes its network-snapshot-*.pkl: pickle.dump of
//   {'ema': network, 'loss_fn': ..., 'augment_pipe': ..., 'dataset_kwargs': {...}}. Every tensor is
//   torch._utils._rebuild_tensor_v2(storage, offset, size, stride, ...) and every storage
//   torch.storage._load_from_bytes(b'...') with a legacy-format file inside. edm's networks are
//   "persistent" objects: torch_utils.persistence._reconstruct_persistent_obj(meta) with meta =
//   {type: 'class', version, module_src (the module's source, ignored here: never run), class_name,
//   state (the module's __dict__)}; the state holds _init_kwargs (the constructor's keyword
//   arguments) and the torch.nn.Module fields _parameters, _buffers and _modules.
// Everything is data: globals are accepted only from the list in IsAllowed, and the only calls
// answered are the tensor and storage rebuild functions below.
using System.Buffers.Binary;
using System.IO.Compression;
using System.Numerics;
using System.Text;
using Edm.Kernels;

namespace Edm.Model.IO;

/// <summary>A torch storage: element type and raw little-endian bytes.</summary>
public sealed class TorchStorage(string dtype, int elementSize, long numel)
{
    /// <summary>Element type (torch name: float32, float64, float16, bfloat16, int64, ...).</summary>
    public string DType { get; } = dtype;
    /// <summary>Bytes per element.</summary>
    public int ElementSize { get; } = elementSize;
    /// <summary>Number of elements.</summary>
    public long Numel { get; } = numel;
    /// <summary>The bytes (null until read, for the legacy format's trailing data).</summary>
    public byte[]? Data { get; set; }
}

/// <summary>A strided view of a <see cref="TorchStorage"/>, as torch._utils._rebuild_tensor_v2 describes it.</summary>
public sealed record TorchTensor(TorchStorage Storage, long Offset, int[] Shape, long[] Stride)
{
    /// <summary>The tensor as contiguous float32 (floats and integers converted); checks it lies inside its storage.</summary>
    public HostTensor ToHost(string name)
    {
        var data = Storage.Data ?? throw new PickleException($"tensor '{name}': its storage was never read (truncated file?)");
        long count = HostTensor.Count(Shape);
        if (count > int.MaxValue) throw new PickleException($"tensor '{name}' has {count} elements; at most {int.MaxValue} are supported");
        long last = Offset;
        for (int d = 0; d < Shape.Length; d++)
        {
            if (Shape[d] < 0 || Stride[d] < 0) throw new PickleException($"tensor '{name}' has a negative size or stride");
            if (Shape[d] > 0) last += (Shape[d] - 1) * Stride[d];
        }
        if (count > 0 && (Offset < 0 || last >= Storage.Numel || (last + 1) * Storage.ElementSize > data.Length))
            throw new PickleException($"tensor '{name}' {Shapes.Format(Shape)} reaches element {last} of a storage of {Storage.Numel} ({data.Length} bytes read; truncated file?)");
        var result = new float[count];
        var index = new int[Shape.Length];
        for (long i = 0; i < count; i++)
        {
            long e = Offset;
            for (int d = 0; d < Shape.Length; d++) e += index[d] * Stride[d];
            result[i] = Element(data, e);
            for (int d = Shape.Length - 1; d >= 0 && ++index[d] == Shape[d]; d--) index[d] = 0;
        }
        return new HostTensor((int[])Shape.Clone(), result);
    }

    float Element(byte[] b, long e)
    {
        var s = b.AsSpan((int)(e * Storage.ElementSize), Storage.ElementSize);
        return Storage.DType switch
        {
            "float32" => BinaryPrimitives.ReadSingleLittleEndian(s),
            "float64" => (float)BinaryPrimitives.ReadDoubleLittleEndian(s),
            "float16" => (float)BinaryPrimitives.ReadHalfLittleEndian(s),
            "bfloat16" => BitConverter.Int32BitsToSingle(BinaryPrimitives.ReadUInt16LittleEndian(s) << 16),
            "int64" => BinaryPrimitives.ReadInt64LittleEndian(s),
            "int32" => BinaryPrimitives.ReadInt32LittleEndian(s),
            "int16" => BinaryPrimitives.ReadInt16LittleEndian(s),
            "int8" => (sbyte)s[0],
            "uint8" or "bool" => s[0],
            _ => throw new PickleException($"tensor of type {Storage.DType} is not supported"),
        };
    }
}

/// <summary>An object of one of NVlabs/edm's persistent classes: its class name and state (the module's attributes).</summary>
public sealed record PersistentObject(string ClassName, PyDict State)
{
    /// <summary>The constructor's keyword arguments (_init_kwargs), empty when absent.</summary>
    public PyDict InitKwargs => State.Get("_init_kwargs") switch
    {
        PyDict d => d,
        PyObject { DictItems: { } d } => d,                  // a dnnlib.EasyDict
        _ => new PyDict(),
    };

    /// <summary>The constructor's positional arguments (_init_args), empty when absent.</summary>
    public object?[] InitArgs => State.Get("_init_args") as object?[] ?? [];
}

/// <summary>The object a torch or pickle file holds, with how it was stored.</summary>
/// <param name="Path">The file.</param>
/// <param name="Format">"torch zip", "torch legacy" or "pickle".</param>
/// <param name="Root">The unpickled object.</param>
public sealed record TorchFile(string Path, string Format, object? Root)
{
    static readonly byte[] LegacyMagic = [0x80, 0x02, 0x8a, 0x0a, 0x6c, 0xfc, 0x9c, 0x46, 0xf9, 0x20, 0x6a, 0xa8, 0x50, 0x19];
    static readonly BigInteger MagicNumber = BigInteger.Parse("119547037146038801333356");   // 0x1950a86a20f9469cfc6c
    const long LegacyProtocolVersion = 1001;

    /// <summary>Keys under which checkpoint dicts commonly keep the weights to use, in the order tried.</summary>
    public static readonly string[] WeightKeys = ["ema", "model_ema", "state_dict", "model", "net", "module"];

    /// <summary>Whether the bytes start like a file this class reads (zip, legacy torch, or a pickle).</summary>
    public static bool Sniff(ReadOnlySpan<byte> head) =>
        head.StartsWith("PK\x03\x04"u8) || (head.Length >= 2 && head[0] == 0x80 && head[1] is >= 2 and <= 5);

    /// <summary>Reads a .pth/.pt/.pkl file, choosing the format by its content. Errors are <see cref="PickleException"/>s naming the file.</summary>
    public static TorchFile Read(string path)
    {
        using var fs = File.OpenRead(path);
        var head = new byte[16];
        int n = fs.ReadAtLeast(head, head.Length, throwOnEndOfStream: false);
        fs.Position = 0;
        if (head.AsSpan(0, n).StartsWith("PK\x03\x04"u8)) return new TorchFile(path, "torch zip", ReadZip(fs, path));
        if (head.AsSpan(0, n).StartsWith(LegacyMagic)) return new TorchFile(path, "torch legacy", ReadLegacy(new BufferedStream(fs), path));
        if (n >= 2 && head[0] == 0x80) return new TorchFile(path, "pickle", NewUnpickler(new BufferedStream(fs), path, null).Load());
        if (IsTar(fs)) throw new PickleException($"{path}: a tar archive (PyTorch's format before version 0.4), which is not supported; load and re-save it with a current PyTorch");
        throw new PickleException($"{path}: not a PyTorch file (.pth/.pt zip or legacy format) or a pickle (.pkl); it starts with bytes {Convert.ToHexString(head, 0, Math.Min(n, 8))}");
    }

    static bool IsTar(FileStream fs)
    {
        if (fs.Length < 262) return false;
        var b = new byte[5];
        fs.Position = 257;
        fs.ReadExactly(b);
        return b.AsSpan().SequenceEqual("ustar"u8);
    }

    // ---- globals and calls ------------------------------------------------------------------

    static readonly Dictionary<string, (string DType, int Size)> StorageTypes = new()
    {
        ["FloatStorage"] = ("float32", 4), ["DoubleStorage"] = ("float64", 8), ["HalfStorage"] = ("float16", 2),
        ["BFloat16Storage"] = ("bfloat16", 2), ["LongStorage"] = ("int64", 8), ["IntStorage"] = ("int32", 4),
        ["ShortStorage"] = ("int16", 2), ["CharStorage"] = ("int8", 1), ["ByteStorage"] = ("uint8", 1), ["BoolStorage"] = ("bool", 1),
    };

    static readonly HashSet<string> AllowedGlobals =
    [
        "collections.OrderedDict", "builtins.set", "builtins.frozenset", "builtins.bytearray", "builtins.object", "builtins.dict", "builtins.list",
        "__builtin__.set", "__builtin__.object", "_codecs.encode", "copyreg._reconstructor", "copy_reg._reconstructor",
        "torch._utils._rebuild_tensor", "torch._utils._rebuild_tensor_v2", "torch._utils._rebuild_parameter",
        "torch._utils._rebuild_parameter_with_state", "torch._tensor._rebuild_from_type_v2", "torch._utils._rebuild_from_type_v2",
        "torch.Tensor", "torch.nn.parameter.Parameter", "torch.Size", "torch.device", "torch.storage._load_from_bytes",
        "torch_utils.persistence._reconstruct_persistent_obj", "dnnlib.util.EasyDict",
        "numpy.dtype", "numpy.core.multiarray.scalar", "numpy._core.multiarray.scalar",
    ];

    /// <summary>
    /// The globals a file may name: the tensor and storage rebuild functions, storage types, torch
    /// module classes (kept as inert records), Python's containers and NVlabs/edm's persistence.
    /// </summary>
    public static bool IsAllowed(PyGlobal g) =>
        AllowedGlobals.Contains(g.ToString())
        || (g.Module == "torch" && StorageTypes.ContainsKey(g.Name))
        || (g.Module.StartsWith("torch.nn.modules.", StringComparison.Ordinal) && g.Name.Length > 0 && char.IsUpper(g.Name[0]));

    static Unpickler NewUnpickler(Stream s, string source, Func<object?, object?>? persistentLoad) =>
        new(s, source, IsAllowed, (g, args) => Call(g, args, source), persistentLoad);

    static object? Call(PyGlobal g, object?[] a, string source)
    {
        PickleException Bad() => new($"{source}: the pickle calls '{g}' with arguments this reader does not understand");
        switch (g.ToString())
        {
            case "torch._utils._rebuild_tensor_v2" or "torch._utils._rebuild_tensor":
                if (a.Length < 4 || a[0] is not TorchStorage st || a[1] is not long off || a[2] is not object?[] size || a[3] is not object?[] stride
                    || size.Length != stride.Length)
                    throw Bad();
                return new TorchTensor(st, off, size.Select(x => checked((int)(long)x!)).ToArray(), stride.Select(x => (long)x!).ToArray());
            case "torch._utils._rebuild_parameter" or "torch._utils._rebuild_parameter_with_state":
                return a.Length >= 1 && a[0] is TorchTensor t ? t : throw Bad();
            case "torch._tensor._rebuild_from_type_v2" or "torch._utils._rebuild_from_type_v2":
                // (func, type, args, state): a tensor subclass; rebuild the plain tensor with func(args).
                return a is [PyGlobal f, _, object?[] args, ..] ? Call(f, args, source) : throw Bad();
            case "torch.Size":
                return a is [object?[] dims] ? dims : throw Bad();
            case "torch.device":
                return a.Length >= 1 ? string.Join(":", a) : throw Bad();
            case "torch.storage._load_from_bytes":
                if (a is not [byte[] bytes]) throw Bad();
                return ReadLegacy(new MemoryStream(bytes, writable: false), source + " (an embedded storage)");
            case "numpy.dtype":                                           // dtype('f8', False, True), then BUILD with its state
                return new PyObject(g, a);
            case "numpy.core.multiarray.scalar" or "numpy._core.multiarray.scalar":
                // A numpy scalar (edm's layers keep some settings as numpy float64): (dtype, raw bytes).
                if (a is not [PyObject { Args: [string code, ..] }, byte[] raw]) throw Bad();
                return (code, raw.Length) switch
                {
                    ("f8", 8) => BinaryPrimitives.ReadDoubleLittleEndian(raw),
                    ("f4", 4) => (double)BinaryPrimitives.ReadSingleLittleEndian(raw),
                    ("i8", 8) => BinaryPrimitives.ReadInt64LittleEndian(raw),
                    ("i4", 4) => (long)BinaryPrimitives.ReadInt32LittleEndian(raw),
                    ("b1", 1) => raw[0] != 0,
                    _ => throw new PickleException($"{source}: a numpy scalar of dtype '{code}', which is not supported"),
                };
            case "torch_utils.persistence._reconstruct_persistent_obj":
            {
                if (a is not [PyDict meta]) throw Bad();
                if (meta.Get("type") is not "class")
                    throw new PickleException($"{source}: an NVlabs/edm persistent object of type '{meta.Get("type")}'; only 'class' is supported");
                var name = meta.Get("class_name") as string ?? throw Bad();
                var state = meta.Get("state") switch { PyDict d => d, null => new PyDict(), _ => throw Bad() };
                return new PersistentObject(name, state);
            }
        }
        throw new PickleException($"{source}: the pickle calls '{g}', which this reader refuses: only tensors, storages and containers are rebuilt, no code is run");
    }

    // ---- containers -------------------------------------------------------------------------

    static TorchStorage NewStorage(object? type, object? numel, string source)
    {
        if (type is not PyGlobal { Module: "torch" } g || !StorageTypes.TryGetValue(g.Name, out var t))
            throw new PickleException($"{source}: a storage of type {Unpickler.Describe(type)} is not supported; allowed: {string.Join(", ", StorageTypes.Keys.Select(k => "torch." + k))}");
        if (numel is not long count || count < 0) throw new PickleException($"{source}: a storage with element count {Unpickler.Describe(numel)}");
        return new TorchStorage(t.DType, t.Size, count);
    }

    static object? ReadZip(Stream fs, string path)
    {
        ZipArchive zip;
        try { zip = new ZipArchive(fs, ZipArchiveMode.Read, leaveOpen: true); }
        catch (InvalidDataException e) { throw new PickleException($"{path}: a damaged zip archive ({e.Message}; truncated file?)"); }
        using (zip)
        {
            var pkl = zip.Entries.Where(e => e.FullName.EndsWith("data.pkl", StringComparison.Ordinal) && e.FullName.Count(c => c == '/') == 1).ToList();
            if (pkl.Count != 1)
                throw new PickleException($"{path}: a zip without exactly one FOLDER/data.pkl entry ({pkl.Count} found), so not a torch.save file");
            string prefix = pkl[0].FullName[..^"data.pkl".Length];
            if (zip.GetEntry(prefix + "byteorder") is { } bo && ReadEntry(bo, path) is var order && Encoding.ASCII.GetString(order) != "little")
                throw new PickleException($"{path}: saved on a big-endian machine (byteorder '{Encoding.ASCII.GetString(order)}'), which is not supported");
            var storages = new Dictionary<string, TorchStorage>();
            object? Load(object? pid)
            {
                if (pid is not object?[] { Length: >= 5 } t || t[0] is not "storage" || t[2] is not string key)
                    throw new PickleException($"{path}: a persistent id {Unpickler.Describe(pid)} that is not a torch storage");
                if (storages.TryGetValue(key, out var known)) return known;
                var st = NewStorage(t[1], t[4], path);
                var entry = zip.GetEntry($"{prefix}data/{key}") ?? throw new PickleException($"{path}: storage '{key}' is missing from the zip (truncated file?)");
                st.Data = ReadEntry(entry, path);
                if (st.Data.LongLength < st.Numel * st.ElementSize)
                    throw new PickleException($"{path}: storage '{key}' holds {st.Data.Length} bytes, {st.Numel * st.ElementSize} expected (truncated file?)");
                storages[key] = st;
                return st;
            }
            using var s = pkl[0].Open();
            return NewUnpickler(new BufferedStream(s), path, Load).Load();
        }
    }

    static byte[] ReadEntry(ZipArchiveEntry e, string path)
    {
        try
        {
            using var s = e.Open();
            var ms = new MemoryStream();
            s.CopyTo(ms);
            return ms.ToArray();
        }
        catch (InvalidDataException ex) { throw new PickleException($"{path}: zip entry '{e.FullName}' is damaged ({ex.Message}; truncated file?)"); }
    }

    static object? ReadLegacy(Stream s, string source)
    {
        object? Next(Func<object?, object?>? load = null) => NewUnpickler(s, source, load).Load();
        if (!(Next() is BigInteger magic && magic == MagicNumber)) throw new PickleException($"{source}: not a legacy torch file (magic number missing)");
        if (Next() is not LegacyProtocolVersion) throw new PickleException($"{source}: a legacy torch file of another protocol version (expected {LegacyProtocolVersion})");
        if (Next() is PyDict info && info.Get("little_endian") is false)
            throw new PickleException($"{source}: saved on a big-endian machine, which is not supported");
        var storages = new Dictionary<string, TorchStorage>();
        object? Load(object? pid)
        {
            if (pid is not object?[] { Length: >= 5 } t || t[0] is not "storage" || t[2] is not string key)
                throw new PickleException($"{source}: a persistent id {Unpickler.Describe(pid)} that is not a torch storage");
            if (t.Length > 5 && t[5] is not null) throw new PickleException($"{source}: a storage view (old torch), which is not supported");
            if (!storages.TryGetValue(key, out var st)) storages[key] = st = NewStorage(t[1], t[4], source);
            return st;
        }
        var root = Next(Load);
        if (Next() is not List<object?> keys) throw new PickleException($"{source}: the list of storage keys is missing (truncated file?)");
        var head = new byte[8];
        foreach (var k in keys)
        {
            if (k is not string key || !storages.TryGetValue(key, out var st)) throw new PickleException($"{source}: storage key {Unpickler.Describe(k)} was never referenced");
            try { s.ReadExactly(head); }
            catch (EndOfStreamException) { throw new PickleException($"{source}: storage '{key}' is cut off (truncated file?)"); }
            long count = BinaryPrimitives.ReadInt64LittleEndian(head);
            if (count != st.Numel) throw new PickleException($"{source}: storage '{key}' holds {count} elements, {st.Numel} expected (corrupt file?)");
            var data = new byte[checked(count * st.ElementSize)];
            try { s.ReadExactly(data); }
            catch (EndOfStreamException) { throw new PickleException($"{source}: storage '{key}' is cut off (truncated file?)"); }
            st.Data = data;
        }
        return root;
    }

    // ---- what the file holds ----------------------------------------------------------------

    /// <summary>
    /// The NVlabs/edm network the file holds, if any: the object itself (torch.save(net)), or under
    /// one of <see cref="WeightKeys"/> of a dict (edm's snapshot keeps it under 'ema').
    /// </summary>
    public PersistentObject? FindNetwork()
    {
        if (Root is PersistentObject p) return p;
        if (Root is PyDict d)
            foreach (var k in WeightKeys)
                if (d.Get(k) is PersistentObject q) return q;
        return null;
    }

    /// <summary>
    /// The tensors to load, by name, as float32: a state dict (a dict of tensors), the state dict of
    /// a module, or of the dict or module under the first of <see cref="WeightKeys"/> present.
    /// </summary>
    public OrderedDictionary<string, HostTensor> Tensors()
    {
        if (TensorsOf(Root) is { } direct) return direct;
        if (Root is PyDict d)
        {
            foreach (var k in WeightKeys)
                if (TensorsOf(d.Get(k)) is { } found) return found;
            throw new PickleException($"{Path}: holds a dict with keys {string.Join(", ", d.StringKeys.Take(12).Select(k => $"'{k}'"))} " +
                                      $"and no weights under any of {string.Join(", ", WeightKeys.Select(k => $"'{k}'"))}");
        }
        throw new PickleException($"{Path}: holds {Unpickler.Describe(Root)}, not a state dict, a module or a checkpoint dict");
    }

    static OrderedDictionary<string, HostTensor>? TensorsOf(object? o)
    {
        if (o is PyDict d && d.Count > 0 && d.Items.All(kv => kv.Key is string && kv.Value is TorchTensor))
        {
            var r = new OrderedDictionary<string, HostTensor>();
            foreach (var kv in d.Items) r.Add((string)kv.Key!, ((TorchTensor)kv.Value!).ToHost((string)kv.Key!));
            return r;
        }
        if (ModuleState(o) is not null)
        {
            var r = new OrderedDictionary<string, HostTensor>();
            foreach (var (name, t) in StateDict(o!, "")) r.Add(name, t.ToHost(name));
            return r;
        }
        return null;
    }

    static PyDict? ModuleState(object? o) => o switch
    {
        PersistentObject p => p.State,
        PyObject { State: PyDict s } when s.Get("_parameters") is not null => s,
        _ => null,
    };

    /// <summary>A torch module's state_dict: own parameters, then persistent buffers, then children, named as torch names them.</summary>
    public static IEnumerable<(string Name, TorchTensor Tensor)> StateDict(object module, string prefix)
    {
        var s = ModuleState(module) ?? throw new PickleException($"{Unpickler.Describe(module)} at '{prefix}' is not a torch module");
        var nonPersistent = (s.Get("_non_persistent_buffers_set") as PySet)?.Items.OfType<string>().ToHashSet() ?? [];
        foreach (var (field, skip) in new[] { ("_parameters", new HashSet<string>()), ("_buffers", nonPersistent) })
            if (s.Get(field) is PyDict d)
                foreach (var kv in d.Items)
                    if (kv.Key is string n && kv.Value is TorchTensor t && !skip.Contains(n)) yield return (prefix + n, t);
        if (s.Get("_modules") is PyDict m)
            foreach (var kv in m.Items)
                if (kv.Key is string n && kv.Value is not null)
                    foreach (var x in StateDict(kv.Value, prefix + n + ".")) yield return x;
    }
}

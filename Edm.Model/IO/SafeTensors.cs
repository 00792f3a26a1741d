// safetensors reader/writer (float32 only), the format Hugging Face's safetensors library defines:
//
//   bytes [0, 8)        N, the header length, unsigned 64-bit little-endian
//   bytes [8, 8+N)      UTF-8 JSON: { "name": {"dtype": "F32", "shape": [d0, ...], "data_offsets": [begin, end]},
//                                     ..., "__metadata__": {"key": "value", ...} (optional, strings only) }
//                       padded with spaces so the data starts 8-byte aligned
//   bytes [8+N, EOF)    the data section; each tensor's raw little-endian elements, row-major, at
//                       [begin, end) relative to the data section's start
//
// Checks on read (each a SafeTensorsException naming the file and the problem): the file holds the
// 8-byte length and the header; the header is a JSON object of that form; dtype is F32; end - begin
// equals 4 x the shape's element count; offsets lie inside the data section; tensors do not overlap
// and cover the data section without holes (the format's rule, so a truncated file is caught).
using System.Buffers.Binary;
using System.Runtime.InteropServices;
using System.Text;
using System.Text.Json;

namespace Edm.Model.IO;

/// <summary>One float32 tensor on the host: its shape (outermost first) and row-major data.</summary>
public sealed record HostTensor(int[] Shape, float[] Data)
{
    /// <summary>Element count of a shape (1 for a scalar's empty shape).</summary>
    public static long Count(ReadOnlySpan<int> shape)
    {
        long n = 1;
        foreach (int d in shape) n *= d;
        return n;
    }
}

/// <summary>The contents of a safetensors file: tensors in header order, and metadata strings.</summary>
public sealed record SafeTensorsFile(OrderedDictionary<string, HostTensor> Tensors, Dictionary<string, string> Metadata);

/// <summary>A safetensors file is malformed or unsupported.</summary>
public sealed class SafeTensorsException(string message, Exception? inner = null) : Exception(message, inner);

/// <summary>Reads and writes float32 safetensors files.</summary>
public static class SafeTensors
{
    /// <summary>Largest header accepted (the reference implementation's limit), against absurd lengths in corrupt files.</summary>
    public const long MaxHeaderBytes = 100_000_000;

    const string MetadataKey = "__metadata__";

    /// <summary>
    /// Writes the tensors (in the given order, packed back to back) and optional metadata to
    /// <paramref name="path"/> atomically (see <see cref="AtomicFile"/>).
    /// </summary>
    public static void Write(string path, IEnumerable<KeyValuePair<string, HostTensor>> tensors,
        IReadOnlyDictionary<string, string>? metadata = null)
    {
        RequireLittleEndian();
        var list = tensors.ToList();
        var header = new MemoryStream();
        long offset = 0;
        var names = new HashSet<string>(StringComparer.Ordinal);
        using (var j = new Utf8JsonWriter(header))
        {
            j.WriteStartObject();
            if (metadata is { Count: > 0 })
            {
                j.WriteStartObject(MetadataKey);
                foreach (var (k, v) in metadata) j.WriteString(k, v);
                j.WriteEndObject();
            }
            foreach (var (name, t) in list)
            {
                if (name == MetadataKey) throw new ArgumentException($"SafeTensors.Write: '{MetadataKey}' is reserved and cannot name a tensor");
                if (!names.Add(name)) throw new ArgumentException($"SafeTensors.Write: tensor name '{name}' appears twice");
                if (t.Shape.Any(d => d < 0)) throw new ArgumentException($"SafeTensors.Write: tensor '{name}' has a negative dimension in shape [{string.Join(", ", t.Shape)}]");
                long n = HostTensor.Count(t.Shape);
                if (n != t.Data.Length)
                    throw new ArgumentException($"SafeTensors.Write: tensor '{name}' has {t.Data.Length} elements but shape [{string.Join(", ", t.Shape)}] needs {n}");
                j.WriteStartObject(name);
                j.WriteString("dtype", "F32");
                j.WriteStartArray("shape");
                foreach (int d in t.Shape) j.WriteNumberValue(d);
                j.WriteEndArray();
                j.WriteStartArray("data_offsets");
                j.WriteNumberValue(offset);
                j.WriteNumberValue(offset + 4 * n);
                j.WriteEndArray();
                j.WriteEndObject();
                offset += 4 * n;
            }
            j.WriteEndObject();
        }
        // Pad with spaces (valid JSON whitespace) so the data section starts 8-byte aligned.
        while ((8 + header.Length) % 8 != 0) header.WriteByte((byte)' ');

        AtomicFile.Write(path, s =>
        {
            Span<byte> len = stackalloc byte[8];
            BinaryPrimitives.WriteUInt64LittleEndian(len, (ulong)header.Length);
            s.Write(len);
            header.Position = 0;
            header.CopyTo(s);
            foreach (var (_, t) in list) s.Write(MemoryMarshal.AsBytes(t.Data.AsSpan()));
        });
    }

    /// <summary>Reads a float32 safetensors file; throws <see cref="SafeTensorsException"/> naming the file and the problem.</summary>
    public static SafeTensorsFile Read(string path)
    {
        RequireLittleEndian();
        if (Directory.Exists(path)) throw new FileNotFoundException($"safetensors file '{path}' is a folder; give the path of a .safetensors file", path);
        if (!File.Exists(path)) throw new FileNotFoundException($"safetensors file '{path}' does not exist", path);
        using var f = new FileStream(path, FileMode.Open, FileAccess.Read, FileShare.Read);
        long fileLength = f.Length;
        if (fileLength < 8) throw Bad(path, $"file is {fileLength} bytes, shorter than the 8-byte header length");
        Span<byte> len = stackalloc byte[8];
        f.ReadExactly(len);
        ulong n = BinaryPrimitives.ReadUInt64LittleEndian(len);
        if (n > MaxHeaderBytes) throw Bad(path, $"header length {n} exceeds the {MaxHeaderBytes}-byte limit (corrupt or not a safetensors file)");
        if ((long)n > fileLength - 8) throw Bad(path, $"header length {n} runs past the end of the file ({fileLength} bytes): truncated");
        var headerBytes = new byte[n];
        f.ReadExactly(headerBytes);
        long dataStart = 8 + (long)n, dataLength = fileLength - dataStart;

        var entries = new List<(string Name, int[] Shape, long Begin, long End)>();
        var metadata = new Dictionary<string, string>(StringComparer.Ordinal);
        try
        {
            using var doc = JsonDocument.Parse(headerBytes);
            if (doc.RootElement.ValueKind != JsonValueKind.Object) throw Bad(path, "header is not a JSON object");
            foreach (var p in doc.RootElement.EnumerateObject())
            {
                if (p.Name == MetadataKey)
                {
                    if (p.Value.ValueKind != JsonValueKind.Object) throw Bad(path, $"'{MetadataKey}' is not an object");
                    foreach (var m in p.Value.EnumerateObject())
                    {
                        if (m.Value.ValueKind != JsonValueKind.String) throw Bad(path, $"metadata '{m.Name}' is not a string");
                        metadata[m.Name] = m.Value.GetString()!;
                    }
                    continue;
                }
                entries.Add(ParseEntry(path, p));
            }
        }
        catch (JsonException e) { throw Bad(path, $"header is not valid JSON ({e.Message})", e); }
        catch (ArgumentException e) { throw Bad(path, $"header is not valid JSON ({e.Message})", e); }
        catch (InvalidOperationException e) { throw Bad(path, $"header is not valid UTF-8 JSON ({e.Message})", e); }

        // Offsets: inside the data section, no overlaps, no holes.
        var byBegin = entries.OrderBy(e => e.Begin).ThenBy(e => e.End).ToList();
        long covered = 0;
        foreach (var e in byBegin)
        {
            if (e.End > dataLength)
                throw Bad(path, $"tensor '{e.Name}' data_offsets [{e.Begin}, {e.End}) run past the data section ({dataLength} bytes): truncated or corrupt");
            if (e.Begin < covered)
                throw Bad(path, $"tensor '{e.Name}' data_offsets [{e.Begin}, {e.End}) overlap the previous tensor (which ends at {covered})");
            if (e.Begin > covered)
                throw Bad(path, $"bytes [{covered}, {e.Begin}) of the data section belong to no tensor (a hole before '{e.Name}')");
            covered = e.End;
        }
        if (covered != dataLength)
            throw Bad(path, $"the data section has {dataLength} bytes but the tensors cover {covered}");

        var tensors = new OrderedDictionary<string, HostTensor>(StringComparer.Ordinal);
        foreach (var e in entries)
        {
            var data = new float[(e.End - e.Begin) / 4];
            f.Position = dataStart + e.Begin;
            f.ReadExactly(MemoryMarshal.AsBytes(data.AsSpan()));
            tensors.Add(e.Name, new HostTensor(e.Shape, data));
        }
        return new SafeTensorsFile(tensors, metadata);
    }

    static (string, int[], long, long) ParseEntry(string path, JsonProperty p)
    {
        string name = p.Name;
        var v = p.Value;
        if (v.ValueKind != JsonValueKind.Object) throw Bad(path, $"tensor '{name}' is not a JSON object");
        if (!v.TryGetProperty("dtype", out var dtype) || dtype.ValueKind != JsonValueKind.String)
            throw Bad(path, $"tensor '{name}' has no dtype");
        if (dtype.GetString() != "F32")
            throw Bad(path, $"tensor '{name}' has dtype {dtype.GetString()}; only F32 is supported");
        if (!v.TryGetProperty("shape", out var shapeEl) || shapeEl.ValueKind != JsonValueKind.Array)
            throw Bad(path, $"tensor '{name}' has no shape array");
        var shape = new int[shapeEl.GetArrayLength()];
        int i = 0;
        foreach (var d in shapeEl.EnumerateArray())
        {
            if (d.ValueKind != JsonValueKind.Number || !d.TryGetInt32(out shape[i]) || shape[i] < 0)
                throw Bad(path, $"tensor '{name}' has an invalid dimension {d.GetRawText()} in its shape");
            i++;
        }
        if (!v.TryGetProperty("data_offsets", out var offs) || offs.ValueKind != JsonValueKind.Array || offs.GetArrayLength() != 2)
            throw Bad(path, $"tensor '{name}' has no data_offsets [begin, end]");
        if (!offs[0].TryGetInt64(out long begin) || !offs[1].TryGetInt64(out long end) || begin < 0 || end < begin)
            throw Bad(path, $"tensor '{name}' has invalid data_offsets {offs.GetRawText()}");
        long count = HostTensor.Count(shape);
        if (count > Array.MaxLength) throw Bad(path, $"tensor '{name}' has {count} elements, more than a .NET array holds");
        if (end - begin != 4 * count)
            throw Bad(path, $"tensor '{name}' has data_offsets [{begin}, {end}) = {end - begin} bytes but shape [{string.Join(", ", shape)}] of F32 needs {4 * count}");
        return (name, shape, begin, end);
    }

    static SafeTensorsException Bad(string path, string what, Exception? inner = null) =>
        new($"safetensors file '{path}': {what}", inner);

    static void RequireLittleEndian()
    {
        // The data section is little-endian; we copy it with MemoryMarshal, which is only right on little-endian hosts.
        if (!BitConverter.IsLittleEndian) throw new PlatformNotSupportedException("safetensors I/O needs a little-endian host");
    }
}

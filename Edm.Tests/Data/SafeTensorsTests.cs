using System.Buffers.Binary;
using System.Text;
using System.Text.Json;
using Edm.Model.IO;
using Xunit;

namespace Edm.Tests.Data;

public sealed class SafeTensorsTests : IDisposable
{
    readonly TempDir _dir = new();

    public void Dispose() => _dir.Dispose();

    static float[] Random(int n, int seed)
    {
        var r = new Random(seed);
        return Enumerable.Range(0, n).Select(_ => (float)(r.NextDouble() * 2 - 1) * 1e3f).ToArray();
    }

    /// <summary>A file laid out by hand from the format's definition (independent of our writer).</summary>
    static byte[] HandMade(string header, params float[] data)
    {
        var h = Encoding.UTF8.GetBytes(header);
        var bytes = new byte[8 + h.Length + 4 * data.Length];
        BinaryPrimitives.WriteUInt64LittleEndian(bytes, (ulong)h.Length);
        h.CopyTo(bytes, 8);
        for (int i = 0; i < data.Length; i++) BinaryPrimitives.WriteSingleLittleEndian(bytes.AsSpan(8 + h.Length + 4 * i), data[i]);
        return bytes;
    }

    [Fact]
    public void Round_trip_is_bit_exact_and_keeps_order_and_metadata()
    {
        var special = new[] { 0f, -0f, float.Epsilon, -float.Epsilon, float.MaxValue, float.NegativeInfinity, float.NaN,
                              BitConverter.Int32BitsToSingle(0x7FC12345) /* NaN with payload */ };
        var tensors = new OrderedDictionary<string, HostTensor>
        {
            ["net.conv0.weight"] = new([4, 3, 3, 3], Random(108, 1)),
            ["net.conv0.bias"] = new([4], Random(4, 2)),
            ["special"] = new([2, 4], special),
            ["scalar"] = new([], [3.25f]),
            ["empty"] = new([0, 5], []),
            ["a.after"] = new([3, 1], Random(3, 3)),
        };
        var meta = new Dictionary<string, string> { ["format"] = "edmkernels", ["kimg"] = "12.5", ["json"] = "{\"x\": [1, 2]}" };
        var path = _dir["ckpt.safetensors"];
        SafeTensors.Write(path, tensors, meta);

        var back = SafeTensors.Read(path);
        Assert.Equal(tensors.Keys, back.Tensors.Keys);
        foreach (var (name, t) in tensors)
        {
            Assert.Equal(t.Shape, back.Tensors[name].Shape);
            Assert.Equal(t.Data.Select(BitConverter.SingleToInt32Bits), back.Tensors[name].Data.Select(BitConverter.SingleToInt32Bits));
        }
        Assert.Equal(meta, back.Metadata);

        // The layout itself: u64 LE header length, JSON header, data 8-byte aligned and packed in order.
        var bytes = File.ReadAllBytes(path);
        long n = (long)BinaryPrimitives.ReadUInt64LittleEndian(bytes);
        Assert.Equal(0, (8 + n) % 8);
        using var doc = JsonDocument.Parse(bytes.AsMemory(8, (int)n));
        var bias = doc.RootElement.GetProperty("net.conv0.bias");
        Assert.Equal("F32", bias.GetProperty("dtype").GetString());
        Assert.Equal(432, bias.GetProperty("data_offsets")[0].GetInt64());
        Assert.Equal(448, bias.GetProperty("data_offsets")[1].GetInt64());
        Assert.Equal(tensors["net.conv0.bias"].Data[1], BinaryPrimitives.ReadSingleLittleEndian(bytes.AsSpan((int)(8 + n + 436))));
        Assert.Equal(8 + n + 4 * (108 + 4 + 8 + 1 + 0 + 3), bytes.Length);
    }

    [Fact]
    public void Reads_a_file_laid_out_by_hand()
    {
        var path = _dir["hand.safetensors"];
        File.WriteAllBytes(path, HandMade(
            "{\"__metadata__\":{\"k\":\"v\"},\"b\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[8,12]},\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]}}",
            1f, -2f, 0.5f));
        var f = SafeTensors.Read(path);
        Assert.Equal(new[] { "b", "a" }, f.Tensors.Keys); // header order
        Assert.Equal(new[] { 1f, -2f }, f.Tensors["a"].Data);
        Assert.Equal(new[] { 0.5f }, f.Tensors["b"].Data);
        Assert.Equal("v", f.Metadata["k"]);
    }

    void ExpectError(byte[] file, params string[] fragments)
    {
        var path = _dir["bad.safetensors"];
        File.WriteAllBytes(path, file);
        var e = Assert.Throws<SafeTensorsException>(() => SafeTensors.Read(path));
        Assert.Contains(path, e.Message);
        foreach (var f in fragments) Assert.Contains(f, e.Message);
    }

    const string Two = "{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]}}";

    [Fact]
    public void Corrupt_files_give_errors_naming_file_and_problem()
    {
        ExpectError([1, 2, 3], "shorter than the 8-byte");
        var good = HandMade(Two, 1f, 2f);
        ExpectError(good[..^3], "run past the data section", "truncated");               // data cut short
        ExpectError(good[..20], "runs past the end of the file", "truncated");            // header cut short
        var huge = (byte[])good.Clone();
        BinaryPrimitives.WriteUInt64LittleEndian(huge, ulong.MaxValue);
        ExpectError(huge, "exceeds");
        ExpectError(HandMade("{\"a\":{\"dtype\":\"F32\",", 1f), "not valid JSON");
        ExpectError(HandMade("[1,2]"), "not a JSON object");
        ExpectError(HandMade("{\"a\":{\"dtype\":\"F16\",\"shape\":[2],\"data_offsets\":[0,4]}}", 1f), "dtype F16", "only F32");
        ExpectError(HandMade("{\"a\":{\"dtype\":\"F32\",\"shape\":[3],\"data_offsets\":[0,8]}}", 1f, 2f), "needs 12");
        ExpectError(HandMade("{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]},\"b\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[4,12]}}", 1f, 2f, 3f), "overlap");
        ExpectError(HandMade("{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[4,12]}}", 1f, 2f), "run past");
        ExpectError(HandMade("{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[4,8]}}", 1f, 2f), "hole");
        ExpectError(HandMade(Two, 1f, 2f, 3f), "data section has 12 bytes but the tensors cover 8");
        ExpectError(HandMade("{\"a\":{\"dtype\":\"F32\",\"shape\":[-2],\"data_offsets\":[0,8]}}", 1f, 2f), "invalid dimension");
        ExpectError(HandMade("{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[8,0]}}", 1f, 2f), "invalid data_offsets");
        ExpectError(HandMade("{\"__metadata__\":{\"k\":1}}"), "metadata 'k' is not a string");
    }

    [Fact]
    public void Write_rejects_inconsistent_tensors_and_keeps_old_file()
    {
        var path = _dir["w.safetensors"];
        SafeTensors.Write(path, new OrderedDictionary<string, HostTensor> { ["x"] = new([2], [1f, 2f]) });
        var before = File.ReadAllBytes(path);
        Assert.Throws<ArgumentException>(() => SafeTensors.Write(path, new OrderedDictionary<string, HostTensor> { ["x"] = new([3], [1f, 2f]) }));
        Assert.Throws<ArgumentException>(() => SafeTensors.Write(path, new OrderedDictionary<string, HostTensor> { ["__metadata__"] = new([1], [1f]) }));
        Assert.Equal(before, File.ReadAllBytes(path));
        Assert.Throws<FileNotFoundException>(() => SafeTensors.Read(_dir["missing.safetensors"]));
    }
}

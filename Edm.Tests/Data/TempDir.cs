using SixLabors.ImageSharp;
using SixLabors.ImageSharp.PixelFormats;

namespace Edm.Tests.Data;

/// <summary>A fresh temporary folder per test, deleted afterwards; helpers to make small PNGs.</summary>
public sealed class TempDir : IDisposable
{
    public string Path { get; } = Directory.CreateTempSubdirectory("edm-data-test-").FullName;

    public string this[string relative] => System.IO.Path.Combine(Path, relative);

    /// <summary>Deterministic pseudo-random bytes (never all equal).</summary>
    public static byte[] RandomBytes(int n, int seed)
    {
        var b = new byte[n];
        new Random(seed).NextBytes(b);
        return b;
    }

    /// <summary>Writes a grayscale (channels 1) or RGB (channels 3) PNG from interleaved HWC bytes; creates folders.</summary>
    public static void WritePng(string path, int width, int height, int channels, byte[] hwc)
    {
        Directory.CreateDirectory(System.IO.Path.GetDirectoryName(path)!);
        if (channels == 1) { using var img = Image.LoadPixelData<L8>(hwc, width, height); img.SaveAsPng(path); }
        else if (channels == 3) { using var img = Image.LoadPixelData<Rgb24>(hwc, width, height); img.SaveAsPng(path); }
        else { using var img = Image.LoadPixelData<Rgba32>(hwc, width, height); img.SaveAsPng(path); }
    }

    public void Dispose()
    {
        try { Directory.Delete(Path, recursive: true); } catch (IOException) { }
    }
}

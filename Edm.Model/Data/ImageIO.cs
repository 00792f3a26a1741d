// Images in and out of the engine's float layout. An image is (C, H, W) float32 in [-1, 1] with
// C = 1 (grayscale) or 3 (RGB). The byte <-> float maps follow NVlabs/edm:
//   load:  x = b / 127.5 - 1                           (b in 0..255)
//   save:  b = floor(clip(x * 127.5 + 128, 0, 255))    (edm's (x * 127.5 + 128).clip(0, 255).to(uint8))
// so a loaded image saves back to the same bytes. PNG files are written atomically (AtomicFile).
using Edm.Kernels;
using Edm.Model.IO;
using SixLabors.ImageSharp;
using SixLabors.ImageSharp.Formats.Png;
using SixLabors.ImageSharp.PixelFormats;

namespace Edm.Model.Data;

/// <summary>PNG reading and writing for (C, H, W) float images in [-1, 1], and image grids.</summary>
public static class ImageIO
{
    /// <summary>Byte value to float in [-1, 1] (edm: b / 127.5 - 1).</summary>
    public static float ToFloat(byte b) => b / 127.5f - 1f;

    /// <summary>Float in [-1, 1] to byte (edm: (x * 127.5 + 128).clip(0, 255), truncated); NaN maps to 0.</summary>
    public static byte ToByte(float x)
    {
        float v = x * 127.5f + 128f;
        if (!(v > 0f)) return 0; // also NaN
        return v >= 255f ? (byte)255 : (byte)v;
    }

    /// <summary>
    /// Rounds floats in place to the values an 8-bit PNG holds: x = ToFloat(ToByte(x)), exactly what
    /// <see cref="SavePng(string, ReadOnlySpan{float}, int, int, int)"/> then reading the file back gives
    /// (so statistics of images kept in memory match those of the same images saved as PNGs).
    /// </summary>
    public static void Quantize(Span<float> values)
    {
        for (int i = 0; i < values.Length; i++) values[i] = ToFloat(ToByte(values[i]));
    }

    /// <summary>Saves a (C, H, W) image in [-1, 1] (C = 1 or 3) as an 8-bit PNG, atomically.</summary>
    public static void SavePng(string path, ReadOnlySpan<float> chw, int channels, int height, int width)
    {
        CheckLayout("SavePng", chw.Length, 1, channels, height, width);
        var bytes = new byte[chw.Length];
        for (int i = 0; i < bytes.Length; i++) bytes[i] = ToByte(chw[i]);
        WritePng(path, bytes, channels, height, width);
    }

    /// <summary>Saves a (C, H, W) tensor in [-1, 1] as a PNG, atomically.</summary>
    public static void SavePng(string path, Tensor image) // (C, H, W)
    {
        if (image.Rank != 3) throw new ArgumentException($"SavePng: image has shape {image.ShapeString}, expected (C, H, W)");
        SavePng(path, image.ToArray(), image.Shape[0], image.Shape[1], image.Shape[2]);
    }

    /// <summary>
    /// Saves N images (N, C, H, W) in [-1, 1] as one PNG grid, tiles side by side without gaps,
    /// row-major; <paramref name="columns"/> 0 means ceil(sqrt(N)). Unfilled cells are black.
    /// </summary>
    public static void SaveGrid(string path, ReadOnlySpan<float> nchw, int count, int channels, int height, int width, int columns = 0)
    {
        CheckLayout("SaveGrid", nchw.Length, count, channels, height, width);
        if (columns < 0) throw new ArgumentException($"SaveGrid: columns must be >= 0 (0 = automatic), got {columns}");
        int cols = columns > 0 ? Math.Min(columns, count) : (int)Math.Ceiling(Math.Sqrt(count));
        int rows = (count + cols - 1) / cols;
        int gh = rows * height, gw = cols * width;
        var bytes = new byte[(long)channels * gh * gw];
        for (int n = 0; n < count; n++)
        {
            int y0 = n / cols * height, x0 = n % cols * width;
            for (int c = 0; c < channels; c++)
                for (int y = 0; y < height; y++)
                {
                    var src = nchw.Slice(((n * channels + c) * height + y) * width, width);
                    long dst = ((long)c * gh + y0 + y) * gw + x0;
                    for (int x = 0; x < width; x++) bytes[dst + x] = ToByte(src[x]);
                }
        }
        WritePng(path, bytes, channels, gh, gw);
    }

    /// <summary>Saves an (N, C, H, W) tensor in [-1, 1] as one PNG grid (see the span overload).</summary>
    public static void SaveGrid(string path, Tensor images, int columns = 0) // (N, C, H, W)
    {
        if (images.Rank != 4) throw new ArgumentException($"SaveGrid: images has shape {images.ShapeString}, expected (N, C, H, W)");
        SaveGrid(path, images.ToArray(), images.Shape[0], images.Shape[1], images.Shape[2], images.Shape[3], columns);
    }

    /// <summary>
    /// Loads a PNG as a (C, H, W) float image in [-1, 1]: C = 1 for grayscale PNGs, else 3 (alpha is
    /// rejected). Throws <see cref="DatasetException"/> naming the file when it is missing or corrupt.
    /// </summary>
    public static HostTensor LoadPng(string path)
    {
        byte[] file;
        try { file = File.ReadAllBytes(path); }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            throw new DatasetException($"cannot read image '{path}': {e.Message}", e);
        }
        var (c, h, w) = PngDecoding.Identify(file, $"'{path}'");
        var bytes = PngDecoding.Decode(file, $"'{path}'", c, h, w);
        var data = new float[bytes.Length];
        for (int i = 0; i < data.Length; i++) data[i] = ToFloat(bytes[i]);
        return new HostTensor([c, h, w], data);
    }

    /// <summary>Writes planar (C, H, W) bytes as an 8-bit grayscale (C = 1) or RGB (C = 3) PNG, atomically.</summary>
    internal static void WritePng(string path, byte[] chw, int channels, int height, int width) =>
        AtomicFile.Write(path, s => EncodePng(s, chw, channels, height, width));

    /// <summary>Encodes planar (C, H, W) bytes as a PNG into a stream.</summary>
    internal static void EncodePng(Stream s, byte[] chw, int channels, int height, int width)
    {
        var encoder = new PngEncoder
        {
            ColorType = channels == 1 ? PngColorType.Grayscale : PngColorType.Rgb,
            BitDepth = PngBitDepth.Bit8,
        };
        if (channels == 1)
        {
            using var img = Image.LoadPixelData<L8>(chw, width, height);
            img.SaveAsPng(s, encoder);
        }
        else
        {
            int plane = height * width;
            var hwc = new byte[3 * plane];
            for (int i = 0; i < plane; i++)
            {
                hwc[3 * i] = chw[i];
                hwc[3 * i + 1] = chw[plane + i];
                hwc[3 * i + 2] = chw[2 * plane + i];
            }
            using var img = Image.LoadPixelData<Rgb24>(hwc, width, height);
            img.SaveAsPng(s, encoder);
        }
    }

    static void CheckLayout(string op, int length, int count, int channels, int height, int width)
    {
        if (channels is not (1 or 3)) throw new ArgumentException($"{op}: channels must be 1 (grayscale) or 3 (RGB), got {channels}");
        if (count < 1 || height < 1 || width < 1) throw new ArgumentException($"{op}: count, height and width must be >= 1, got {count}, {height}, {width}");
        if ((long)count * channels * height * width != length)
            throw new ArgumentException($"{op}: data has {length} values but ({count}, {channels}, {height}, {width}) needs {(long)count * channels * height * width}");
    }
}

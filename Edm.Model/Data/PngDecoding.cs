// Decoding of dataset images with ImageSharp into planar (C, H, W) bytes, with errors that name the
// file. Grayscale PNGs give C = 1 (L8), RGB and palette PNGs C = 3 (Rgb24); PNGs with an alpha
// channel are rejected (edm's loader has no use for alpha; `dataset convert` drops it).
using SixLabors.ImageSharp;
using SixLabors.ImageSharp.Formats.Png;
using SixLabors.ImageSharp.PixelFormats;

namespace Edm.Model.Data;

/// <summary>A dataset or image file is missing, malformed or inconsistent.</summary>
public sealed class DatasetException(string message, Exception? inner = null) : Exception(message, inner);

internal static class PngDecoding
{
    /// <summary>Reads a PNG's header: channels (1 or 3), height, width.</summary>
    public static (int C, int H, int W) Identify(byte[] file, string name)
    {
        IImageInfo? info;
        SixLabors.ImageSharp.Formats.IImageFormat? format;
        try { info = Image.Identify(file, out format); }
        catch (Exception e) when (IsDecodeError(e)) { throw Corrupt(name, e); }
        if (info is null || format is not PngFormat)
            throw new DatasetException($"{name} is not a PNG image (corrupt, or another format; convert it with `dataset convert`)");
        var color = info.Metadata.GetPngMetadata().ColorType;
        int c = color switch
        {
            PngColorType.Grayscale => 1,
            PngColorType.Rgb or PngColorType.Palette => 3,
            PngColorType.GrayscaleWithAlpha or PngColorType.RgbWithAlpha =>
                throw new DatasetException($"{name} has an alpha channel; dataset images must be grayscale or RGB (`dataset convert` drops alpha)"),
            _ => throw new DatasetException($"{name} has an unsupported PNG color type {color}"),
        };
        return (c, info.Height, info.Width);
    }

    /// <summary>Decodes a PNG into planar (C, H, W) bytes; the caller knows C, H, W from <see cref="Identify"/>.</summary>
    public static byte[] Decode(byte[] file, string name, int c, int h, int w)
    {
        var dst = new byte[c * h * w];
        Decode(file, name, c, h, w, dst);
        return dst;
    }

    /// <summary>Decodes a PNG into <paramref name="dst"/> (C x H x W bytes, planar).</summary>
    public static void Decode(byte[] file, string name, int c, int h, int w, Span<byte> dst)
    {
        try
        {
            if (c == 1)
            {
                using var img = Image.Load<L8>(file);
                Check(img, name, h, w);
                img.CopyPixelDataTo(dst);
            }
            else
            {
                using var img = Image.Load<Rgb24>(file);
                Check(img, name, h, w);
                int plane = h * w;
                var px = new Rgb24[plane];
                img.CopyPixelDataTo(px);
                for (int i = 0; i < plane; i++)
                {
                    dst[i] = px[i].R;
                    dst[plane + i] = px[i].G;
                    dst[2 * plane + i] = px[i].B;
                }
            }
        }
        catch (Exception e) when (IsDecodeError(e)) { throw Corrupt(name, e); }
    }

    static void Check(Image img, string name, int h, int w)
    {
        if (img.Height != h || img.Width != w)
            throw new DatasetException($"{name} decoded as {img.Width}x{img.Height}, its header said {w}x{h}");
    }

    static bool IsDecodeError(Exception e) => e is ImageFormatException or UnknownImageFormatException
        or InvalidImageContentException or InvalidDataException or EndOfStreamException or IndexOutOfRangeException
        or ArgumentException or NotSupportedException;

    static DatasetException Corrupt(string name, Exception e) =>
        new($"{name} is a corrupt or unreadable PNG: {e.Message}", e);
}

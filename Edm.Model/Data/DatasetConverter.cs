// `dataset convert`: a folder or zip of images (PNG, JPEG, BMP, GIF, TGA, TIFF, WebP) -> a dataset zip
// in edm's layout (DatasetZipWriter). Like edm's dataset_tool: images in sorted file-name order,
// grayscale sources stay 1-channel and colour ones become RGB (alpha is dropped), every output image
// has the first image's size and channels, and labels come from the source's dataset.json if it
// has one. Transforms: none (images must already be square; resized to --resolution if given) or
// center-crop (the largest centred square, then resized). Resizing uses Lanczos-3, as edm's PIL
// LANCZOS does.
using System.Text.Json;
using SixLabors.ImageSharp;
using SixLabors.ImageSharp.Formats.Jpeg;
using SixLabors.ImageSharp.Formats.Png;
using SixLabors.ImageSharp.PixelFormats;
using SixLabors.ImageSharp.Processing;

namespace Edm.Model.Data;

/// <summary>How source images are made square.</summary>
public enum SquareTransform
{
    /// <summary>No crop: non-square sources are an error.</summary>
    None,
    /// <summary>Crop the largest centred square.</summary>
    CenterCrop,
}

/// <summary>How images are resized to the requested resolution.</summary>
public enum ResizeFilter
{
    /// <summary>Lanczos-3 (edm's dataset_tool, PIL LANCZOS).</summary>
    Lanczos,
    /// <summary>
    /// The mean of each f x f block (f = source size / resolution, which must divide it), rounded to
    /// 8 bits: what `train --resolution` feeds the network, so FID references match what a model
    /// trained at a lower resolution saw.
    /// </summary>
    Box,
}

/// <summary>Converts image folders and zips to dataset zips (see the file header).</summary>
public static class DatasetConverter
{
    /// <summary>File extensions read as source images (lower case).</summary>
    public static readonly string[] ImageExtensions = [".png", ".jpg", ".jpeg", ".bmp", ".gif", ".tga", ".tif", ".tiff", ".webp"];

    /// <summary>Largest resolution accepted.</summary>
    public const int MaxResolution = 4096;

    /// <summary>
    /// Converts <paramref name="source"/> (folder or zip) to the dataset zip <paramref name="dest"/>,
    /// written atomically. <paramref name="resolution"/> null keeps the source size. Returns the
    /// number of images written. Throws <see cref="DatasetException"/> naming the offending file.
    /// </summary>
    public static int Convert(string source, string dest, int? resolution, SquareTransform transform, Action<string>? progress = null,
        ResizeFilter filter = ResizeFilter.Lanczos)
    {
        if (resolution is < 1 or > MaxResolution)
            throw new DatasetException($"resolution {resolution} is out of range; allowed: 1..{MaxResolution} (a dataset holds every image decoded in memory when training)");
        if (dest.EndsWith('/') || dest.EndsWith(Path.DirectorySeparatorChar) || Directory.Exists(dest))
            throw new DatasetException($"destination '{dest}' is a folder; give the path of the .zip file to write (e.g. {Path.Combine(dest, "dataset.zip")})");
        if (!dest.EndsWith(".zip", StringComparison.OrdinalIgnoreCase))
            throw new DatasetException($"destination '{dest}' does not end in .zip; a dataset is written as a zip file");
        if (Path.GetFullPath(source) == Path.GetFullPath(dest)) throw new DatasetException($"source and destination are the same file '{dest}'");
        using var src = FileSource.Open(source, "source");
        var files = src.Files.Where(f => ImageExtensions.Contains(Path.GetExtension(f).ToLowerInvariant())).ToList();
        if (files.Count == 0)
            throw new DatasetException($"source '{source}' holds no images (looked for {string.Join(" ", ImageExtensions)})");
        var labels = ReadSourceLabels(src, source);
        if (labels is not null)
        {
            // Checked before anything is written, with the rules ImageDataset.Open applies to the result.
            string where = $"'{ImageDataset.LabelsFile}' in '{source}'";
            var known = files.ToHashSet(StringComparer.Ordinal);
            var extra = labels.Keys.Where(k => !known.Contains(k)).Order(StringComparer.Ordinal).ToList();
            if (extra.Count > 0)
                throw new DatasetException($"{where} labels {extra.Count} file(s) that are not images of the source, e.g. '{extra[0]}'");
            int max = labels.Count == 0 ? 0 : labels.Values.Max(), limit = ImageDataset.MaxClasses(files.Count);
            if (max >= limit)
                throw new DatasetException($"{where} has class {max} for {files.Count} images: classes must be indices 0..C-1 with C at most {limit}; renumber the classes from 0");
        }

        using var writer = new DatasetZipWriter(dest);
        int channels = 0, res = 0;
        for (int i = 0; i < files.Count; i++)
        {
            string name = $"'{files[i]}' in '{source}'";
            int? label = null;
            if (labels is not null)
            {
                if (!labels.TryGetValue(files[i], out int l)) throw new DatasetException($"{name} has no label in the source's {ImageDataset.LabelsFile}");
                label = l;
            }
            var (chw, c, r) = LoadSquare(src.Read(files[i]), name, filter == ResizeFilter.Box ? null : resolution, transform);
            if (filter == ResizeFilter.Box && resolution is { } target && target != r) (chw, r) = (BoxDownsample(chw, c, r, target, name), target);
            if (i == 0) { channels = c; res = r; }
            else if (r != res) throw new DatasetException($"{name} is {r}x{r} but '{files[0]}' is {res}x{res}; give --resolution to resize all images to one size");
            else if (c != channels) throw new DatasetException($"{name} has {c} channel(s) but '{files[0]}' has {channels}; all images must be grayscale or all colour");
            writer.Add(chw, c, r, label);
            if (progress is not null && (i + 1) % 1000 == 0) progress($"{i + 1} / {files.Count} images");
        }
        writer.Commit();
        return files.Count;
    }

    /// <summary>The source's dataset.json labels (file -> class), or null if it has none.</summary>
    static Dictionary<string, int>? ReadSourceLabels(FileSource src, string source)
    {
        if (!src.Files.Contains(ImageDataset.LabelsFile)) return null;
        try
        {
            using var doc = JsonDocument.Parse(src.Read(ImageDataset.LabelsFile));
            if (!doc.RootElement.TryGetProperty("labels", out var labels) || labels.ValueKind == JsonValueKind.Null) return null;
            var map = new Dictionary<string, int>(StringComparer.Ordinal);
            foreach (var pair in labels.EnumerateArray())
            {
                if (pair.ValueKind != JsonValueKind.Array || pair.GetArrayLength() != 2 || pair[0].ValueKind != JsonValueKind.String || !pair[1].TryGetInt32(out int cls) || cls < 0)
                    throw new DatasetException($"'{ImageDataset.LabelsFile}' in '{source}': entry {pair.GetRawText()} is not a [\"file\", class >= 0] pair");
                map[pair[0].GetString()!.Replace('\\', '/')] = cls;
            }
            return map;
        }
        catch (Exception e) when (e is JsonException or InvalidOperationException)
        {
            throw new DatasetException($"'{ImageDataset.LabelsFile}' in '{source}' is not of the form {{\"labels\": [[\"file\", class], ...]}}: {e.Message}", e);
        }
    }

    /// <summary>Planar (C, r, r) bytes averaged over f x f blocks to (C, target, target), f = r / target, rounded half up.</summary>
    static byte[] BoxDownsample(byte[] chw, int c, int r, int target, string name)
    {
        if (r % target != 0)
            throw new DatasetException($"{name} is {r}x{r}; --filter box needs a resolution that divides it (e.g. {r / 2}), got {target}");
        int f = r / target, area = f * f;
        var result = new byte[c * target * target];
        for (int ch = 0; ch < c; ch++)
            for (int y = 0; y < target; y++)
                for (int x = 0; x < target; x++)
                {
                    int sum = 0;
                    for (int dy = 0; dy < f; dy++)
                        for (int dx = 0; dx < f; dx++) sum += chw[(ch * r + y * f + dy) * r + x * f + dx];
                    result[(ch * target + y) * target + x] = (byte)((2 * sum + area) / (2 * area));
                }
        return result;
    }

    /// <summary>Decodes any supported image, makes it square and of the requested size; planar (C, H, W) bytes.</summary>
    static (byte[] Chw, int C, int Resolution) LoadSquare(byte[] file, string name, int? resolution, SquareTransform transform)
    {
        Image img;
        SixLabors.ImageSharp.Formats.IImageFormat format;
        try { img = Image.Load(file, out format); }
        catch (Exception e) when (e is ImageFormatException or UnknownImageFormatException or InvalidImageContentException or NotSupportedException or InvalidDataException)
        {
            throw new DatasetException($"{name} is a corrupt or unsupported image: {e.Message}", e);
        }
        using (img)
        {
            bool gray = format switch
            {
                PngFormat => img.Metadata.GetPngMetadata().ColorType is PngColorType.Grayscale or PngColorType.GrayscaleWithAlpha,
                JpegFormat => img.Metadata.GetJpegMetadata().ColorType is JpegColorType.Luminance,
                _ => false,
            };
            if (transform == SquareTransform.CenterCrop)
            {
                int side = Math.Min(img.Width, img.Height);
                img.Mutate(m => m.Crop(new Rectangle((img.Width - side) / 2, (img.Height - side) / 2, side, side)));
            }
            else if (img.Width != img.Height)
                throw new DatasetException($"{name} is {img.Width}x{img.Height}, not square; use --transform center-crop");
            int r = resolution ?? img.Width;
            if (r != img.Width) img.Mutate(m => m.Resize(new ResizeOptions { Size = new Size(r, r), Sampler = KnownResamplers.Lanczos3, Mode = ResizeMode.Stretch }));

            if (gray)
            {
                using var l8 = img.CloneAs<L8>();
                var chw = new byte[r * r];
                l8.CopyPixelDataTo(chw);
                return (chw, 1, r);
            }
            using var rgb = img.CloneAs<Rgb24>(); // drops alpha, as edm expects RGB
            var px = new Rgb24[r * r];
            rgb.CopyPixelDataTo(px);
            var planar = new byte[3 * r * r];
            int plane = r * r;
            for (int i = 0; i < plane; i++) { planar[i] = px[i].R; planar[plane + i] = px[i].G; planar[2 * plane + i] = px[i].B; }
            return (planar, 3, r);
        }
    }
}

// Image datasets in NVlabs/edm's format: a folder (searched recursively) or a zip of PNG files,
// all square and of one size, all grayscale (C = 1) or all RGB (C = 3), with an optional
// dataset.json at the top:
//     {"labels": [["00000/img00000000.png", 6], ["00000/img00000001.png", 9], ...]}   or {"labels": null}
// Images are ordered by file name (ordinal, '/' separators). Class labels are integers >= 0; the
// number of classes (LabelDim) is max label + 1 and labels are fed to networks one-hot.
// Pixels map to float32 as x = b / 127.5 - 1 (ImageIO.ToFloat), layout (C, H, W).
//
// Open() reads every header (size, channels) so that a mixed dataset fails at once, naming the
// first offending file; pixels are decoded on demand, or all at open with preload (small datasets:
// MNIST at 32x32 is 10 MB of bytes).
using System.Text.Json;
using Edm.Kernels;

namespace Edm.Model.Data;

/// <summary>An image dataset in NVlabs/edm's layout (see the file header).</summary>
public sealed class ImageDataset : IDisposable
{
    /// <summary>Name of the optional labels file at the dataset's top level.</summary>
    public const string LabelsFile = "dataset.json";

    readonly FileSource _source;
    readonly string[] _files;
    readonly int[]? _labels;
    readonly byte[]? _pixels; // (Count, C, H, W) when preloaded

    /// <summary>The folder or zip this dataset was opened from.</summary>
    public string Path => _source.Path;
    /// <summary>Number of images.</summary>
    public int Count => _files.Length;
    /// <summary>Height = width of every image.</summary>
    public int Resolution { get; }
    /// <summary>Channels: 1 (grayscale) or 3 (RGB).</summary>
    public int Channels { get; }
    /// <summary>Number of classes (max label + 1); 0 for an unlabeled dataset.</summary>
    public int LabelDim { get; }
    /// <summary>Floats per image: C x H x W.</summary>
    public int ImageSize => Channels * Resolution * Resolution;
    /// <summary>True when every image was decoded at open.</summary>
    public bool IsPreloaded => _pixels is not null;
    /// <summary>Image file names relative to the dataset root, in dataset order.</summary>
    public IReadOnlyList<string> FileNames => _files;

    ImageDataset(FileSource source, string[] files, int resolution, int channels, int[]? labels, byte[]? pixels)
    {
        _source = source;
        _files = files;
        Resolution = resolution;
        Channels = channels;
        _labels = labels;
        LabelDim = labels is null ? 0 : labels.Max() + 1;
        _pixels = pixels;
    }

    /// <summary>
    /// Opens a dataset folder or zip. With <paramref name="preload"/> every image is decoded now (else on
    /// demand). Throws <see cref="DatasetException"/> for a missing or empty dataset, a file that is not
    /// a PNG or is corrupt, images of mixed sizes or channels or not square, and labels that do not
    /// match the images one to one; each message names the dataset and the first offending file.
    /// <paramref name="include"/>, when given, keeps only the PNG files (relative names) it accepts.
    /// </summary>
    public static ImageDataset Open(string path, bool preload = false, Func<string, bool>? include = null)
    {
        var source = FileSource.Open(path, "dataset");
        try
        {
            var files = source.Files.Where(f => f.EndsWith(".png", StringComparison.OrdinalIgnoreCase) && (include is null || include(f))).ToArray();
            if (files.Length == 0)
                throw new DatasetException($"dataset '{path}' holds no .png images" +
                    (source.Files.Count > 0 ? $" (it has {source.Files.Count} other files; convert other formats with `dataset convert`)" : ""));

            int res = 0, channels = 0;
            byte[]? pixels = null;
            for (int i = 0; i < files.Length; i++)
            {
                var name = Describe(path, files[i]);
                var bytes = source.Read(files[i]);
                var (c, h, w) = PngDecoding.Identify(bytes, name);
                if (h != w) throw new DatasetException($"{name} is {w}x{h}; dataset images must be square (crop with `dataset convert --transform center-crop`)");
                if (i == 0)
                {
                    res = h;
                    channels = c;
                    if (preload) pixels = new byte[(long)files.Length * c * h * w];
                }
                else if (h != res)
                    throw new DatasetException($"{name} is {w}x{h} but '{files[0]}' is {res}x{res}; all dataset images must have one size");
                else if (c != channels)
                    throw new DatasetException($"{name} has {c} channel(s) but '{files[0]}' has {channels}; all dataset images must be grayscale or all RGB");
                if (pixels is not null)
                {
                    int size = c * h * w;
                    PngDecoding.Decode(bytes, name, c, h, w, pixels.AsSpan(i * size, size));
                }
            }
            var labels = ReadLabels(source, path, files);
            return new ImageDataset(source, files, res, channels, labels, pixels);
        }
        catch
        {
            source.Dispose();
            throw;
        }
    }

    static string Describe(string dataset, string file) => $"'{file}' in dataset '{dataset}'";

    /// <summary>Fewest classes always allowed (ImageNet's 1,000 fit).</summary>
    public const int MinClassLimit = 1024;
    /// <summary>Classes allowed per image above <see cref="MinClassLimit"/>.</summary>
    public const int ClassesPerImage = 16;

    /// <summary>Most classes a dataset of <paramref name="images"/> images may have.</summary>
    public static int MaxClasses(int images) => (int)Math.Min(int.MaxValue, Math.Max(MinClassLimit, (long)ClassesPerImage * images));

    /// <summary>dataset.json -> one label per image in dataset order, or null when unlabeled.</summary>
    static int[]? ReadLabels(FileSource source, string path, string[] files)
    {
        if (!source.Files.Contains(LabelsFile)) return null;
        string where = $"'{LabelsFile}' in dataset '{path}'";
        var map = new Dictionary<string, int>(StringComparer.Ordinal);
        try
        {
            using var doc = JsonDocument.Parse(source.Read(LabelsFile));
            if (doc.RootElement.ValueKind != JsonValueKind.Object || !doc.RootElement.TryGetProperty("labels", out var labels))
                throw new DatasetException($"{where} has no \"labels\" entry (expected {{\"labels\": [[\"file.png\", class], ...]}} or {{\"labels\": null}})");
            if (labels.ValueKind == JsonValueKind.Null) return null;
            if (labels.ValueKind != JsonValueKind.Array) throw new DatasetException($"{where}: \"labels\" must be a list of [file, class] pairs or null");
            foreach (var pair in labels.EnumerateArray())
            {
                if (pair.ValueKind != JsonValueKind.Array || pair.GetArrayLength() != 2 || pair[0].ValueKind != JsonValueKind.String
                    || pair[1].ValueKind != JsonValueKind.Number || !pair[1].TryGetInt32(out int cls))
                    throw new DatasetException($"{where}: entry {pair.GetRawText()} is not a [\"file.png\", class] pair with an integer class");
                if (cls < 0) throw new DatasetException($"{where}: entry {pair.GetRawText()} has a negative class");
                var file = pair[0].GetString()!.Replace('\\', '/');
                if (!map.TryAdd(file, cls)) throw new DatasetException($"{where}: '{file}' is labelled twice");
            }
        }
        catch (JsonException e) { throw new DatasetException($"{where} is not valid JSON: {e.Message}", e); }
        catch (Exception e) when (e is ArgumentException or InvalidOperationException) { throw new DatasetException($"{where} is not UTF-8 JSON: {e.Message}", e); }

        var result = new int[files.Length];
        var unlabeled = new List<string>();
        for (int i = 0; i < files.Length; i++)
            if (!map.Remove(files[i], out result[i])) unlabeled.Add(files[i]);
        if (unlabeled.Count > 0)
            throw new DatasetException($"{where} gives no label for {unlabeled.Count} of the {files.Length} images, e.g. '{unlabeled[0]}'");
        if (map.Count > 0)
            throw new DatasetException($"{where} labels {map.Count} file(s) that are not images of the dataset, e.g. '{map.Keys.Order(StringComparer.Ordinal).First()}'");
        // Classes are one-hot inputs of a label_dim = max + 1 wide layer: a class far above the image
        // count is almost surely a mistake (an id, not a class index) and would build a huge layer.
        int max = result.Max(), limit = MaxClasses(files.Length);
        if (max >= limit)
            throw new DatasetException($"{where} has class {max} for {files.Length} images: classes must be indices 0..C-1 with C at most " +
                $"max({MinClassLimit}, {ClassesPerImage} x images) = {limit}; renumber the classes from 0");
        return result;
    }

    /// <summary>Writes image <paramref name="index"/> as (C, H, W) floats in [-1, 1] into <paramref name="dst"/> (length <see cref="ImageSize"/>).</summary>
    public void GetImage(int index, Span<float> dst)
    {
        CheckIndex(index);
        if (dst.Length != ImageSize) throw new ArgumentException($"GetImage: dst has {dst.Length} floats, an image has {ImageSize} ({Channels}, {Resolution}, {Resolution})");
        ReadOnlySpan<byte> bytes = _pixels is not null
            ? _pixels.AsSpan(index * ImageSize, ImageSize)
            : PngDecoding.Decode(_source.Read(_files[index]), Describe(Path, _files[index]), Channels, Resolution, Resolution);
        for (int i = 0; i < bytes.Length; i++) dst[i] = ImageIO.ToFloat(bytes[i]);
    }

    /// <summary>The class of image <paramref name="index"/>, or -1 for an unlabeled dataset.</summary>
    public int GetLabel(int index)
    {
        CheckIndex(index);
        return _labels is null ? -1 : _labels[index];
    }

    /// <summary>Writes the one-hot label of image <paramref name="index"/> (length <see cref="LabelDim"/>).</summary>
    public void GetOneHot(int index, Span<float> dst)
    {
        if (dst.Length != LabelDim) throw new ArgumentException($"GetOneHot: dst has {dst.Length} floats, LabelDim is {LabelDim}");
        int label = GetLabel(index);
        dst.Clear();
        if (label >= 0) dst[label] = 1f;
    }

    /// <summary>Decodes the images at <paramref name="indices"/> (in parallel) into host memory, (B, C, H, W).</summary>
    public float[] ReadImages(ReadOnlySpan<int> indices)
    {
        foreach (int i in indices) CheckIndex(i);
        var idx = indices.ToArray();
        int size = ImageSize;
        var host = new float[(long)idx.Length * size];
        Parallel.For(0, idx.Length, b => GetImage(idx[b], host.AsSpan(b * size, size)));
        return host;
    }

    /// <summary>A new device tensor (B, C, H, W) holding the images at <paramref name="indices"/>.</summary>
    public Tensor ImageBatch(EdmDevice device, ReadOnlySpan<int> indices)
    {
        if (indices.Length == 0) throw new ArgumentException("ImageBatch: indices is empty; a batch needs at least one image");
        return Tensor.FromArray(device, ReadImages(indices), indices.Length, Channels, Resolution, Resolution);
    }

    /// <summary>Fills an existing (B, C, H, W) tensor with the images at <paramref name="indices"/>.</summary>
    public void FillImages(ReadOnlySpan<int> indices, Tensor images) // (B, C, H, W)
    {
        Shapes.RequireEqual("ImageDataset.FillImages", "images", [indices.Length, Channels, Resolution, Resolution], images.Shape);
        images.CopyFrom(ReadImages(indices));
    }

    /// <summary>A new device tensor (B, LabelDim) of one-hot labels, or null for an unlabeled dataset.</summary>
    public Tensor? LabelBatch(EdmDevice device, ReadOnlySpan<int> indices)
    {
        if (LabelDim == 0) return null;
        if (indices.Length == 0) throw new ArgumentException("LabelBatch: indices is empty");
        var host = new float[indices.Length * LabelDim];
        for (int b = 0; b < indices.Length; b++) GetOneHot(indices[b], host.AsSpan(b * LabelDim, LabelDim));
        return Tensor.FromArray(device, host, indices.Length, LabelDim);
    }

    void CheckIndex(int index)
    {
        if ((uint)index >= (uint)Count) throw new ArgumentOutOfRangeException(nameof(index), index, $"image index must be in [0, {Count}) for dataset '{Path}'");
    }

    /// <inheritdoc/>
    public void Dispose() => _source.Dispose();

    /// <inheritdoc/>
    public override string ToString() =>
        $"{Count} images {Channels}x{Resolution}x{Resolution}{(LabelDim > 0 ? $", {LabelDim} classes" : ", unlabeled")} from '{Path}'";
}

// Writes a dataset zip in NVlabs/edm's layout, the one ImageDataset reads: PNGs named as edm's
// dataset_tool names them (image i -> "{i/1000:00000}/img{i:00000000}.png"), stored uncompressed
// (PNG data is already compressed), and dataset.json with {"labels": [[name, class], ...]} or
// {"labels": null}. The zip is written to a temporary file and renamed over the destination only
// by Commit (AtomicFile), so an interrupted conversion leaves no partial dataset.
using System.IO.Compression;
using System.Text.Json;
using Edm.Model.IO;

namespace Edm.Model.Data;

/// <summary>Builds a dataset zip image by image; nothing appears at the destination until <see cref="Commit"/>.</summary>
public sealed class DatasetZipWriter : IDisposable
{
    readonly AtomicWriter _file;
    readonly ZipArchive _zip;
    readonly List<(string Name, int? Label)> _entries = new();
    int _channels, _resolution;
    bool _closed;

    /// <summary>Number of images added.</summary>
    public int Count => _entries.Count;

    /// <summary>Starts a dataset zip that will replace <paramref name="dest"/> on <see cref="Commit"/>.</summary>
    public DatasetZipWriter(string dest)
    {
        _file = AtomicFile.Begin(dest);
        _zip = new ZipArchive(_file.Stream, ZipArchiveMode.Create, leaveOpen: true);
    }

    /// <summary>The archive name edm's dataset_tool gives image <paramref name="index"/>.</summary>
    public static string EntryName(int index)
    {
        string s = index.ToString("D8");
        return $"{s[..5]}/img{s}.png";
    }

    /// <summary>
    /// Adds one image: planar (C, H, W) bytes, square, C = 1 or 3, the same size and channels as the
    /// first image; <paramref name="label"/> a class >= 0, or null (then no image may have one).
    /// </summary>
    public void Add(ReadOnlySpan<byte> chw, int channels, int resolution, int? label)
    {
        if (_closed) throw new InvalidOperationException("DatasetZipWriter: already committed or disposed");
        if (channels is not (1 or 3)) throw new ArgumentException($"DatasetZipWriter.Add: channels must be 1 or 3, got {channels}");
        if (chw.Length != channels * resolution * resolution)
            throw new ArgumentException($"DatasetZipWriter.Add: {chw.Length} bytes given, ({channels}, {resolution}, {resolution}) needs {channels * resolution * resolution}");
        if (label < 0) throw new ArgumentException($"DatasetZipWriter.Add: label must be >= 0, got {label}");
        if (_entries.Count == 0) { _channels = channels; _resolution = resolution; }
        else if (channels != _channels || resolution != _resolution)
            throw new ArgumentException($"DatasetZipWriter.Add: image {_entries.Count} is {channels}x{resolution}x{resolution}, the first was {_channels}x{_resolution}x{_resolution}");
        else if (label.HasValue != _entries[0].Label.HasValue)
            throw new ArgumentException($"DatasetZipWriter.Add: image {_entries.Count} {(label.HasValue ? "has" : "lacks")} a label but the first image {(label.HasValue ? "lacks" : "has")} one; all or none must be labelled");
        string name = EntryName(_entries.Count);
        var entry = _zip.CreateEntry(name, CompressionLevel.NoCompression);
        using (var s = entry.Open()) ImageIO.EncodePng(s, chw.ToArray(), channels, resolution, resolution);
        _entries.Add((name, label));
    }

    /// <summary>Writes dataset.json, finishes the zip and renames it over the destination.</summary>
    public void Commit()
    {
        if (_closed) throw new InvalidOperationException("DatasetZipWriter: already committed or disposed");
        if (_entries.Count == 0) throw new InvalidOperationException("DatasetZipWriter: no images were added; an empty dataset is not written");
        var json = _zip.CreateEntry(ImageDataset.LabelsFile, CompressionLevel.Optimal);
        using (var s = json.Open())
        using (var j = new Utf8JsonWriter(s))
        {
            j.WriteStartObject();
            if (_entries[0].Label is null) j.WriteNull("labels");
            else
            {
                j.WriteStartArray("labels");
                foreach (var (name, label) in _entries)
                {
                    j.WriteStartArray();
                    j.WriteStringValue(name);
                    j.WriteNumberValue(label!.Value);
                    j.WriteEndArray();
                }
                j.WriteEndArray();
            }
            j.WriteEndObject();
        }
        _closed = true;
        _zip.Dispose(); // writes the central directory
        _file.Commit();
    }

    /// <summary>Discards the temporary file unless committed.</summary>
    public void Dispose()
    {
        if (!_closed)
        {
            _closed = true;
            try { _zip.Dispose(); }
            catch (IOException) { } // the temporary file is discarded anyway
        }
        _file.Dispose();
    }
}

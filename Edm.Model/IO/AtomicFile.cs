// Atomic file replacement for checkpoints, datasets and images: the bytes go to a temporary file in
// the target's folder (same file system, so the final rename is atomic), are flushed to disk, and
// only then renamed over the target. A crash or exception at any point leaves either the old file
// or the new one, never a torn mix, and no temporary file behind (except after a hard kill, when a
// stray ".name.tmp-*" may remain; it never replaces the target).
namespace Edm.Model.IO;

/// <summary>Writes files atomically: temporary file in the same folder, flush to disk, rename.</summary>
public static class AtomicFile
{
    /// <summary>
    /// Writes <paramref name="path"/> with <paramref name="write"/>, which receives a seekable stream.
    /// If <paramref name="write"/> throws, the previous file (if any) is untouched, the temporary
    /// file is deleted and the exception propagates.
    /// </summary>
    public static void Write(string path, Action<Stream> write)
    {
        using var w = Begin(path);
        write(w.Stream);
        w.Commit();
    }

    /// <summary>Writes the bytes atomically.</summary>
    public static void WriteAllBytes(string path, ReadOnlySpan<byte> bytes)
    {
        using var w = Begin(path);
        w.Stream.Write(bytes);
        w.Commit();
    }

    /// <summary>Writes the text (UTF-8, no byte-order mark) atomically.</summary>
    public static void WriteAllText(string path, string text) =>
        WriteAllBytes(path, new System.Text.UTF8Encoding(false).GetBytes(text));

    /// <summary>
    /// Starts an atomic write for callers that produce the file over time (e.g. a zip written entry
    /// by entry): write to <see cref="AtomicWriter.Stream"/>, then <see cref="AtomicWriter.Commit"/>.
    /// Disposing without committing discards the temporary file and keeps the old one.
    /// </summary>
    public static AtomicWriter Begin(string path) => new(path);
}

/// <summary>An atomic write in progress (see <see cref="AtomicFile.Begin"/>).</summary>
public sealed class AtomicWriter : IDisposable
{
    readonly string _target;
    readonly string _temp;
    FileStream? _stream;
    bool _done;

    internal AtomicWriter(string path)
    {
        _target = Path.GetFullPath(path);
        if (Directory.Exists(_target)) throw new IOException($"cannot write '{path}': it is a directory");
        var dir = Path.GetDirectoryName(_target)!;
        // Hidden, unique per process and call, in the target's folder so the rename stays on one file system.
        _temp = Path.Combine(dir, $".{Path.GetFileName(_target)}.tmp-{Environment.ProcessId}-{Guid.NewGuid():N}");
        try
        {
            Directory.CreateDirectory(dir);
            _stream = new FileStream(_temp, FileMode.CreateNew, FileAccess.ReadWrite, FileShare.None);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            throw new IOException($"cannot write '{path}': {e.Message}", e);
        }
    }

    /// <summary>The full path that <see cref="Commit"/> replaces.</summary>
    public string TargetPath => _target;

    /// <summary>The temporary file's stream (seekable, readable, writable).</summary>
    public Stream Stream => _stream ?? throw new ObjectDisposedException(nameof(AtomicWriter), "the atomic write was already committed or discarded");

    /// <summary>Flushes the temporary file to disk and renames it over the target.</summary>
    public void Commit()
    {
        if (_done || _stream is null) throw new InvalidOperationException($"atomic write of '{_target}' was already committed or discarded");
        try
        {
            // Flush(true) asks the OS to write the data to the device (fsync), so a power loss
            // after the rename cannot leave a renamed but empty file.
            _stream.Flush(flushToDisk: true);
            _stream.Dispose();
            _stream = null;
            File.Move(_temp, _target, overwrite: true);
            _done = true;
        }
        catch
        {
            Discard();
            throw;
        }
    }

    void Discard()
    {
        _done = true;
        _stream?.Dispose();
        _stream = null;
        try { File.Delete(_temp); }
        catch (IOException) { } // best effort: the target is intact either way
        catch (UnauthorizedAccessException) { }
    }

    /// <summary>Discards the temporary file unless committed.</summary>
    public void Dispose()
    {
        if (!_done) Discard();
    }
}

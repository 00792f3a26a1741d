// A folder (searched recursively) or a zip archive, seen as a sorted list of relative file names
// ('/' separators, ordinal order, as edm's loader sorts them) whose bytes can be read. Zip reads
// are serialised (ZipArchive is not thread-safe); decoding happens outside the lock.
using System.IO.Compression;

namespace Edm.Model.Data;

internal abstract class FileSource : IDisposable
{
    /// <summary>The path given by the user (for messages).</summary>
    public string Path { get; }
    /// <summary>Every file, relative, sorted ordinally.</summary>
    public IReadOnlyList<string> Files { get; }

    protected FileSource(string path, List<string> files)
    {
        Path = path;
        files.Sort(StringComparer.Ordinal);
        Files = files;
    }

    public abstract byte[] Read(string relative);
    public abstract void Dispose();

    /// <summary>Opens a folder or a zip; a missing path or a file that is not a zip is a <see cref="DatasetException"/>.</summary>
    public static FileSource Open(string path, string what)
    {
        if (Directory.Exists(path)) return new FolderSource(path);
        if (!File.Exists(path)) throw new DatasetException($"{what} '{path}' does not exist (expected a folder or a .zip file)");
        return new ZipSource(path, what);
    }

    sealed class FolderSource : FileSource
    {
        public FolderSource(string path) : base(path, Directory.EnumerateFiles(path, "*", SearchOption.AllDirectories)
            .Select(f => System.IO.Path.GetRelativePath(path, f).Replace('\\', '/')).ToList()) { }

        public override byte[] Read(string relative) => File.ReadAllBytes(System.IO.Path.Combine(Path, relative));
        public override void Dispose() { }
    }

    sealed class ZipSource : FileSource
    {
        readonly ZipArchive _zip;
        readonly Dictionary<string, ZipArchiveEntry> _entries;

        ZipSource(string path, ZipArchive zip, Dictionary<string, ZipArchiveEntry> entries) : base(path, entries.Keys.ToList())
        {
            _zip = zip;
            _entries = entries;
        }

        public ZipSource(string path, string what) : this(path, OpenZip(path, what, out var e), e) { }

        static ZipArchive OpenZip(string path, string what, out Dictionary<string, ZipArchiveEntry> entries)
        {
            try
            {
                var zip = ZipFile.OpenRead(path);
                entries = new Dictionary<string, ZipArchiveEntry>(StringComparer.Ordinal);
                foreach (var e in zip.Entries)
                    if (!e.FullName.EndsWith('/')) entries[e.FullName.Replace('\\', '/')] = e; // skip folder entries
                return zip;
            }
            catch (InvalidDataException e)
            {
                throw new DatasetException($"{what} '{path}' is neither a folder nor a readable zip file: {e.Message}", e);
            }
        }

        public override byte[] Read(string relative)
        {
            lock (_zip)
            {
                var e = _entries[relative];
                try
                {
                    using var s = e.Open();
                    var buf = new byte[e.Length];
                    s.ReadExactly(buf);
                    return buf;
                }
                catch (InvalidDataException ex)
                {
                    throw new DatasetException($"'{relative}' in '{Path}' cannot be read from the zip: {ex.Message}", ex);
                }
            }
        }

        public override void Dispose() => _zip.Dispose();
    }
}

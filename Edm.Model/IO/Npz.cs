// NumPy's .npz archives of float arrays, as `numpy.savez` writes them and `numpy.load` reads them:
// a zip (entries stored, not deflated) of one .npy file per array, "NAME.npy". A .npy file (format
// version 1.0) is the magic "\x93NUMPY", the version bytes 1 0, a little-endian uint16 header
// length, and an ASCII header, a Python dict literal such as
//   {'descr': '<f8', 'fortran_order': False, 'shape': (2048, 2048), }
// padded with spaces and ended by "\n" so that the data starts at a multiple of 64 bytes, then the
// data in C order. NVlabs/edm's FID reference statistics are such files (float64 `mu` and `sigma`).
// Reading accepts little-endian float64 and float32 ('<f8', '<f4'), C order, version 1.0 to 3.0
// headers; anything else is an InvalidDataException naming the file, the entry and what was found.
using System.Globalization;
using System.IO.Compression;
using System.Text;
using System.Text.RegularExpressions;

namespace Edm.Model.IO;

/// <summary>Reads and writes .npz archives of float64 arrays.</summary>
public static partial class Npz
{
    /// <summary>An array: its shape (C order) and its values.</summary>
    public sealed record NdArray(int[] Shape, double[] Data);

    /// <summary>Writes the arrays atomically as an uncompressed .npz (numpy.savez's layout).</summary>
    public static void Write(string path, IReadOnlyDictionary<string, NdArray> arrays) =>
        AtomicFile.Write(path, stream =>
        {
            using var zip = new ZipArchive(stream, ZipArchiveMode.Create, leaveOpen: true);
            foreach (var (name, array) in arrays)
            {
                var entry = zip.CreateEntry(name + ".npy", CompressionLevel.NoCompression);
                using var s = entry.Open();
                s.Write(NpyBytes(array));
            }
        });

    /// <summary>The bytes of one .npy file (format 1.0, '&lt;f8', C order).</summary>
    public static byte[] NpyBytes(NdArray a)
    {
        long count = a.Shape.Aggregate(1L, (p, d) => p * d);
        if (count != a.Data.Length) throw new ArgumentException($"Npz: shape ({string.Join(", ", a.Shape)}) holds {count} values, the data has {a.Data.Length}");
        string shape = a.Shape.Length == 1 ? $"({a.Shape[0]},)" : $"({string.Join(", ", a.Shape)})";
        string dict = $"{{'descr': '<f8', 'fortran_order': False, 'shape': {shape}, }}";
        int unpadded = 10 + dict.Length + 1;                  // magic + version + length, the dict, "\n"
        int total = (unpadded + 63) / 64 * 64;
        string header = dict + new string(' ', total - unpadded) + "\n";
        var bytes = new byte[total + 8L * a.Data.Length];
        bytes[0] = 0x93;
        Encoding.ASCII.GetBytes("NUMPY").CopyTo(bytes, 1);
        bytes[6] = 1;
        bytes[7] = 0;
        BitConverter.TryWriteBytes(bytes.AsSpan(8, 2), (ushort)header.Length);
        Encoding.ASCII.GetBytes(header).CopyTo(bytes, 10);
        for (int i = 0; i < a.Data.Length; i++) BitConverter.TryWriteBytes(bytes.AsSpan(total + 8 * i, 8), a.Data[i]);
        return bytes;
    }

    /// <summary>Reads every array of a .npz file, by name (without ".npy").</summary>
    public static Dictionary<string, NdArray> Read(string path)
    {
        if (Directory.Exists(path)) throw new InvalidDataException($"'{path}' is a folder; give a .npz file");
        if (!File.Exists(path)) throw new FileNotFoundException($"'{path}' does not exist", path);
        var result = new Dictionary<string, NdArray>(StringComparer.Ordinal);
        try
        {
            using var zip = ZipFile.OpenRead(path);
            foreach (var entry in zip.Entries)
            {
                if (!entry.Name.EndsWith(".npy", StringComparison.Ordinal)) continue;
                using var s = entry.Open();
                using var ms = new MemoryStream();
                s.CopyTo(ms);
                result[entry.Name[..^4]] = ParseNpy(ms.ToArray(), $"'{path}' entry '{entry.FullName}'");
            }
        }
        catch (InvalidDataException e) when (!e.Message.StartsWith('\'')) { throw new InvalidDataException($"'{path}' is not a readable .npz (zip) file: {e.Message}", e); }
        return result;
    }

    [GeneratedRegex(@"'descr':\s*'([^']*)'")]
    private static partial Regex Descr();
    [GeneratedRegex(@"'fortran_order':\s*(True|False)")]
    private static partial Regex FortranOrder();
    [GeneratedRegex(@"'shape':\s*\(([^)]*)\)")]
    private static partial Regex ShapeRe();

    /// <summary>Parses one .npy file; <paramref name="where"/> names it in errors.</summary>
    public static NdArray ParseNpy(byte[] b, string where)
    {
        if (b.Length < 10 || b[0] != 0x93 || Encoding.ASCII.GetString(b, 1, 5) != "NUMPY") throw new InvalidDataException($"{where} is not a .npy array (no \\x93NUMPY magic)");
        int major = b[6];
        int headerLength, offset;
        if (major == 1) { headerLength = BitConverter.ToUInt16(b, 8); offset = 10; }
        else if (major is 2 or 3) { headerLength = b.Length >= 12 ? (int)Math.Min(BitConverter.ToUInt32(b, 8), int.MaxValue) : -1; offset = 12; }
        else throw new InvalidDataException($"{where}: .npy format version {major}.{b[7]} is not supported (1.0 to 3.0 are)");
        if (headerLength < 0 || offset + (long)headerLength > b.Length) throw new InvalidDataException($"{where}: the header runs past the end of the file (truncated?)");
        string header = Encoding.UTF8.GetString(b, offset, headerLength);
        var descr = Descr().Match(header);
        var fortran = FortranOrder().Match(header);
        var shapeMatch = ShapeRe().Match(header);
        if (!descr.Success || !fortran.Success || !shapeMatch.Success) throw new InvalidDataException($"{where}: header {header.Trim()} lacks descr, fortran_order or shape");
        if (fortran.Groups[1].Value == "True") throw new InvalidDataException($"{where}: Fortran-order arrays are not supported; save it in C order");
        int size = descr.Groups[1].Value switch
        {
            "<f8" => 8,
            "<f4" => 4,
            var d => throw new InvalidDataException($"{where}: dtype '{d}' is not supported; allowed: '<f8' (float64), '<f4' (float32)"),
        };
        var dims = shapeMatch.Groups[1].Value.Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries);
        var shape = new int[dims.Length];
        long count = 1;
        for (int i = 0; i < dims.Length; i++)
        {
            if (!int.TryParse(dims[i], NumberStyles.None, CultureInfo.InvariantCulture, out shape[i]))
                throw new InvalidDataException($"{where}: shape entry '{dims[i]}' is not a size");
            count *= shape[i];
        }
        long start = offset + headerLength;
        if (count > int.MaxValue || start + count * size != b.Length)
            throw new InvalidDataException($"{where}: shape ({string.Join(", ", shape)}) needs {count * size} data bytes, the file has {b.Length - start} (truncated?)");
        var data = new double[count];
        for (long i = 0; i < count; i++)
            data[i] = size == 8 ? BitConverter.ToDouble(b, (int)(start + 8 * i)) : BitConverter.ToSingle(b, (int)(start + 4 * i));
        return new NdArray(shape, data);
    }
}

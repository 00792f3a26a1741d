// `compare A.json B.json`: joins two `kernels --json` files (ours, or bench/torch_baseline.py's,
// which writes the same schema) on (op, shape) and prints, per row, both median times and
// B's time / A's time: A's speed relative to B (2.0 = A twice as fast as B, 0.5 = half as fast).
// Rows present in only one file are listed after the table. Missing, unreadable or malformed files
// and files with no row in common are usage errors (one line, exit code 2).
// No --device: the command reads files only.
using System.CommandLine;
using System.Globalization;
using System.Text.Json;

namespace Edm.Bench.Cli;

/// <summary>The compare command.</summary>
public sealed class CompareCommand : IBenchCommand
{
    /// <summary>One timed row read from a bench JSON file.</summary>
    public sealed record Row(string Op, string Shape, string Device, double MedianMs);

    /// <inheritdoc/>
    public Command Build()
    {
        var a = new Argument<string>("A.json") { Description = "First kernels JSON file (e.g. ours)" };
        var b = new Argument<string>("B.json") { Description = "Second kernels JSON file (e.g. PyTorch's)" };
        var cmd = new Command("compare", "Join two kernels --json files on (op, shape) and print B's time / A's time (A's speed relative to B)");
        cmd.Arguments.Add(a);
        cmd.Arguments.Add(b);
        cmd.SetAction(p => CliErrors.Guard(() => Run(p.GetValue(a)!, p.GetValue(b)!, Console.Out)));
        return cmd;
    }

    /// <summary>Prints the joined table to <paramref name="output"/>; returns 0.</summary>
    public static int Run(string pathA, string pathB, TextWriter output)
    {
        var rowsA = Load(pathA);
        var rowsB = Load(pathB);
        var byKeyB = new Dictionary<(string, string), Row>();
        foreach (var r in rowsB) byKeyB[(r.Op, r.Shape)] = r;
        var joined = rowsA.Where(r => byKeyB.ContainsKey((r.Op, r.Shape))).Select(r => (A: r, B: byKeyB[(r.Op, r.Shape)])).ToList();
        if (joined.Count == 0)
            throw new UsageException($"'{pathA}' ({rowsA.Count} rows) and '{pathB}' ({rowsB.Count} rows) have no (op, shape) in common; " +
                                     $"ops in A: {string.Join(", ", rowsA.Select(r => r.Op).Distinct())}; ops in B: {string.Join(", ", rowsB.Select(r => r.Op).Distinct())}");
        string devA = string.Join("/", rowsA.Select(r => r.Device).Distinct()), devB = string.Join("/", rowsB.Select(r => r.Device).Distinct());
        output.WriteLine($"A = {pathA} ({devA}), B = {pathB} ({devB})");
        output.WriteLine("B/A = B's time / A's time: A's speed relative to B (> 1: A faster)");
        output.WriteLine($"{"op",-20} {"shape",-30} {"A ms",10} {"B ms",10} {"B/A",7}");
        var ratios = new List<double>();
        foreach (var (ra, rb) in joined)
        {
            double ratio = rb.MedianMs / ra.MedianMs;
            if (double.IsFinite(ratio) && ratio > 0) ratios.Add(ratio);
            output.WriteLine($"{ra.Op,-20} {ra.Shape,-30} {F(ra.MedianMs),10} {F(rb.MedianMs),10} {F(ratio, "F2"),7}");
        }
        if (ratios.Count > 0)
            output.WriteLine($"geometric mean of B/A over {ratios.Count} rows: {Math.Exp(ratios.Average(Math.Log)):F2}");
        var keysA = rowsA.Select(r => (r.Op, r.Shape)).ToHashSet();
        foreach (var r in rowsA.Where(r => !byKeyB.ContainsKey((r.Op, r.Shape)))) output.WriteLine($"only in A: {r.Op} {r.Shape}");
        foreach (var r in rowsB.Where(r => !keysA.Contains((r.Op, r.Shape)))) output.WriteLine($"only in B: {r.Op} {r.Shape}");
        return 0;
    }

    static string F(double v, string format = "F3") => double.IsFinite(v) ? v.ToString(format, CultureInfo.InvariantCulture) : "-";

    /// <summary>Reads a JSON array of bench rows; throws <see cref="UsageException"/> naming the file and the problem.</summary>
    public static List<Row> Load(string path)
    {
        string text;
        try { text = File.ReadAllText(path, new System.Text.UTF8Encoding(false, throwOnInvalidBytes: true)); }
        catch (System.Text.DecoderFallbackException) { throw new UsageException($"'{path}' is not UTF-8 text (not a JSON file written by `kernels --json`?)"); }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException or ArgumentException or NotSupportedException)
        {
            throw new UsageException(Directory.Exists(path) ? $"'{path}' is a folder; give a JSON file written by `kernels --json`" : $"cannot read '{path}': {e.Message}");
        }
        JsonDocument doc;
        try { doc = JsonDocument.Parse(text); }
        catch (JsonException e) { throw new UsageException($"'{path}' is not valid JSON: {e.Message}"); }
        using (doc)
        {
            if (doc.RootElement.ValueKind != JsonValueKind.Array)
                throw new UsageException($"'{path}' is not a kernels JSON file: expected an array of rows, found a {doc.RootElement.ValueKind}");
            var rows = new List<Row>();
            int i = 0;
            foreach (var e in doc.RootElement.EnumerateArray())
            {
                if (e.ValueKind != JsonValueKind.Object
                    || !e.TryGetProperty("op", out var op) || op.ValueKind != JsonValueKind.String
                    || !e.TryGetProperty("shape", out var shape) || shape.ValueKind != JsonValueKind.String
                    || !e.TryGetProperty("median_ms", out var ms) || !TryNumber(ms, out double median))
                    throw new UsageException($"'{path}': row {i} lacks a string \"op\", a string \"shape\" or a numeric \"median_ms\"");
                if (!(median > 0) || double.IsInfinity(median))
                    throw new UsageException($"'{path}': row {i} ({op.GetString()} {shape.GetString()}) has median_ms {median.ToString(CultureInfo.InvariantCulture)}; a time must be a positive finite number");
                string device = e.TryGetProperty("device", out var dv) && dv.ValueKind == JsonValueKind.String ? dv.GetString()! : "?";
                rows.Add(new Row(op.GetString()!, shape.GetString()!, device, median));
                i++;
            }
            if (rows.Count == 0) throw new UsageException($"'{path}' has no rows");
            return rows;
        }
    }

    /// Numbers, and the "NaN"/"Infinity" strings our JSON writer uses for non-finite values.
    static bool TryNumber(JsonElement e, out double value)
    {
        if (e.ValueKind == JsonValueKind.Number) return e.TryGetDouble(out value);
        if (e.ValueKind == JsonValueKind.String && double.TryParse(e.GetString(), NumberStyles.Float, CultureInfo.InvariantCulture, out value)) return true;
        value = double.NaN;
        return false;
    }
}

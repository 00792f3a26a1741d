// `verify`: every kernel of the engine on the selected device against a float64 reference.
using System.CommandLine;
using System.Text.Json;
using Edm.Verification;
using Edm.Kernels;

namespace Edm.Bench.Cli;

/// <summary>The verify command.</summary>
public sealed class VerifyCommand : IBenchCommand
{
    /// <inheritdoc/>
    public Command Build()
    {
        var device = CommonOptions.Device();
        var json = CommonOptions.Json();
        var kernelsOnly = new Option<bool>("--no-fast-paths") { Description = "On the CPU accelerator, check the ILGPU kernels instead of the C# fast paths (slow)" };
        var cmd = new Command("verify", "Run every kernel against a float64 reference on random data; exit 1 if any fails");
        cmd.Options.Add(device); cmd.Options.Add(json); cmd.Options.Add(kernelsOnly);
        cmd.SetAction(p => CliErrors.Guard(() => Run(p.GetValue(device), p.GetValue(json), p.GetValue(kernelsOnly))));
        return cmd;
    }

    /// <summary>Runs all suites, prints the table, returns 0 if all pass.</summary>
    public static int Run(string? deviceSpec, string? jsonPath, bool noFastPaths = false)
    {
        CommonOptions.RequireWritable(jsonPath, "--json");
        using var dev = CommonOptions.OpenDevice(deviceSpec);
        dev.CpuFastPaths = !noFastPaths;
        Console.WriteLine($"verify on {dev}{(dev.IsCpu ? (dev.CpuFastPaths ? " (CPU fast paths)" : " (ILGPU kernels)") : "")}");
        Console.WriteLine($"{"kernel",-24} {"shapes",-40} {"max abs err",12} {"max rel err",12} {"tol",9}  result");
        var rows = new List<VerifyRow>();
        foreach (var suite in VerifySuites.All())
        {
            // Row by row: a row that throws keeps the rows before it and ends its suite.
            var results = new List<VerifyRow>();
            try
            {
                foreach (var r in suite.Run(dev)) results.Add(r);
            }
            catch (Exception e) when (e is not UsageException)
            {
                results.Add(new VerifyRow(suite.Family, "-", double.NaN, double.NaN, 0, false,
                    $"threw {e.GetType().Name} after {results.Count} row(s) of the suite: {e.Message}"));
            }
            foreach (var r in results)
            {
                rows.Add(r);
                Console.WriteLine($"{suite.Family + "/" + r.Name,-24} {r.Shapes,-40} {r.MaxAbsError,12:E2} {r.MaxRelError,12:E2} {r.Tolerance,9:E1}  " +
                                  $"{(r.Passed ? "pass" : "FAIL")}{(r.Note is null ? "" : "  " + r.Note)}");
            }
            // After every suite, so that a run stopped by a timeout keeps the rows it has.
            if (jsonPath is not null)
                CommonOptions.WriteAtomic(jsonPath, JsonSerializer.Serialize(new { device = dev.Spec, name = dev.Name, complete = false, rows }, JsonOpts.Indented));
        }
        int failed = rows.Count(r => !r.Passed);
        Console.WriteLine($"{rows.Count - failed} passed, {failed} failed");
        if (jsonPath is not null)
            CommonOptions.WriteAtomic(jsonPath, JsonSerializer.Serialize(new { device = dev.Spec, name = dev.Name, complete = true, rows }, JsonOpts.Indented));
        return failed == 0 ? 0 : 1;
    }
}

/// <summary>Shared JSON settings.</summary>
public static class JsonOpts
{
    /// <summary>Indented, camel-case-free (property names as declared, lower-cased by records where needed).</summary>
    public static readonly JsonSerializerOptions Indented = new() { WriteIndented = true, NumberHandling = System.Text.Json.Serialization.JsonNumberHandling.AllowNamedFloatingPointLiterals };
}

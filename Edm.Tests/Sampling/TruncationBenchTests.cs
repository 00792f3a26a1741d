using System.Text.Json;
using Edm.Verification;
using Xunit;

namespace Edm.Tests.Sampling;

// The `truncation` command: bad input is exit code 2 with the allowed values, a small run writes
// the summary.json schema of issue 5, and the committed reference curves are what the host
// reference computes today.
public sealed class TruncationBenchTests
{
    static (int Code, string Out, string Err) Run(params string[] args) => CliProcess.Run(["truncation", .. args]);

    [Theory]
    [InlineData("--steps", "0", "N >= 1")]
    [InlineData("--sigma-min", "90", "sigma_max")]
    [InlineData("--rho", "0", "rho > 0")]
    [InlineData("--local-rhos", "1,-2", "rho > 0")]
    [InlineData("--solvers", "euler,rk4", "euler, heun, midpoint, ralston, euler_ancestral, dpm_2, dpmpp_2m, lms")]
    [InlineData("--discretizations", "cosine", "vp, ve, iddpm, edm")]
    [InlineData("--dataset", "mnist", "gaussian, mixture, points")]
    [InlineData("--dim", "2000000000", "does not fit in memory")]
    [InlineData("--device", "cuda:7", "cpu")]
    public void BadInputIsExitTwoWithTheAllowedValues(string option, string value, string allowed)
    {
        var (code, _, err) = Run(option, value, "--no-plots", "--out", Path.Combine(Path.GetTempPath(), "edm-trunc-bad"));
        Assert.Equal(2, code);
        Assert.Contains(allowed, err);
        Assert.DoesNotContain("   at ", err);
    }

    [Fact]
    public void UnknownOptionIsExitTwo() => Assert.Equal(2, Run("--nosuchoption").Code);

    [Fact]
    public void SmallRunWritesTheSummarySchema()
    {
        string dir = Path.Combine(Path.GetTempPath(), $"edm-trunc-{Environment.ProcessId}");
        var (code, output, err) = Run("--device", "cpu", "--dataset", "gaussian,points", "--dim", "3", "--count", "5", "--batch", "2",
            "--solvers", "euler,heun,lms", "--discretizations", "edm,vp", "--steps", "4,8", "--local-rhos", "3,7", "--local-steps", "4",
            "--out", dir);
        Assert.True(code == 0, err + output);
        using var doc = JsonDocument.Parse(File.ReadAllText(Path.Combine(dir, "summary.json")));
        var root = doc.RootElement;
        Assert.Contains("cpu", root.GetProperty("device").GetString());
        var global = root.GetProperty("global").EnumerateArray().ToList();
        Assert.Equal(2 * 3 * 2 * 2, global.Count);
        foreach (var key in new[] { "dataset", "solver", "discretization", "rho", "steps", "nfe", "rms_error" })
            Assert.True(global[0].TryGetProperty(key, out _), key);
        Assert.Contains(global, g => g.GetProperty("solver").GetString() == "heun" && g.GetProperty("steps").GetInt32() == 8 && g.GetProperty("nfe").GetInt32() == 15);
        Assert.All(root.GetProperty("order").EnumerateArray(), o => Assert.True(o.TryGetProperty("dataset", out _) && o.TryGetProperty("order", out _)));
        var local = root.GetProperty("local").EnumerateArray().ToList();
        Assert.Equal(2 * 2 * 2 * 4, local.Count);
        foreach (var key in new[] { "dataset", "solver", "rho", "sigma", "error" })
            Assert.True(local[0].TryGetProperty(key, out _), key);
        Assert.True(root.TryGetProperty("reference_max_rel_deviation", out _));
        Assert.True(File.Exists(Path.Combine(dir, "global_gaussian.csv")));
        Assert.True(File.Exists(Path.Combine(dir, "local_points_heun.png")));
        Assert.Contains("Global error", output);
        Directory.Delete(dir, true);
    }

    static string? ReferenceFolder()
    {
        for (var d = new DirectoryInfo(AppContext.BaseDirectory); d is not null; d = d.Parent)
        {
            string c = Path.Combine(d.FullName, TruncationConfig.ReferenceFolder);
            if (Directory.Exists(c)) return c;
        }
        return null;
    }

    [Fact]
    public void CommittedReferenceCurvesAreReproducedForGaussian()
    {
        string? dir = ReferenceFolder();
        Assert.NotNull(dir);
        var cfg = new TruncationConfig { Datasets = ["gaussian"] };
        Assert.Equal(cfg.Signature(), File.ReadAllText(Path.Combine(dir!, "config.txt")).Trim());
        var fresh = HostTruncation.Compute(cfg);
        var committed = CurveSet.ReadCsv(dir!);
        var cmp = ReferenceComparison.Compare(fresh, committed);
        Assert.Equal(0, cmp.Missing);
        Assert.True(cmp.MaxRelDeviation < 1e-9, $"committed curves differ from the host reference: {cmp.MaxRelDeviation} at {cmp.Worst}");
    }
}

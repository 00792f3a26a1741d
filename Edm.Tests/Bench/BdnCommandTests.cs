using Xunit;

namespace Edm.Tests.Bench;

// `bdn` (Edm.Bench/Cli/BdnCommand.cs): BenchmarkDotNet lists our benchmark classes without running
// them, and a call that would select nothing is one error line and exit 2 (never the interactive
// prompt BenchmarkDotNet shows when it gets no filter).
public sealed class BdnCommandTests
{
    [Fact]
    public void List_flat_names_every_benchmark_and_runs_none()
    {
        var (code, output, err) = CliProcess.Run("bdn", "--list", "flat");
        Assert.True(code == 0, err);
        foreach (var name in new[]
        {
            "Edm.Bench.Bdn.GemmBenchmarks.Gemm512", "Edm.Bench.Bdn.Conv2dBenchmarks.Conv2dForward", "Edm.Bench.Bdn.Conv2dBenchmarks.Conv2dBackward",
            "Edm.Bench.Bdn.GroupNormBenchmarks.GroupNormForward", "Edm.Bench.Bdn.ActivationBenchmarks.Gelu", "Edm.Bench.Bdn.ActivationBenchmarks.Silu",
            "Edm.Bench.Bdn.AdamBenchmarks.Adam1M", "Edm.Bench.Bdn.TinyStepBenchmarks.TrainStep16",
        })
            Assert.Contains(name, output);
        Assert.DoesNotContain("// * Summary *", output);
    }

    [Fact]
    public void List_with_a_filter_names_only_the_matches()
    {
        var (code, output, _) = CliProcess.Run("bdn", "--list", "flat", "--filter", "*Gemm*");
        Assert.Equal(0, code);
        Assert.Contains("Edm.Bench.Bdn.GemmBenchmarks.Gemm512", output);
        Assert.DoesNotContain("Conv2dBenchmarks", output);
    }

    [Fact]
    public void No_filter_or_a_filter_that_matches_nothing_is_exit_2()
    {
        var (code, _, err) = CliProcess.Run("bdn");
        Assert.Equal(2, code);
        Assert.StartsWith("error: bdn needs --filter", err);
        (code, _, err) = CliProcess.Run("bdn", "--filter", "*NoSuchBenchmark*");
        Assert.Equal(2, code);
        Assert.Contains("ran no benchmark", err);
    }
}

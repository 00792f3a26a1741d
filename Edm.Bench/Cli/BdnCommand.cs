// `bdn`: BenchmarkDotNet over the [Benchmark] classes of Edm.Bench/Bdn/ (single kernels and the tiny
// training step on the CPU accelerator). Every argument after `bdn` goes to BenchmarkDotNet's own
// command line: `--filter GLOB` (matched against Namespace.Class.Method, e.g. '*Gemm*',
// '*Conv2dBenchmarks.Conv2dBackward', '*' for all), `--list flat` or `--list tree` (names only,
// nothing runs), `--job short|medium|long|dry`, and the rest of BDN's options (`bdn --help`
// prints ours; BDN's are at its documentation's console-arguments page). The benchmarks always run
// in this process (InProcessEmitToolchain, BDN's `--inProcess`): no project is generated or built.
// Results go to out/bdn/ (BDN's artifacts: Markdown, CSV and HTML reports, the log).
using System.CommandLine;
using BenchmarkDotNet.Configs;
using BenchmarkDotNet.Running;

namespace Edm.Bench.Cli;

/// <summary>The bdn command.</summary>
public sealed class BdnCommand : IBenchCommand
{
    /// <summary>Where BenchmarkDotNet writes its reports.</summary>
    public const string ArtifactsPath = "out/bdn";

    /// <inheritdoc/>
    public Command Build()
    {
        var cmd = new Command("bdn",
            "BenchmarkDotNet over single kernels and the tiny training step (CPU, in process). Arguments go to BenchmarkDotNet: " +
            "--filter GLOB (e.g. '*Gemm*', '*' for all), --list flat|tree (names only), --job short|medium|long|dry; reports in out/bdn/")
        {
            TreatUnmatchedTokensAsErrors = false,
        };
        cmd.SetAction(p => CliErrors.Guard(() => Run(p.UnmatchedTokens.ToArray())));
        return cmd;
    }

    /// <summary>
    /// Runs BenchmarkDotNet with <paramref name="args"/>. Returns 0 when it ran (or listed) benchmarks,
    /// 1 when one of them failed, 2 when the arguments select nothing or BenchmarkDotNet rejected them.
    /// </summary>
    public static int Run(string[] args)
    {
        bool listing = args.Any(a => a.Equals("--list", StringComparison.OrdinalIgnoreCase));
        if (!listing && !args.Any(a => a.Equals("--filter", StringComparison.OrdinalIgnoreCase) || a == "-f"))
            throw new UsageException("bdn needs --filter GLOB (e.g. --filter '*Gemm*', or '*' for every benchmark) or --list flat; " +
                                     "BenchmarkDotNet would otherwise ask on the console which to run");
        var config = DefaultConfig.Instance.WithArtifactsPath(Path.GetFullPath(ArtifactsPath));
        // In process: the benchmarks run in this (Release) process, nothing is generated or built.
        string[] bdnArgs = args.Any(a => a.Equals("--inProcess", StringComparison.OrdinalIgnoreCase) || a == "-i") ? args : [.. args, "--inProcess"];
        var summaries = BenchmarkSwitcher.FromAssembly(typeof(BdnCommand).Assembly).Run(bdnArgs, config).ToList();
        if (listing) return 0;
        if (summaries.Count == 0)
            throw new UsageException($"BenchmarkDotNet ran no benchmark for '{string.Join(' ', args)}' (see its message above; `bdn --list flat` names them)");
        return summaries.Any(s => s.HasCriticalValidationErrors || s.Reports.Any(r => !r.Success)) ? 1 : 0;
    }
}

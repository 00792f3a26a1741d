// The `kernels` micro-benchmark's building blocks: each op family contributes one IKernelBench
// (a file in Edm.Bench/Perf/), discovered by reflection. A case times our kernel and a baseline
// in the same run (median of synchronised launches after warm-up) and reports bytes and FLOPs.
using System.Diagnostics;
using Edm.Kernels;

namespace Edm.Bench.Perf;

/// <summary>One timed op and shape, with its baseline timed in the same run.</summary>
public sealed record BenchRow(string Op, string Shape, string Device, double MedianMs, double Gbps, double Gflops,
    string Baseline, double BaselineMs, double Ratio, string? Note = null);

/// <summary>What a bench case does: bytes moved and FLOPs per launch, and the two timed actions.</summary>
public sealed record BenchCase(string Op, string Shape, double Bytes, double Flops, Action Run, string Baseline, Action? RunBaseline, IDisposable? Resources = null);

/// <summary>A family's benchmark cases. Implementations need a public parameterless constructor.</summary>
public interface IKernelBench
{
    /// <summary>Op names this family can bench (for --op).</summary>
    IReadOnlyList<string> Ops { get; }
    /// <summary>Builds the cases of one op; <paramref name="quick"/> asks for small sizes.</summary>
    IEnumerable<BenchCase> Cases(EdmDevice device, string op, bool quick);
}

/// <summary>Median timing of synchronised launches.</summary>
public static class Timing
{
    /// <summary>Runs warm-up launches, then times <paramref name="reps"/> launches (each synchronised) and returns the median in ms.</summary>
    public static double MedianMs(Action run, Action sync, int warmup = 2, int reps = 7, double maxSeconds = 10)
    {
        for (int i = 0; i < warmup; i++) run();
        sync();
        var times = new List<double>();
        var total = Stopwatch.StartNew();
        for (int i = 0; i < reps; i++)
        {
            var sw = Stopwatch.StartNew();
            run();
            sync();
            times.Add(sw.Elapsed.TotalMilliseconds);
            if (total.Elapsed.TotalSeconds > maxSeconds && times.Count >= 3) break;
        }
        times.Sort();
        return times[times.Count / 2];
    }
}

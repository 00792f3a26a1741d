// The `kernels` micro-benchmark's building blocks: each op family contributes one IKernelBench
// (a file in Edm.Bench/Perf/), discovered by reflection. A case times our kernel and a baseline
// in the same run (median of synchronised launches after warm-up) and reports bytes and FLOPs.
using System.Diagnostics;
using System.Text.Json.Serialization;
using Edm.Kernels;

namespace Edm.Bench.Perf;

/// <summary>One timed op and shape, with its baseline timed in the same run.</summary>
/// Ratio = our median time / the baseline's median time (lower is better; 0.5 = twice as fast).
public sealed record BenchRow(
    [property: JsonPropertyName("op")] string Op,
    [property: JsonPropertyName("shape")] string Shape,
    [property: JsonPropertyName("device")] string Device,
    [property: JsonPropertyName("median_ms")] double MedianMs,
    [property: JsonPropertyName("gbps")] double Gbps,
    [property: JsonPropertyName("gflops")] double Gflops,
    [property: JsonPropertyName("baseline")] string Baseline,
    [property: JsonPropertyName("baseline_ms")] double BaselineMs,
    [property: JsonPropertyName("ratio")] double Ratio,
    [property: JsonPropertyName("note")] string? Note = null,
    [property: JsonPropertyName("peak_fraction")] double PeakFraction = double.NaN,
    [property: JsonPropertyName("bandwidth_fraction")] double BandwidthFraction = double.NaN);

/// <summary>What a bench case does: bytes moved and FLOPs per launch, and the two timed actions.</summary>
/// <param name="Baseline">Name of the baseline (e.g. "csharp-parallel-for", "d2d-copy").</param>
/// <param name="RunBaseline">The baseline's action (null: none).</param>
/// <param name="Resources">Disposed after the case ran.</param>
/// <param name="Note">Printed with the row (e.g. "shape reduced on CPU").</param>
public sealed record BenchCase(string Op, string Shape, double Bytes, double Flops, Action Run, string Baseline, Action? RunBaseline,
    IDisposable? Resources = null, string? Note = null);

/// <summary>What `kernels` was asked for beyond the op and device.</summary>
/// <param name="Quick">Small sizes (a fast smoke pass).</param>
/// <param name="OnnxDir">Folder of the ONNX Runtime peer's models (`--onnx`), or null.</param>
public sealed record BenchSettings(bool Quick, string? OnnxDir = null);

/// <summary>A family's benchmark cases. Implementations need a public parameterless constructor.</summary>
public interface IKernelBench
{
    /// <summary>Op names this family can bench (for --op).</summary>
    IReadOnlyList<string> Ops { get; }
    /// <summary>Ops that run only when named in --op (long rows, e.g. a full-size training step).</summary>
    IReadOnlyList<string> ExplicitOps => [];
    /// <summary>Builds the cases of one op; <paramref name="quick"/> asks for small sizes.</summary>
    IEnumerable<BenchCase> Cases(EdmDevice device, string op, bool quick);
    /// <summary>Builds the cases of one op under every setting of the run (families that read only --quick need not implement it).</summary>
    IEnumerable<BenchCase> Cases(EdmDevice device, string op, BenchSettings settings) => Cases(device, op, settings.Quick);
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

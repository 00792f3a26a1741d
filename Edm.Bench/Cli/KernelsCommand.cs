// `kernels`: the micro-benchmark. For each op and size: warm-up, then the median of repeated
// synchronised launches, bytes moved and FLOPs, GB/s and GFLOP/s, and the same for a baseline timed
// in the same run (CPU accelerator: plain C# Parallel.For; GPU: device-to-device copy).
using System.CommandLine;
using System.Text.Json;
using Edm.Bench.Perf;

namespace Edm.Bench.Cli;

/// <summary>The kernels command.</summary>
public sealed class KernelsCommand : IBenchCommand
{
    /// <summary>Every IKernelBench in this assembly.</summary>
    public static IReadOnlyList<IKernelBench> Benches() => typeof(KernelsCommand).Assembly.GetTypes()
        .Where(t => typeof(IKernelBench).IsAssignableFrom(t) && t is { IsAbstract: false, IsInterface: false })
        .Select(t => (IKernelBench)Activator.CreateInstance(t)!)
        .OrderBy(b => b.GetType().Name == nameof(ElementwiseBench) ? "" : b.GetType().Name).ToList();

    /// <inheritdoc/>
    public Command Build()
    {
        var device = CommonOptions.Device();
        var json = CommonOptions.Json();
        var ops = new Option<string?>("--op") { Description = "Comma-separated op names (default: all but the full-size training-step rows step_ddpmpp*; 'all': every op); see the list printed on an unknown name" };
        var quick = new Option<bool>("--quick") { Description = "Smaller sizes (a fast smoke pass)" };
        var reps = new Option<int>("--reps") { Description = "Timed repetitions per case (median reported)", DefaultValueFactory = _ => 7 };
        var onnx = new Option<string?>("--onnx")
        {
            Description = $"Folder with ddpmpp-tiny-16.onnx and ddpmpp-tiny-32.onnx (bench/torch_baseline.py --export-onnx DIR): " +
                          $"the {TinyStepBench.ForwardOp} rows then time ONNX Runtime (CPU) as their baseline",
        };
        var cmd = new Command("kernels", "Time kernels against a baseline measured in the same run");
        foreach (var o in new Option[] { device, json, ops, quick, reps, onnx }) cmd.Options.Add(o);
        cmd.SetAction(p => CliErrors.Guard(() => Run(p.GetValue(device), p.GetValue(ops), p.GetValue(quick), p.GetValue(json), p.GetValue(reps), p.GetValue(onnx))));
        return cmd;
    }

    /// <summary>Most timed repetitions per case.</summary>
    public const int MaxReps = 1000;

    /// <summary>Runs the selected cases and prints the table.</summary>
    public static int Run(string? deviceSpec, string? opList, bool quick, string? jsonPath, int reps = 7, string? onnxDir = null)
    {
        if (reps < 1 || reps > MaxReps) throw new UsageException($"--reps {reps} is out of range; allowed: 1..{MaxReps}");
        var benches = Benches();
        var all = benches.SelectMany(b => b.Ops).ToList();
        var explicitOnly = benches.SelectMany(b => b.ExplicitOps).ToHashSet();
        var selected = opList is null ? all.Where(o => !explicitOnly.Contains(o)).ToList()
            : opList.Trim() == "all" ? all
            : opList.Split(',', StringSplitOptions.TrimEntries).ToList();
        if (selected.All(o => o.Length == 0)) throw new UsageException($"--op '{opList}' names no op; give comma-separated names from: {string.Join(", ", all)}");
        if (selected.Any(o => o.Length == 0)) throw new UsageException($"--op '{opList}' has an empty item; give comma-separated names from: {string.Join(", ", all)}");
        var unknown = selected.Where(o => !all.Contains(o)).ToList();
        if (unknown.Count > 0) throw new UsageException($"unknown op '{string.Join(",", unknown)}' in --op; allowed: {string.Join(", ", all)}");
        CommonOptions.RequireWritable(jsonPath, "--json");
        if (onnxDir is not null) RequireOnnx(onnxDir, selected, quick);
        using var dev = CommonOptions.OpenDevice(deviceSpec);
        Console.WriteLine($"kernels on {dev}; ratio = our time / baseline time (lower is better)");
        MachineLimits? limits = null;
        if (dev.IsCpu)
        {
            limits = MachineLimits.Measure();
            Console.WriteLine($"machine: {limits.Cores} cores, {limits.Isa}; measured now: peak {limits.PeakGflops:F1} GFLOP/s (FMA loop on every core), " +
                              $"bandwidth {limits.BandwidthGbps:F1} GB/s (streaming copy); %peak = GFLOP/s / peak, %bw = GB/s / bandwidth");
        }
        Console.WriteLine($"{"op",-18} {"shape",-28} {"ms",9} {"GB/s",8} {"GFLOP/s",8} {"%peak",6} {"%bw",5} | {"baseline",-20} {"ms",9} {"GB/s",8} {"GFLOP/s",8} | {"ratio",6}");
        var rows = new List<BenchRow>();
        int failed = 0;
        // Every row is written as soon as it is measured (the JSON file rewritten atomically), so a
        // run stopped by a timeout keeps its rows; a case that throws is recorded with NaN times and
        // the error in its note, and the next cases still run (exit 1 at the end).
        void Record(BenchRow row)
        {
            rows.Add(row);
            if (jsonPath is not null) CommonOptions.WriteAtomic(jsonPath, JsonSerializer.Serialize(rows, JsonOpts.Indented));
        }
        void Fail(string op, string shape, Exception e)
        {
            failed++;
            string note = $"error: {e.GetType().Name}: {e.Message}";
            if (note.Length > 300) note = note[..300];
            Console.WriteLine($"{op,-18} {shape,-28} FAILED: {note}");
            Record(new BenchRow(op, shape, dev.Spec, double.NaN, double.NaN, double.NaN, "none", double.NaN, double.NaN, note));
        }
        foreach (var bench in benches)
            foreach (var op in bench.Ops.Where(selected.Contains))
            {
                IEnumerator<BenchCase> cases;
                try { cases = bench.Cases(dev, op, new BenchSettings(quick, onnxDir)).GetEnumerator(); }
                catch (Exception e) when (e is not UsageException) { Fail(op, "-", e); continue; }
                while (true)
                {
                    BenchCase c;
                    try
                    {
                        if (!cases.MoveNext()) break;
                        c = cases.Current;
                    }
                    catch (Exception e) when (e is not UsageException) { Fail(op, "-", e); break; }
                    try
                    {
                        double ms = Timing.MedianMs(c.Run, dev.Synchronize, reps: reps);
                        double bms = c.RunBaseline is null ? double.NaN : Timing.MedianMs(c.RunBaseline, dev.Synchronize, reps: reps);
                        double gbps = c.Bytes / 1e6 / ms, gflops = c.Flops / 1e6 / ms;
                        double peak = limits is null || c.Flops <= 0 ? double.NaN : gflops / limits.PeakGflops;
                        double bw = limits is null || c.Bytes <= 0 ? double.NaN : gbps / limits.BandwidthGbps;
                        var row = new BenchRow(c.Op, c.Shape, dev.Spec, ms, gbps, gflops, c.Baseline, bms, ms / bms, c.Note, peak, bw);
                        static string Pct(double f) => double.IsNaN(f) ? "-" : $"{100 * f:F0}%";
                        Console.WriteLine($"{row.Op,-18} {row.Shape,-28} {ms,9:F3} {gbps,8:F1} {gflops,8:F1} {Pct(peak),6} {Pct(bw),5} | {row.Baseline,-20} {bms,9:F3} " +
                                          $"{c.Bytes / 1e6 / bms,8:F1} {c.Flops / 1e6 / bms,8:F1} | {row.Ratio,6:F2}{(c.Note is null ? "" : "  " + c.Note)}");
                        Record(row);
                    }
                    catch (Exception e) when (e is not UsageException) { Fail(c.Op, c.Shape, e); }
                    finally { c.Resources?.Dispose(); }
                }
                cases.Dispose();
            }
        if (failed > 0)
        {
            Console.Error.WriteLine($"{failed} case(s) failed (recorded in the rows' notes)");
            return 1;
        }
        return 0;
    }

    /// <summary>
    /// --onnx before any work: it needs the forward rows at full size, and every model file must load
    /// with the inputs of those rows (a missing folder or file, a file ONNX Runtime cannot read or a
    /// model of other shapes is a usage error).
    /// </summary>
    static void RequireOnnx(string dir, List<string> selected, bool quick)
    {
        if (string.IsNullOrWhiteSpace(dir)) throw new UsageException("--onnx is empty; give the folder written by bench/torch_baseline.py --export-onnx DIR");
        if (!selected.Contains(TinyStepBench.ForwardOp))
            throw new UsageException($"--onnx times ONNX Runtime in the {TinyStepBench.ForwardOp} rows only; add --op {TinyStepBench.ForwardOp}");
        if (quick)
            throw new UsageException($"--onnx needs the full-size {TinyStepBench.ForwardOp} rows (batch {TinyStepBench.ForwardBatch} at 16x16 and 32x32, the exported shapes); drop --quick");
        foreach (int res in TinyStepBench.Resolutions(quick))
            new OnnxPeer(dir, res, new float[TinyStepBench.ForwardBatch * res * res], new float[TinyStepBench.ForwardBatch]).Dispose();
    }
}

// `truncation`: the truncation-error bench (issue 5; docs/formulas.md section 8), and the default
// job of Edm.Bench. Runs every sampler on analytic data on the device, measures global error vs
// NFE and local error vs sigma against exact/high-accuracy reference solutions, fits orders, and
// compares the curves with the float64 reference curves committed under docs/reference-curves/.
// `--reference-only` recomputes those reference curves with the host float64 samplers instead.
using System.CommandLine;
using System.Diagnostics;
using System.Globalization;
using Edm.Verification;
using Edm.Kernels;
using Edm.Sampling;

namespace Edm.Bench.Cli;

/// <summary>The `truncation` subcommand.</summary>
public sealed class TruncationCommand : IBenchCommand
{
    /// <summary>Runs the bench with <paramref name="args"/> (options of `truncation`, no command name): the default job of Edm.Bench.</summary>
    public static int RunDefault(string[] args)
    {
        var cmd = new TruncationCommand().Build();
        var root = new RootCommand("EdmKernels truncation-error bench (default job)");
        root.Subcommands.Add(cmd);
        var parse = root.Parse(["truncation", .. args]);
        if (parse.Errors.Count > 0)
        {
            foreach (var e in parse.Errors) Console.Error.WriteLine($"error: {Program.Friendly(e.Message)}");
            return 2;
        }
        return parse.Invoke();
    }

    /// <inheritdoc/>
    public Command Build()
    {
        var dataset = new Option<string>("--dataset") { Description = "Datasets, comma-separated: gaussian, mixture, points", DefaultValueFactory = _ => "gaussian,mixture,points" };
        var dim = new Option<int>("--dim") { Description = "Data dimension", DefaultValueFactory = _ => 16 };
        var count = new Option<int>("--count") { Description = "Number of points (points) or components (mixture)", DefaultValueFactory = _ => 64 };
        var batch = new Option<int>("--batch") { Description = "Samples per curve point", DefaultValueFactory = _ => 16 };
        var seed = new Option<ulong>("--seed") { Description = "Seed of the data and the latents", DefaultValueFactory = _ => 1UL };
        var solvers = new Option<string>("--solvers") { Description = "Solvers, comma-separated: " + string.Join(", ", Solvers.Names), DefaultValueFactory = _ => string.Join(",", Solvers.Names) };
        var discs = new Option<string>("--discretizations") { Description = "Discretizations, comma-separated: vp, ve, iddpm, edm", DefaultValueFactory = _ => "vp,ve,iddpm,edm" };
        var steps = new Option<string>("--steps") { Description = "Step counts N, comma-separated", DefaultValueFactory = _ => "4,8,16,32,64,128" };
        var rho = new Option<double>("--rho") { Description = "rho of the edm discretization", DefaultValueFactory = _ => 7.0 };
        var sigmaMin = new Option<double>("--sigma-min") { Description = "Smallest noise level (all discretizations)", DefaultValueFactory = _ => 0.002 };
        var sigmaMax = new Option<double>("--sigma-max") { Description = "Largest noise level (all discretizations)", DefaultValueFactory = _ => 80.0 };
        var localRhos = new Option<string>("--local-rhos") { Description = "rho values of the local-error analysis", DefaultValueFactory = _ => "1,2,3,5,7,10" };
        var localSteps = new Option<int>("--local-steps") { Description = "Steps N of the local-error analysis", DefaultValueFactory = _ => 32 };
        var floor = new Option<double>("--floor-factor") { Description = "Comparison floor in units of the float32 resolution of the data", DefaultValueFactory = _ => 100.0 };
        var device = CommonOptions.Device();
        var output = new Option<string>("--out") { Description = "Output folder", DefaultValueFactory = _ => "out/truncation" };
        var reference = new Option<string>("--reference") { Description = $"Folder of the reference curves (default: {TruncationConfig.ReferenceFolder} found from the current folder upward)", DefaultValueFactory = _ => "" };
        var referenceOnly = new Option<bool>("--reference-only") { Description = "Compute the float64 host reference curves (no device) and write them to --out" };
        var noPlots = new Option<bool>("--no-plots") { Description = "Skip the PNG plots" };

        var cmd = new Command("truncation", "Truncation error of the samplers on analytic data vs NFE and sigma, compared with reference curves");
        foreach (var o in new Option[] { dataset, dim, count, batch, seed, solvers, discs, steps, rho, sigmaMin, sigmaMax, localRhos, localSteps, floor, device, output, reference, referenceOnly, noPlots })
            cmd.Options.Add(o);
        cmd.SetAction(p => CliErrors.Guard(() =>
        {
            TruncationConfig cfg;
            try
            {
                cfg = new TruncationConfig
                {
                    Datasets = List(p.GetValue(dataset)!, "--dataset").Select(s => AnalyticDataset.Names[(int)AnalyticDataset.Parse(s)]).ToArray(),
                    Dim = p.GetValue(dim),
                    Count = p.GetValue(count),
                    Batch = p.GetValue(batch),
                    Seed = p.GetValue(seed),
                    Solvers = List(p.GetValue(solvers)!, "--solvers").Select(Solvers.Parse).ToArray(),
                    Discretizations = List(p.GetValue(discs)!, "--discretizations").Select(TimeSteps.ParseDiscretization).ToArray(),
                    Steps = List(p.GetValue(steps)!, "--steps").Select(s => Int(s, "--steps")).ToArray(),
                    Rho = p.GetValue(rho),
                    SigmaMin = p.GetValue(sigmaMin),
                    SigmaMax = p.GetValue(sigmaMax),
                    LocalRhos = List(p.GetValue(localRhos)!, "--local-rhos").Select(s => Double(s, "--local-rhos")).ToArray(),
                    LocalSteps = p.GetValue(localSteps),
                    FloorFactor = p.GetValue(floor),
                };
                cfg.Validate();
            }
            catch (ArgumentException e)
            {
                throw new UsageException(e.Message);
            }
            return Run(cfg, p.GetValue(device), p.GetValue(output)!, p.GetValue(reference)!, p.GetValue(referenceOnly), !p.GetValue(noPlots));
        }));
        return cmd;
    }

    static string[] List(string s, string option)
    {
        var items = s.Split(',', StringSplitOptions.TrimEntries);
        if (items.All(i => i.Length == 0)) throw new ArgumentException($"{option} is empty; give a comma-separated list");
        if (items.Any(i => i.Length == 0)) throw new ArgumentException($"{option} '{s}' has an empty item; give a comma-separated list without empty entries");
        return items;
    }

    static int Int(string s, string option) => int.TryParse(s, NumberStyles.Integer, CultureInfo.InvariantCulture, out int v)
        ? v : throw new ArgumentException($"{option}: '{s}' is not an integer");

    static double Double(string s, string option) => double.TryParse(s, NumberStyles.Float, CultureInfo.InvariantCulture, out double v)
        ? v : throw new ArgumentException($"{option}: '{s}' is not a number");

    static int Run(TruncationConfig cfg, string? deviceSpec, string outDir, string referenceDir, bool referenceOnly, bool plots)
    {
        var sw = Stopwatch.StartNew();
        var progress = new Progress(sw);
        CommonOptions.RequireWritableFolder(outDir, "--out", $".global_{new string('x', 64)}.csv.tmp");
        CurveSet set;
        string deviceName;
        ReferenceComparison? cmp = null;
        string? note = null;
        if (referenceOnly)
        {
            deviceName = "host float64 reference";
            set = HostTruncation.Compute(cfg, progress.Report);
            File.WriteAllText(Path.Combine(outDir, "config.txt"), cfg.Signature() + "\n");
        }
        else
        {
            var device = CommonOptions.OpenDevice(deviceSpec);
            using (device)
            {
                deviceName = device.ToString();
                long need = DeviceTruncation.EstimatedDeviceBytes(cfg);
                if (need > device.MemorySize / 2 || cfg.EstimatedHostBytes() > 8L << 30)
                    throw new UsageException($"dim {cfg.Dim} x batch {cfg.Batch} x count {cfg.Count} needs about {need / (1 << 20)} MiB on {device.Spec} " +
                        $"({device.MemorySize / (1 << 20)} MiB present); allowed: at most half the device memory");
                set = DeviceTruncation.Compute(device, cfg, progress.Report);
            }
            (cmp, note) = CompareWithReference(set, cfg, referenceDir);
        }
        progress.Done();
        var orders = set.Orders();
        Console.WriteLine();
        Console.WriteLine($"device: {deviceName}; datasets {string.Join(", ", cfg.Datasets)}, dim {cfg.Dim}, count {cfg.Count}, batch {cfg.Batch}, sigma in [{cfg.SigmaMin}, {cfg.SigmaMax}]");
        Console.Write(TruncationReport.Table(set, orders));
        if (cmp is not null)
        {
            Console.WriteLine();
            Console.WriteLine($"reference curves: largest relative deviation {cmp.MaxRelDeviation:P3} over {cmp.Compared} points above the float32 floor" +
                (cmp.Worst is null ? "" : $" (at {cmp.Worst})") + (cmp.MaxRelDeviation < 0.01 ? " -- OK (< 1%)" : " -- ABOVE 1%"));
            if (cmp.BelowFloor.Count > 0)
                Console.WriteLine($"  {cmp.BelowFloor.Count} points below the floor, listed not compared: {string.Join("; ", cmp.BelowFloor.Take(12))}{(cmp.BelowFloor.Count > 12 ? "; ... (all in summary.json)" : "")}");
        }
        if (note is not null) Console.WriteLine($"reference curves: {note}");
        var files = set.WriteCsv(outDir);
        if (plots) files.AddRange(TruncationReport.WritePlots(outDir, set));
        files.Add(TruncationReport.WriteSummary(outDir, deviceName, set, orders, cmp, note, cfg, sw.Elapsed.TotalSeconds));
        Console.WriteLine($"wrote {files.Count} files to {outDir} in {sw.Elapsed.TotalSeconds:F1} s");
        return cmp is null || cmp.MaxRelDeviation < 0.01 ? 0 : 1;
    }

    static (ReferenceComparison?, string?) CompareWithReference(CurveSet set, TruncationConfig cfg, string referenceDir)
    {
        if (!string.IsNullOrWhiteSpace(referenceDir) && !Directory.Exists(referenceDir))
            throw new UsageException($"--reference '{referenceDir}' is not a folder; give the folder of the reference curves (e.g. {TruncationConfig.ReferenceFolder})");
        string? dir = string.IsNullOrWhiteSpace(referenceDir) ? FindReferenceFolder() : referenceDir;
        if (dir is null || !Directory.Exists(dir))
            return (null, $"no reference folder found ({(string.IsNullOrWhiteSpace(referenceDir) ? TruncationConfig.ReferenceFolder + " above the current folder" : referenceDir)}); not compared");
        bool explicitly = !string.IsNullOrWhiteSpace(referenceDir);
        string sigFile = Path.Combine(dir, "config.txt");
        string sig = File.Exists(sigFile) ? File.ReadAllText(sigFile).Trim() : "";
        if (sig != cfg.Signature())
        {
            string why = sig.Length == 0 ? $"{dir} has no config.txt (not a reference folder written by --reference-only)"
                : $"the reference curves in {dir} were made with '{sig}', this run is '{cfg.Signature()}'";
            // A folder the user named must be compared; the default one is compared when it matches.
            if (explicitly) throw new UsageException($"--reference: {why}; regenerate them with --reference-only and this run's options");
            return (null, $"{why}; not compared (regenerate with --reference-only)");
        }
        CurveSet reference;
        try { reference = CurveSet.ReadCsv(dir); }
        catch (InvalidDataException e) { throw new UsageException($"--reference: {e.Message}"); }
        if (reference.Global.Count + reference.Local.Count == 0)
            throw new UsageException($"--reference: {dir} holds no reference points (no rows in global_*.csv or local_*.csv)");
        var cmp = ReferenceComparison.Compare(set, reference);
        if (explicitly && cmp.Missing > 0)
            throw new UsageException($"--reference: {dir} has no reference point for {cmp.Missing} points of this run (incomplete or hand-edited CSV files?); regenerate with --reference-only");
        return (cmp, cmp.Missing > 0 ? $"{cmp.Missing} points of this run have no reference point" : null);
    }

    static string? FindReferenceFolder()
    {
        foreach (var start in new[] { Directory.GetCurrentDirectory(), AppContext.BaseDirectory })
        {
            for (var d = new DirectoryInfo(start); d is not null; d = d.Parent)
            {
                string candidate = Path.Combine(d.FullName, TruncationConfig.ReferenceFolder);
                if (Directory.Exists(candidate)) return candidate;
            }
        }
        return null;
    }

    /// <summary>One progress line, rewritten in place on a terminal.</summary>
    sealed class Progress(Stopwatch sw)
    {
        readonly bool _tty = !Console.IsOutputRedirected;
        public void Report(string what)
        {
            string line = $"[{sw.Elapsed.TotalSeconds,6:F1} s] {what}";
            if (_tty) Console.Write("\r" + line.PadRight(Math.Max(20, Console.WindowWidth - 1))[..Math.Max(20, Console.WindowWidth - 1)]);
            else Console.WriteLine(line);
        }
        public void Done()
        {
            if (_tty) Console.WriteLine();
        }
    }
}

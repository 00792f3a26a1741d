// `fig2`: the sampler study of the paper's Fig. 2 (Karras et al. 2022, Sec. 3) on one trained
// network. The denoiser D(x; sigma) does not depend on the formulation, so the same network is
// sampled with each formulation's ODE: for VP, VE and iDDPM the chain original -> + Heun ->
// + EDM t_i -> + EDM sigma(t), s(t) (Edm.Sampling/Fig2Chain.cs), and EDM's sampler as the reference
// curve, at each NFE; FID of each point against reference statistics with a classifier's features
// (fid calc's machinery). Samples stay in memory, rounded to 8 bits as PNGs would be, seeds
// S..S+N-1 at every point. Points with the same settings are sampled once (with one network,
// "+ EDM sigma(t), s(t)" is EDM's sampler, and iDDPM's "+ EDM t_i" too).
using System.CommandLine;
using System.Diagnostics;
using System.Globalization;
using Edm.Model;
using Edm.Model.Data;
using Edm.Model.IO;
using Edm.Model.Metrics;
using Edm.Model.Training;
using Edm.Sampling;

namespace Edm.Bench.Cli;

/// <summary>The fig2 command.</summary>
public sealed class Fig2Command : IBenchCommand
{
    /// <summary>Default NFE values: Fig. 2's range, Heun at 3 to 36 steps.</summary>
    public const string DefaultNfe = "5,9,17,35,71";

    /// <summary>Default number of images per point: with the default NFE, 1.23M image-NFE, about 30-70 minutes on 2 CPU cores (docs/metrics.md).</summary>
    public const int DefaultImages = 1000;

    /// <summary>Largest NFE accepted (a guard against a typo that would run for hours).</summary>
    public const int MaxNfe = 1000;

    /// <summary>Parses --nfe: a comma-separated list of distinct integers in [<see cref="Fig2Chain.MinNfe"/>, <see cref="MaxNfe"/>], returned ascending.</summary>
    public static int[] ParseNfe(string text)
    {
        var list = new List<int>();
        foreach (var part in text.Split(','))
        {
            if (!int.TryParse(part.Trim(), NumberStyles.None, CultureInfo.InvariantCulture, out int n))
                throw new UsageException($"--nfe '{text}': '{part.Trim()}' is not a whole number; give a list such as {DefaultNfe}");
            if (n < Fig2Chain.MinNfe || n > MaxNfe)
                throw new UsageException($"--nfe {n} is out of range; allowed: {Fig2Chain.MinNfe} <= NFE <= {MaxNfe} (Heun takes N = (NFE + 1) / 2 steps and needs N >= 2 for a second-order step)");
            if (list.Contains(n)) throw new UsageException($"--nfe lists {n} twice; list each NFE once");
            list.Add(n);
        }
        return [.. list.Order()];
    }

    static string Hms(double seconds) => TimeSpan.FromSeconds(Math.Round(Math.Max(seconds, 0))).ToString(@"hh\:mm\:ss", CultureInfo.InvariantCulture);

    /// <inheritdoc/>
    public Command Build()
    {
        var device = CommonOptions.Device();
        var network = new Option<string>("--network") { Description = "Network: a snapshot of `train` (.safetensors), an NVlabs/edm snapshot (.pkl) or a PyTorch file holding an edm network", Required = true };
        var reference = new Option<string>("--ref") { Description = "Reference statistics (.npz from fid ref, with the same --features)", Required = true };
        var features = new Option<string>("--features") { Description = "Feature network: classifier:PATH (from `classifier train`, at the network's resolution) or inception:PATH (FID Inception-v3 weights)", Required = true };
        var output = new Option<string>("--out") { Description = "Output folder (fig2.csv, fig2.png)", DefaultValueFactory = _ => "out/fig2" };
        var images = new Option<int>("--images") { Description = "Images per point (FID's bias grows as the count falls: compare only at the same count)", DefaultValueFactory = _ => DefaultImages };
        var nfe = new Option<string>("--nfe") { Description = "Denoiser evaluations per image: Euler takes N = NFE steps, Heun N = (NFE + 1) / 2", DefaultValueFactory = _ => DefaultNfe };
        var batch = new Option<int>("--batch") { Description = "Images per sampler batch", DefaultValueFactory = _ => 250 };
        var seed = new Option<ulong>("--seed") { Description = "First seed: every point samples seeds S..S+N-1", DefaultValueFactory = _ => 0 };
        var cmd = new Command("fig2", "The paper's Fig. 2 sampler study: FID vs NFE of each formulation's sampler chain (VP, VE, iDDPM) and EDM's, on one network");
        foreach (var o in new Option[] { device, network, reference, features, output, images, nfe, batch, seed }) cmd.Options.Add(o);
        cmd.SetAction(p => CliErrors.Guard(() =>
        {
            int n = p.GetValue(images), b = p.GetValue(batch);
            if (n < 2) throw new UsageException($"--images {n}: the feature statistics need at least 2 images");
            if (b < 1) throw new UsageException($"--batch {b} must be >= 1");
            var nfes = ParseNfe(p.GetValue(nfe)!);
            ulong first = p.GetValue(seed);
            if (first > ulong.MaxValue - (ulong)n) throw new UsageException($"--seed {first}: seeds S..S+{n - 1} pass the largest seed {ulong.MaxValue}");
            var seeds = Enumerable.Range(0, n).Select(i => first + (ulong)i).ToArray();
            var refStats = FidCommand.LoadReference(p.GetValue(reference)!);
            using var dev = CommonOptions.OpenDevice(p.GetValue(device));
            Precond net;
            try { net = NetworkFiles.Load(dev, p.GetValue(network)!); }
            catch (CheckpointException e) { throw new UsageException(e.Message); }
            using (net)
            using (var clf = FidCommand.FeatureNet(dev, p.GetValue(features)!))
            {
                int c = net.ImgChannels, r = net.Network.ImgResolution;
                if (clf.Refuses(c, r) is { } why)
                    throw new UsageException($"the network makes {c}x{r}x{r} images: {why}; give a feature network for the network's images (a classifier trained at its resolution)");
                FidCommand.RequireReference(clf, refStats, p.GetValue(reference)!);
                string dir = p.GetValue(output)!, csvPath = Path.Combine(dir, "fig2.csv"), pngPath = Path.Combine(dir, "fig2.png");
                CommonOptions.RequireWritableFolder(dir, "--out", $".fig2.tmp-{Environment.ProcessId}.png");
                return Run(net, clf, refStats, seeds, nfes, b, csvPath, pngPath, dev.ToString()!);
            }
        }));
        return cmd;
    }

    static int Run(Precond net, IFeatureNetwork clf, FeatureStatistics refStats, ulong[] seeds, int[] nfes, int batch, string csvPath, string pngPath, string device)
    {
        int n = seeds.Length, c = net.ImgChannels, r = net.Network.ImgResolution;
        var points = nfes.SelectMany(x => Fig2Chain.All(x).Select(v => (Nfe: x, Variant: v))).ToList();
        // Identical settings give identical samples (same seeds): sample each distinct one once.
        var distinct = points.Select(q => q.Variant.Settings).Distinct().ToList();
        long work = distinct.Sum(s => (long)n * s.Nfe);
        Console.WriteLine($"fig2: {points.Count} points ({nfes.Length} NFE x (3 formulations x 4 samplers + EDM)), {distinct.Count} distinct samplers " +
                          $"(the others share their settings), {n} images {c}x{r}x{r} each (seeds {seeds[0]}-{seeds[^1]}) on {device}");

        // The time estimate: a warm-up batch, then one timed batch of 4 denoiser evaluations (Euler, 4 steps).
        var probe = Fig2Chain.EdmReference(Fig2Chain.MinNfe).Settings with { Solver = Solver.Euler, Steps = 1 };
        var calibration = seeds[..Math.Min(batch, n)];
        Generator.Generate(net, calibration, probe, batch);
        var clock = Stopwatch.StartNew();
        Generator.Generate(net, calibration, probe with { Steps = 4 }, batch);
        double perImageNfe = clock.Elapsed.TotalSeconds / (4.0 * calibration.Length);
        Console.WriteLine($"estimate: {work:N0} image-NFE x {perImageNfe * 1e3:F2} ms (measured on a batch of {calibration.Length}) = {Hms(work * perImageNfe)} of sampling, " +
                          "plus the features and FID of each point");

        var results = new List<Fig2Point>();
        var fidOf = new Dictionary<SamplerSettings, double>();
        int clipped = 0;
        long done = 0;
        clock.Restart();
        double lastLine = 0;
        void Progress(string what, long doneNow)
        {
            double s = clock.Elapsed.TotalSeconds, rate = doneNow / Math.Max(s, 1e-9);
            int filled = (int)(20 * doneNow / Math.Max(work, 1));
            Console.WriteLine($"  [{new string('#', filled)}{new string('.', 20 - filled)}] {what}  elapsed {Hms(s)}  eta {Hms((work - doneNow) / Math.Max(rate, 1e-12))}");
            lastLine = s;
        }
        foreach (var (requested, v) in points)
        {
            var settings = v.Settings;
            string name = $"{v.Formulation,-5} {Fig2Chain.Label(v.Sampler),-21} NFE {settings.Nfe,3} (N {settings.Steps,2})";
            if (!fidOf.TryGetValue(settings, out double fid))
            {
                int sampled = 0;
                var all = Generator.Generate(net, seeds, settings, batch, onBatch: (chunk, _) =>
                {
                    sampled += chunk.Length;
                    // Long runs also report between points, at most every 30 s.
                    if (sampled < n && clock.Elapsed.TotalSeconds - lastLine >= 30) Progress($"{name}: {sampled}/{n} images", done + (long)sampled * settings.Nfe);
                });
                ImageIO.Quantize(all);  // the values the PNGs of `generate` hold, as `fid calc` reads them
                var stats = FidCommand.StatisticsOfImages(clf, all, n, net.ImgChannels, net.Network.ImgResolution, progress: false);
                var d = FrechetDistance.Compute(stats, refStats);
                if (d.ClippedEigenvalues > 0) clipped++;
                fid = fidOf[settings] = d.Distance;
                done += (long)n * settings.Nfe;
                Progress($"{name}  fid {fid,9:F3}", done);
            }
            else Console.WriteLine($"  {"",22} {name}  fid {fid,9:F3}  (the settings of an earlier point: same samples)");
            results.Add(new Fig2Point(v.Formulation, v.Sampler, requested, settings.Steps, settings.Nfe, n, fid));
            // The CSV is rewritten (atomically) after every point: an interrupted run keeps what it measured.
            CommonOptions.WriteAtomic(csvPath, Fig2Report.Csv(results));
        }
        Fig2Report.WritePlot(pngPath, results, nfes, n);
        Console.WriteLine();
        string what = clf is MnistClassifier m ? $"{m.Channels}x{m.Resolution}x{m.Resolution} classifier" : clf.Description;
        Console.WriteLine($"FID ({what} features, {n} images, seeds {seeds[0]}-{seeds[^1]}) against the reference, per sampler and NFE:");
        Console.Write(Fig2Report.Table(results, nfes));
        if (clipped > 0)
            Console.WriteLine($"note: {clipped} point(s) had singular covariances ({n} images for {clf.FeatureDim} features); negative eigenvalues were clipped to 0");
        Console.WriteLine("note: FID is biased upwards by roughly 1/N at N images (docs/metrics.md measures the floor of real digits): compare points only at the same --images");
        Console.WriteLine($"wrote {csvPath} and {pngPath} in {clock.Elapsed.TotalSeconds:F1} s");
        return 0;
    }
}

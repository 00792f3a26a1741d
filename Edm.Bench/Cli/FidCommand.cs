// `fid compare A.npz B.npz`: the Frechet distance between two feature statistics files (float64
// "mu" and "sigma", the layout of NVlabs/edm's fid.py reference files), computed in float64 with
// symmetric eigen-decompositions (Edm.Model/Metrics/FrechetDistance.cs). It reports when negative
// eigenvalues (rounding of singular covariances) were clipped to zero.
// `fid ref --data DATASET --dest REF.npz --features classifier:PATH` writes the statistics of a
// dataset's features; `fid calc --images FOLDER|ZIP --ref REF.npz --features classifier:PATH` the
// distance of a folder of images (e.g. `generate`'s output) to them. Features: `classifier:PATH`, the
// 128 penultimate activations of `classifier train`'s network, or `inception:PATH`, the 2048 pool3
// features of the FID Inception-v3 (pytorch-fid's network, weights converted to safetensors; see
// docs/metrics.md). Images and reference must come from the same feature network (their sizes must match).
using System.CommandLine;
using System.Diagnostics;
using System.Globalization;
using Edm.Kernels;
using Edm.Model.Data;
using Edm.Model.Metrics;

namespace Edm.Bench.Cli;

/// <summary>The fid command.</summary>
public sealed class FidCommand : IBenchCommand
{
    /// <inheritdoc/>
    public Command Build()
    {
        var a = new Argument<string>("A.npz") { Description = "Feature statistics (mu, sigma), e.g. a reference .npz" };
        var b = new Argument<string>("B.npz") { Description = "Feature statistics of the same feature network" };
        var compare = new Command("compare", "Frechet distance between two feature statistics files (.npz with float64 mu and sigma)");
        compare.Arguments.Add(a);
        compare.Arguments.Add(b);
        compare.SetAction(p => CliErrors.Guard(() =>
        {
            var sa = Load(p.GetValue(a)!);
            var sb = Load(p.GetValue(b)!);
            if (sa.Dim != sb.Dim)
                throw new UsageException($"'{p.GetValue(a)}' has {sa.Dim} features and '{p.GetValue(b)}' has {sb.Dim}; both must come from the same feature network");
            var r = FrechetDistance.Compute(sa, sb);
            Console.WriteLine(r.Distance.ToString("F6", CultureInfo.InvariantCulture));
            if (r.ClippedEigenvalues > 0)
                Console.Error.WriteLine($"note: {r.ClippedEigenvalues} negative eigenvalue(s) clipped to 0 (the most negative {r.LargestClipped:E2} of the largest): singular covariances, e.g. fewer images than features");
            return 0;
        }));
        var cmd = new Command("fid", "Frechet distance of feature statistics (FID with Inception features)");
        cmd.Subcommands.Add(compare);
        cmd.Subcommands.Add(BuildRef());
        cmd.Subcommands.Add(BuildCalc());
        return cmd;
    }

    static Option<string> Features() => new("--features") { Description = "Feature network: classifier:PATH (from `classifier train`) or inception:PATH (FID Inception-v3 weights, .safetensors with PyTorch's names)", Required = true };
    static Option<int?> Num() => new("--num") { Description = "Use N images spread evenly over the set (default: all)" };

    static Command BuildRef()
    {
        var device = CommonOptions.Device();
        var data = new Option<string>("--data") { Description = "Dataset folder or zip", Required = true };
        var dest = new Option<string>("--dest") { Description = "Statistics file to write (.npz)", Required = true };
        var features = Features();
        var num = Num();
        var cmd = new Command("ref", "Feature statistics (mu, sigma) of a dataset, as a reference .npz");
        foreach (var o in new Option[] { device, data, dest, features, num }) cmd.Options.Add(o);
        cmd.SetAction(p => CliErrors.Guard(() =>
        {
            string destPath = p.GetValue(dest)!;
            if (!destPath.EndsWith(".npz", StringComparison.OrdinalIgnoreCase)) throw new UsageException($"--dest '{destPath}' must end in .npz");
            CommonOptions.RequireWritable(destPath, "--dest");
            var stats = StatisticsOf(p.GetValue(device), p.GetValue(data)!, p.GetValue(features)!, p.GetValue(num), "--data", null, null);
            stats.Save(destPath);
            Console.WriteLine($"wrote {destPath} ({stats.Dim} features)");
            return 0;
        }));
        return cmd;
    }

    static Command BuildCalc()
    {
        var device = CommonOptions.Device();
        var images = new Option<string>("--images") { Description = "Folder or zip of PNG images (e.g. generate's --outdir)", Required = true };
        var reference = new Option<string>("--ref") { Description = "Reference statistics (.npz from fid ref)", Required = true };
        var features = Features();
        var num = Num();
        var cmd = new Command("calc", "Frechet distance of a folder of images to reference statistics");
        foreach (var o in new Option[] { device, images, reference, features, num }) cmd.Options.Add(o);
        cmd.SetAction(p => CliErrors.Guard(() =>
        {
            var refStats = Load(p.GetValue(reference)!);
            var stats = StatisticsOf(p.GetValue(device), p.GetValue(images)!, p.GetValue(features)!, p.GetValue(num), "--images", refStats, p.GetValue(reference));
            var r = FrechetDistance.Compute(stats, refStats);
            Console.WriteLine(r.Distance.ToString("F6", CultureInfo.InvariantCulture));
            if (r.ClippedEigenvalues > 0)
                Console.Error.WriteLine($"note: {r.ClippedEigenvalues} negative eigenvalue(s) clipped to 0: singular covariances, e.g. fewer images than features");
            return 0;
        }));
        return cmd;
    }

    static FeatureStatistics StatisticsOf(string? deviceSpec, string path, string features, int? num, string option, FeatureStatistics? reference, string? refPath)
    {
        // `generate` writes its grid.png next to the seed images: not one of the samples.
        bool Include(string f) => option != "--images" || f != "grid.png";
        using var ds = ImageDataset.Open(path, preload: true, include: Include);
        int n = num ?? ds.Count;
        if (n < 2) throw new UsageException($"--num {n}: the statistics need at least 2 images");
        if (n > ds.Count) throw new UsageException($"--num {n} is more than the {ds.Count} images of {option} '{path}'");
        using var dev = CommonOptions.OpenDevice(deviceSpec);
        using var net = FeatureNet(dev, features);
        RequireMatch(net, ds);
        if (reference is not null) RequireReference(net, reference, refPath!);
        // N images spread evenly over the set (a dataset stored class by class keeps every class).
        var images = ds.ReadImages(Enumerable.Range(0, n).Select(i => (int)((long)i * ds.Count / n)).ToArray());
        return StatisticsOfImages(net, images, n, ds.Channels, ds.Resolution, progress: true);
    }

    /// <summary>
    /// Feature statistics of <paramref name="count"/> images (N, C, R, R) in [-1, 1] (as a dataset
    /// reads PNGs: <see cref="ImageIO.Quantize"/> gives in-memory samples the same values); with
    /// <paramref name="progress"/>, a line per tenth with the rate and ETA.
    /// </summary>
    public static FeatureStatistics StatisticsOfImages(IFeatureNetwork net, float[] images, int count, int channels, int resolution, bool progress)
    {
        var clock = Stopwatch.StartNew();
        int next = 0;
        var f = net.Features(images, count, channels, resolution, progress: !progress ? null : done =>
        {
            if (done < next && done < count) return;
            next = done + Math.Max(1, count / 10);
            double ips = done / Math.Max(clock.Elapsed.TotalSeconds, 1e-9);
            Console.WriteLine($"  features {done}/{count}  {ips:F0} img/s  eta {TimeSpan.FromSeconds(Math.Round((count - done) / Math.Max(ips, 1e-9))):hh\\:mm\\:ss}");
        });
        return FeatureStatistics.Of(f, count, net.FeatureDim);
    }

    /// <summary>The feature network of a --features value (classifier:PATH or inception:PATH); a bad value or file is a usage error.</summary>
    public static IFeatureNetwork FeatureNet(EdmDevice dev, string spec)
    {
        int colon = spec.IndexOf(':');
        string kind = colon < 0 ? spec : spec[..colon], path = colon < 0 ? "" : spec[(colon + 1)..];
        return kind switch
        {
            "classifier" when path.Length > 0 => LoadClassifier(dev, path),
            "inception" when path.Length > 0 => LoadInception(dev, path),
            _ => throw new UsageException($"--features '{spec}' is not understood; allowed: classifier:PATH, inception:PATH"),
        };
    }

    /// <summary>Loads FID Inception-v3 weights, turning file problems (another network's file, a missing or mis-shaped tensor) into usage errors.</summary>
    public static IFeatureNetwork LoadInception(EdmDevice dev, string path)
    {
        try { return new InceptionFeatures(InceptionV3.Load(dev, path)); }
        catch (Exception e) when (e is InvalidDataException or FileNotFoundException or DirectoryNotFoundException or UnauthorizedAccessException)
        {
            throw new UsageException($"--features inception:{path}: {e.Message}");
        }
    }

    /// <summary>Loads a classifier file, turning file problems into usage errors.</summary>
    public static MnistClassifier LoadClassifier(EdmDevice dev, string path)
    {
        try { return MnistClassifier.Load(dev, path); }
        catch (Exception e) when (e is InvalidDataException or Edm.Model.IO.SafeTensorsException or FileNotFoundException)
        {
            throw new UsageException(e.Message);
        }
    }

    /// <summary>The images must be ones the feature network takes (the classifier: its channels and resolution).</summary>
    public static void RequireMatch(IFeatureNetwork net, ImageDataset ds)
    {
        if (net.Refuses(ds.Channels, ds.Resolution) is { } why)
            throw new UsageException($"'{ds.Path}' holds {ds.Channels}x{ds.Resolution}x{ds.Resolution} images: {why}");
    }

    /// <summary>Reference statistics must have the feature network's size.</summary>
    public static void RequireReference(IFeatureNetwork net, FeatureStatistics reference, string path)
    {
        if (reference.Dim != net.FeatureDim)
            throw new UsageException($"--ref '{path}' has {reference.Dim} features, {net.Description} gives {net.FeatureDim}; make the reference with the same --features");
    }

    /// <summary>Reference statistics (--ref); problems are usage errors. Check their size with <see cref="RequireReference"/>.</summary>
    public static FeatureStatistics LoadReference(string path) => Load(path);

    static FeatureStatistics Load(string path)
    {
        try { return FeatureStatistics.Load(path); }
        catch (InvalidDataException e) { throw new UsageException(e.Message); }
    }
}

// `generate`: loads a network (a snapshot written by `train`, or NVlabs/edm's .pkl / a PyTorch
// file holding an edm network: IO/NetworkFiles.cs), wraps it in its preconditioning and
// samples one PNG per seed (seed0002.png, ...) plus a grid, with any sampler of Edm.Sampling.
// The same seed gives the same image whatever --batch is (per-sample latents, noise and class).
using System.CommandLine;
using Edm.Model;
using Edm.Model.Data;
using Edm.Model.IO;
using Edm.Model.Training;
using Edm.Sampling;

namespace Edm.Bench.Cli;

/// <summary>The generate command.</summary>
public sealed class GenerateCommand : IBenchCommand
{
    static string SamplerNames => string.Join(", ", SamplerSettings.NamedSamplers);

    /// <summary>Most images in the grid (the first seeds of a larger run).</summary>
    public const int GridMax = 256;

    /// <summary>Most sampler steps accepted (a guard against a typo that would run for hours).</summary>
    public const int MaxSteps = 1000;

    /// <summary>A text bar of 20 cells, e.g. [#######.............].</summary>
    static string ProgressBar(int done, int total)
    {
        int filled = total == 0 ? 20 : (int)(20L * done / total);
        return "[" + new string('#', filled) + new string('.', 20 - filled) + "]";
    }

    /// <inheritdoc/>
    public Command Build()
    {
        var device = CommonOptions.Device();
        var network = new Option<string>("--network")
        {
            Description = "Network: a snapshot of `train` (.safetensors), an NVlabs/edm snapshot (.pkl) or a PyTorch file holding an edm network (.pth)",
            Required = true,
        };
        var seeds = new Option<string>("--seeds") { Description = "Seeds: 0-63 or 1,5,9-12", DefaultValueFactory = _ => "0-63" };
        var steps = new Option<int>("--steps") { Description = "Sampler steps N", DefaultValueFactory = _ => 18 };
        var sampler = new Option<string>("--sampler") { Description = $"Sampler: {SamplerNames}", DefaultValueFactory = _ => "heun" };
        var cls = new Option<int?>("--class") { Description = "Class of every image (conditional networks; default: random per seed)" };
        var batch = new Option<int>("--batch") { Description = "Images per sampler batch", DefaultValueFactory = _ => 64 };
        var outdir = new Option<string>("--outdir") { Description = "Folder for the per-seed PNGs", DefaultValueFactory = _ => "out/generate" };
        var grid = new Option<string?>("--grid") { Description = "Grid PNG of the first 256 seeds, a path ending in .png (default: OUTDIR/grid.png)" };
        // NVlabs/edm generate.py's sampler options; each overrides the --sampler's setting when given.
        var sigmaMin = new Option<double?>("--sigma-min") { Description = "Lowest noise level (default: the discretization's, clamped to the network's)" };
        var sigmaMax = new Option<double?>("--sigma-max") { Description = "Highest noise level (default: the discretization's)" };
        var rho = new Option<double?>("--rho") { Description = "Time-step exponent of the edm discretization (default 7)" };
        var sChurn = new Option<double?>("--s-churn") { Description = "Algorithm 2 S_churn (stochasticity; 0 = deterministic); heun, euler, midpoint, ralston and dpm_2 take it" };
        var sMin = new Option<double?>("--s-min") { Description = "Algorithm 2 S_tmin" };
        var sMax = new Option<double?>("--s-max") { Description = "Algorithm 2 S_tmax" };
        var sNoise = new Option<double?>("--s-noise") { Description = "Algorithm 2 S_noise (also euler_ancestral's s_noise)" };
        var disc = new Option<string?>("--disc") { Description = "Time steps: vp, ve, iddpm, edm (the ablations of Fig. 2)" };
        var schedule = new Option<string?>("--schedule") { Description = "Noise schedule sigma(t): vp, ve, linear" };
        var scaling = new Option<string?>("--scaling") { Description = "Signal scaling s(t): vp, none" };
        var guidance = new Option<double>("--guidance")
        {
            Description = "Classifier-free guidance weight w of a conditional network: D = D(0 labels) + w (D(labels) - D(0 labels)); 1 = none",
            DefaultValueFactory = _ => 1,
        };
        var subdirs = new Option<bool>("--subdirs") { Description = "Write the images into one subfolder per 1000 seeds (000000/, 001000/, ...), as edm's generate.py" };
        var skipExisting = new Option<bool>("--skip-existing") { Description = "Keep the PNGs already in --outdir and sample only the missing seeds (to continue an interrupted run)" };
        var cmd = new Command("generate", "Generate images with a trained network snapshot");
        foreach (var o in new Option[] { device, network, seeds, steps, sampler, cls, batch, outdir, grid, skipExisting, guidance, subdirs,
                     sigmaMin, sigmaMax, rho, sChurn, sMin, sMax, sNoise, disc, schedule, scaling })
            cmd.Options.Add(o);
        cmd.SetAction(p => CliErrors.Guard(() =>
        {
            ulong[] seedList;
            try { seedList = SeedList.Parse(p.GetValue(seeds), "--seeds"); }
            catch (FormatException e) { throw new UsageException(e.Message); }
            // Each seed writes seedNNNN.png: a repeated seed would overwrite its own image.
            var repeated = seedList.GroupBy(x => x).FirstOrDefault(g => g.Count() > 1);
            if (repeated is not null)
                throw new UsageException($"--seeds lists seed {repeated.Key} {repeated.Count()} times; each seed writes one image (seed{repeated.Key:D4}.png), so list each seed once");
            if (p.GetValue(steps) > MaxSteps)
                throw new UsageException($"--steps {p.GetValue(steps)} is more than {MaxSteps}; the paper's samplers saturate below 100 steps (NFE 2N-1 for heun)");
            SamplerSettings settings;
            try
            {
                var named = SamplerSettings.Named(p.GetValue(sampler)!, p.GetValue(steps));
                bool noChurn = p.GetValue(sChurn) == 0;
                settings = named with
                {
                    SigmaMin = p.GetValue(sigmaMin) ?? named.SigmaMin,
                    SigmaMax = p.GetValue(sigmaMax) ?? named.SigmaMax,
                    Rho = p.GetValue(rho) ?? named.Rho,
                    SChurn = p.GetValue(sChurn) ?? named.SChurn,
                    // --s-churn 0 turns churn off: the named sampler's churn window and S_noise go with it.
                    STmin = p.GetValue(sMin) ?? (noChurn ? 0 : named.STmin),
                    STmax = p.GetValue(sMax) ?? (noChurn ? double.PositiveInfinity : named.STmax),
                    SNoise = p.GetValue(sNoise) ?? (noChurn ? 1 : named.SNoise),
                    Discretization = p.GetValue(disc) is { } d ? TimeSteps.ParseDiscretization(d) : named.Discretization,
                    Schedule = p.GetValue(schedule) is { } sc ? SamplerSettings.ParseSchedule(sc) : named.Schedule,
                    Scaling = p.GetValue(scaling) is { } sl ? SamplerSettings.ParseScaling(sl) : named.Scaling,
                };
                settings.Validate();
            }
            catch (ArgumentException e) { throw new UsageException($"sampler settings (--sampler, --steps, --disc, --schedule, --scaling, --sigma-*, --rho, --s-*): {e.Message}"); }
            if (p.GetValue(batch) < 1) throw new UsageException($"--batch {p.GetValue(batch)} must be >= 1");
            string dir = p.GetValue(outdir)!, gridPath = p.GetValue(grid) ?? Path.Combine(dir, "grid.png");
            if (!gridPath.EndsWith(".png", StringComparison.OrdinalIgnoreCase))
                throw new UsageException($"--grid '{gridPath}': the grid is written as PNG; give a path ending in .png");
            CommonOptions.RequireWritable(Path.Combine(dir, "seed0000.png"), "--outdir");
            CommonOptions.RequireWritable(gridPath, "--grid");
            using var dev = CommonOptions.OpenDevice(p.GetValue(device));
            Precond net;
            try { net = NetworkFiles.Load(dev, p.GetValue(network)!); }
            catch (CheckpointException e) { throw new UsageException(e.Message); }
            using (net)
            {
                int c = net.ImgChannels, r = net.Network.ImgResolution;
                if (c is not (1 or 3)) throw new UsageException($"the network makes {c}-channel images; PNG output supports 1 or 3");
                string PathOf(ulong seed) => p.GetValue(subdirs)
                    ? Path.Combine(dir, $"{seed - seed % 1000:D6}", $"seed{seed:D4}.png")
                    : Path.Combine(dir, $"seed{seed:D4}.png");
                var todo = p.GetValue(skipExisting) ? seedList.Where(x => !File.Exists(PathOf(x))).ToArray() : seedList;
                if (todo.Length < seedList.Length) Console.WriteLine($"--skip-existing: {seedList.Length - todo.Length} of {seedList.Length} images are already in {dir}");
                double w = p.GetValue(guidance);
                int nfePerImage = settings.Nfe * (w != 1 ? 2 : 1);
                Console.WriteLine($"generating {todo.Length} images {c}x{r}x{r} with {p.GetValue(sampler)} ({settings.Steps} steps, {nfePerImage} network evaluations each" +
                                  $"{(w != 1 ? $", guidance {w}" : "")}) on {dev}");
                var clock = System.Diagnostics.Stopwatch.StartNew();
                int written = 0;
                try
                {
                    Generator.Generate(net, todo, settings, p.GetValue(batch), p.GetValue(cls), (chunk, images) =>
                    {
                        int size = c * r * r;
                        for (int i = 0; i < chunk.Length; i++)
                        {
                            Directory.CreateDirectory(Path.GetDirectoryName(PathOf(chunk[i]))!);
                            ImageIO.SavePng(PathOf(chunk[i]), images.AsSpan(i * size, size), c, r, r);
                            written++;
                        }
                        double s = clock.Elapsed.TotalSeconds, ips = written / Math.Max(s, 1e-9);
                        Console.WriteLine($"  {ProgressBar(written, todo.Length)} {written}/{todo.Length} images  {ips:F1} img/s  " +
                                          $"elapsed {TimeSpan.FromSeconds(Math.Round(s)):hh\\:mm\\:ss}  eta {TimeSpan.FromSeconds(Math.Round((todo.Length - written) / Math.Max(ips, 1e-9))):hh\\:mm\\:ss}");
                    }, w, keepImages: false);
                    // The grid shows the first GridMax requested seeds, read back from the PNGs (the ones
                    // kept and the new ones): memory stays that of one batch plus the grid.
                    int shown = Math.Min(seedList.Length, GridMax);
                    var all = new float[shown * c * r * r];
                    for (int i = 0; i < shown; i++)
                    {
                        var img = ImageIO.LoadPng(PathOf(seedList[i]));
                        if (img.Data.Length != c * r * r)
                            throw new UsageException($"--skip-existing: '{PathOf(seedList[i])}' is {string.Join("x", img.Shape)}, not {c}x{r}x{r} (made by another network?); remove it or use another --outdir");
                        img.Data.CopyTo(all.AsSpan(i * c * r * r));
                    }
                    ImageIO.SaveGrid(gridPath, all, shown, c, r, r);
                }
                catch (IOException e)
                {
                    throw new UsageException($"writing the images failed after {written} of {todo.Length} ({e.Message}); the images written are whole, " +
                        "and the same command with --skip-existing continues from there");
                }
                Console.WriteLine($"wrote {written} PNGs to {dir} and the grid {gridPath} in {clock.Elapsed.TotalSeconds:F1} s");
            }
            return 0;
        }));
        return cmd;
    }
}

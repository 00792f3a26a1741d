// `generate`: loads a network snapshot written by `train`, wraps it in its preconditioning and
// samples one PNG per seed (seed0002.png, ...) plus a grid, with any sampler of Edm.Sampling.
// The same seed gives the same image whatever --batch is (per-sample latents, noise and class).
using System.CommandLine;
using Edm.Model;
using Edm.Model.Data;
using Edm.Model.Training;
using Edm.Sampling;

namespace Edm.Bench.Cli;

/// <summary>The generate command.</summary>
public sealed class GenerateCommand : IBenchCommand
{
    static string SamplerNames => string.Join(", ", SamplerSettings.NamedSamplers);

    /// <inheritdoc/>
    public Command Build()
    {
        var device = CommonOptions.Device();
        var network = new Option<string>("--network") { Description = "Network snapshot (network-snapshot-NNNNNN.safetensors)", Required = true };
        var seeds = new Option<string>("--seeds") { Description = "Seeds: 0-63 or 1,5,9-12", DefaultValueFactory = _ => "0-63" };
        var steps = new Option<int>("--steps") { Description = "Sampler steps N", DefaultValueFactory = _ => 18 };
        var sampler = new Option<string>("--sampler") { Description = $"Sampler: {SamplerNames}", DefaultValueFactory = _ => "heun" };
        var cls = new Option<int?>("--class") { Description = "Class of every image (conditional networks; default: random per seed)" };
        var batch = new Option<int>("--batch") { Description = "Images per sampler batch", DefaultValueFactory = _ => 64 };
        var outdir = new Option<string>("--outdir") { Description = "Folder for the per-seed PNGs", DefaultValueFactory = _ => "out/generate" };
        var grid = new Option<string?>("--grid") { Description = "Grid PNG path (default: OUTDIR/grid.png)" };
        var cmd = new Command("generate", "Generate images with a trained network snapshot");
        foreach (var o in new Option[] { device, network, seeds, steps, sampler, cls, batch, outdir, grid }) cmd.Options.Add(o);
        cmd.SetAction(p => CliErrors.Guard(() =>
        {
            ulong[] seedList;
            try { seedList = SeedList.Parse(p.GetValue(seeds), "--seeds"); }
            catch (FormatException e) { throw new UsageException(e.Message); }
            SamplerSettings settings;
            try
            {
                settings = SamplerSettings.Named(p.GetValue(sampler)!, p.GetValue(steps));
                settings.Validate();
            }
            catch (ArgumentException e) { throw new UsageException($"--sampler/--steps: {e.Message}"); }
            if (p.GetValue(batch) < 1) throw new UsageException($"--batch {p.GetValue(batch)} must be >= 1");
            string dir = p.GetValue(outdir)!, gridPath = p.GetValue(grid) ?? Path.Combine(dir, "grid.png");
            CommonOptions.RequireWritable(Path.Combine(dir, "seed0000.png"), "--outdir");
            CommonOptions.RequireWritable(gridPath, "--grid");
            using var dev = CommonOptions.OpenDevice(p.GetValue(device));
            Precond net;
            try
            {
                var (n, spec, _) = Checkpoints.LoadSnapshot(dev, p.GetValue(network)!);
                net = new Precond(n, spec.Precond, spec.SigmaData);
            }
            catch (CheckpointException e) { throw new UsageException(e.Message); }
            using (net)
            {
                int c = net.ImgChannels, r = net.Network.ImgResolution;
                if (c is not (1 or 3)) throw new UsageException($"the network makes {c}-channel images; PNG output supports 1 or 3");
                Console.WriteLine($"generating {seedList.Length} images {c}x{r}x{r} with {p.GetValue(sampler)} ({settings.Steps} steps, {settings.Nfe} NFE) on {dev}");
                var clock = System.Diagnostics.Stopwatch.StartNew();
                var all = Generator.Generate(net, seedList, settings, p.GetValue(batch), p.GetValue(cls), (chunk, images) =>
                {
                    int size = c * r * r;
                    for (int i = 0; i < chunk.Length; i++)
                        ImageIO.SavePng(Path.Combine(dir, $"seed{chunk[i]:D4}.png"), images.AsSpan(i * size, size), c, r, r);
                });
                ImageIO.SaveGrid(gridPath, all, seedList.Length, c, r, r);
                Console.WriteLine($"wrote {seedList.Length} PNGs to {dir} and the grid {gridPath} in {clock.Elapsed.TotalSeconds:F1} s");
            }
            return 0;
        }));
        return cmd;
    }
}

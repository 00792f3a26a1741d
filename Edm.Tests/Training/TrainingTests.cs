using Edm.Kernels;
using Edm.Model;
using Edm.Model.Data;
using Edm.Model.Training;
using Edm.Sampling;
using Edm.Tests.Data;
using Xunit;

namespace Edm.Tests.Training;

public sealed class TrainingTests(CpuDevice cpu) : IClassFixture<CpuDevice>
{
    readonly EdmDevice _d = cpu.Device;

    // A tiny labelled dataset of random 8x8 grayscale PNGs (5 images: batches cross epochs).
    internal static string MakeDataset(TempDir dir, int count = 5, int size = 8)
    {
        var root = dir["data"];
        var labels = new List<string>();
        for (int i = 0; i < count; i++)
        {
            TempDir.WritePng(Path.Combine(root, $"img{i:D3}.png"), size, size, 1, TempDir.RandomBytes(size * size, 100 + i));
            labels.Add($"[\"img{i:D3}.png\", {i % 3}]");
        }
        File.WriteAllText(Path.Combine(root, "dataset.json"), "{\"labels\": [" + string.Join(", ", labels) + "]}");
        return root;
    }

    static TrainingOptions Tiny(double kimg = 0.012) => new()
    {
        Preset = "ddpmpp-tiny", Batch = 4, BatchGpu = 2, Kimg = kimg, SnapKimg = 0.008, TickKimg = 0.004,
        Lr = 2e-3, LrRampupKimg = 0.006, EmaHalflifeKimg = 0.01, Seed = 7, Cond = true,
    };

    [Fact]
    public void End_to_end_run_writes_snapshots_states_and_stats_that_load()
    {
        using var tmp = new TempDir();
        using var ds = ImageDataset.Open(MakeDataset(tmp), preload: true);
        var outDir = tmp["run"];
        Directory.CreateDirectory(outDir);
        var lines = new List<string>();
        using (var t = Trainer.Start(_d, ds, Tiny()))
        {
            t.Run(outDir, lines.Add);
            Assert.Equal(3, t.Step);
            Assert.Equal(12, t.CurNimg);
        }
        Assert.Contains(lines, l => l.StartsWith("tick 0") && l.Contains("loss") && l.Contains("img/s") && l.Contains("eta"));
        var stats = File.ReadAllLines(Path.Combine(outDir, "stats.jsonl"));
        Assert.Equal(3, stats.Length); // ticks at 4, 8, 12 images
        Assert.True(File.Exists(Path.Combine(outDir, "training_options.json")));
        Assert.Equal("network-snapshot-000000.safetensors", Path.GetFileName(Checkpoints.List(outDir, Checkpoints.SnapshotPrefix).Single()));
        var state = Checkpoints.List(outDir, Checkpoints.StatePrefix).Single();
        Assert.Equal("step 3, kimg 0.012", Checkpoints.CheckState(_d, state));
        Assert.Empty(Directory.GetFiles(outDir, ".*tmp*"));

        var (net, spec, meta) = Checkpoints.LoadSnapshot(_d, Checkpoints.List(outDir, Checkpoints.SnapshotPrefix)[0]);
        using (net)
        {
            Assert.Equal(new NetworkSpec("ddpmpp-tiny", 8, 1, 3, 0, null, PrecondKind.Edm, 0.5), spec);
            Assert.Equal("3", meta["step"]);
            // The snapshot holds the EMA weights, which differ from the initial ones after training.
            using var init = spec.CreateNetwork(_d, 7);
            var w0 = init.Module.NamedParameters().First(p => p.Name.EndsWith("conv0.weight")).Param.Value.ToArray();
            var w1 = net.Module.NamedParameters().First(p => p.Name.EndsWith("conv0.weight")).Param.Value.ToArray();
            Assert.NotEqual(w0, w1);
        }
    }

    [Fact]
    public void Training_repeats_bit_for_bit_whatever_the_thread_count()
    {
        // Two fresh runs with the same options on the default threads, and runs with the .NET
        // runtime told it has 1 and 3 cores (DOTNET_PROCESSOR_COUNT): every CPU reduction is
        // partitioned by index, not by scheduling, so the losses and the snapshot bytes agree.
        // Batch 4 (>= 3 images: the conv weight gradient sums several image groups), 8 steps.
        using var tmp = new TempDir();
        var data = MakeDataset(tmp, count: 7);
        (string[] Losses, byte[] Snapshot) Train(string name, string? cores)
        {
            var dir = tmp[name];
            var env = cores is null ? null : new Dictionary<string, string> { ["DOTNET_PROCESSOR_COUNT"] = cores };
            var (code, output, err) = CliProcess.Run(env, "train", "--data", data, "--out", dir, "--preset", "ddpmpp-tiny", "--batch", "4",
                "--kimg", "0.032", "--snap", "0.032", "--tick", "0.004", "--seed", "3", "--lr", "2e-3", "--lr-rampup", "0", "--cond", "--device", "cpu");
            Assert.True(code == 0, output + err);
            var losses = File.ReadAllLines(Path.Combine(dir, "stats.jsonl"))
                .Select(l => System.Text.Json.JsonDocument.Parse(l).RootElement.GetProperty("loss").GetRawText()).ToArray();
            return (losses, File.ReadAllBytes(Checkpoints.List(dir, Checkpoints.SnapshotPrefix)[0]));
        }
        var a = Train("a", null);
        Assert.Equal(8, a.Losses.Length);
        foreach (var (name, cores) in new[] { ("b", (string?)null), ("one", "1"), ("three", "3") })
        {
            var other = Train(name, cores);
            Assert.Equal(a.Losses, other.Losses);
            Assert.True(a.Snapshot.SequenceEqual(other.Snapshot), $"snapshot of run '{name}' differs from the first run's");
        }
    }

    [Fact]
    public void Augmentation_and_dropout_train_with_nine_augment_labels()
    {
        // --augment > 0 conditions the network on the 9-d augment labels (map_augment) and
        // --dropout > 0 switches dropout on; a short run must stay finite and snapshot an
        // augment-conditioned network.
        using var tmp = new TempDir();
        using var ds = ImageDataset.Open(MakeDataset(tmp), preload: true);
        var outDir = tmp["run"];
        Directory.CreateDirectory(outDir);
        var lines = new List<string>();
        using (var t = Trainer.Start(_d, ds, Tiny(0.008) with { Augment = 0.5, Dropout = 0.1 }))
            t.Run(outDir, lines.Add);
        var stats = File.ReadAllLines(Path.Combine(outDir, "stats.jsonl"));
        Assert.NotEmpty(stats);
        Assert.DoesNotContain(stats, l => l.Contains("NaN") || l.Contains("Infinity"));
        var (net, spec, _) = Checkpoints.LoadSnapshot(_d, Checkpoints.List(outDir, Checkpoints.SnapshotPrefix)[^1]);
        using (net)
        {
            Assert.Equal(9, spec.AugmentDim);
            Assert.Contains(net.Module.NamedParameters(), p => p.Name == "map_augment.weight");
        }
    }

    [Fact]
    public void Resumed_run_repeats_the_uninterrupted_losses_bit_for_bit()
    {
        using var tmp = new TempDir();
        using var ds = ImageDataset.Open(MakeDataset(tmp), preload: true);
        const int k = 2, m = 3;
        double[] straight;
        float[] straightEma, straightW;
        using (var t = Trainer.Start(_d, ds, Tiny()))
        {
            straight = Enumerable.Range(0, k + m).Select(_ => t.TrainStep()).ToArray();
            straightEma = t.Ema[3].ToArray();
            straightW = t.Precond.Network.Module.Parameters().ElementAt(3).Value.ToArray();
        }
        Assert.All(straight, l => Assert.True(double.IsFinite(l) && l > 0));
        Assert.NotEqual(straight[0], straight[1]);

        string state;
        var first = new List<double>();
        using (var t = Trainer.Start(_d, ds, Tiny()))
        {
            for (int i = 0; i < k; i++) first.Add(t.TrainStep());
            state = t.SaveState(tmp.Path);
        }
        var second = new List<double>();
        using (var t = Trainer.Resume(_d, ds, state))
        {
            Assert.Equal(k, t.Step);
            for (int i = 0; i < m; i++) second.Add(t.TrainStep());
            Assert.Equal(straightEma, t.Ema[3].ToArray());
            Assert.Equal(straightW, t.Precond.Network.Module.Parameters().ElementAt(3).Value.ToArray());
        }
        Assert.Equal(straight, first.Concat(second).ToArray());
    }

    [Fact]
    public void Corrupt_newest_state_gives_a_clear_error_and_the_good_one_is_kept()
    {
        using var tmp = new TempDir();
        var data = MakeDataset(tmp);
        using var ds = ImageDataset.Open(data, preload: true);
        var dir = tmp["run"];
        Directory.CreateDirectory(dir);
        string good;
        using (var t = Trainer.Start(_d, ds, Tiny()))
        {
            t.TrainStep();
            good = t.SaveState(dir);
        }
        var goodBytes = File.ReadAllBytes(good);
        // A newer state cut short (as a torn copy would be) and one with a flipped header byte.
        var newer = Path.Combine(dir, Checkpoints.StateName(5000));
        File.WriteAllBytes(newer, goodBytes.AsSpan(0, goodBytes.Length / 2).ToArray());
        var e = Assert.Throws<CheckpointException>(() => Trainer.Resume(_d, ds, newer));
        Assert.Contains("truncated", e.Message);
        Assert.Contains(newer, e.Message);
        var garbled = (byte[])goodBytes.Clone();
        garbled[12] = (byte)'#';
        File.WriteAllBytes(newer, garbled);
        Assert.Throws<CheckpointException>(() => Checkpoints.CheckState(_d, newer));

        // The CLI refuses in one line (exit 2), names the previous state, and touches neither file.
        int rc = CliProcess.Code(["train", "--data", data, "--out", dir, "--resume", dir, "--device", "cpu"]);
        Assert.Equal(2, rc);
        Assert.Equal(goodBytes, File.ReadAllBytes(good));
        Assert.Equal(garbled, File.ReadAllBytes(newer));
        // A fresh run into a folder that holds a run is refused rather than overwriting it.
        Assert.Equal(2, CliProcess.Code(["train", "--data", data, "--preset", "ddpmpp-tiny", "--kimg", "0.01", "--out", dir, "--device", "cpu"]));
        Assert.Equal(goodBytes, File.ReadAllBytes(good));
        // Resuming with a changed option names it, in the library's terms and as the CLI's flag.
        var changed = Assert.Throws<InvalidOptionException>(() => Trainer.Resume(_d, ds, good, o => o with { Lr = o.Lr * 2 }));
        Assert.Equal("Lr", changed.Option);
        var (code, _, err) = CliProcess.Run("train", "--data", data, "--out", dir, "--resume", good, "--lr", "0.5", "--device", "cpu");
        Assert.Equal(2, code);
        Assert.StartsWith("error: --lr 0.5 differs from the resumed run's", err);
        // Resuming from the good state works; the length and its end-of-run decay may change.
        using var r = Trainer.Resume(_d, ds, good);
        Assert.Equal(1, r.Step);
        using var longer = Trainer.Resume(_d, ds, good, o => o with { Kimg = o.Kimg * 3, LrDecayKimg = o.Kimg });
        Assert.Equal(1, longer.Step);
        Assert.Equal(r.Options.Kimg, longer.Options.LrDecayKimg);
    }

    [Fact]
    public void Generation_gives_each_seed_the_same_image_whatever_the_batch()
    {
        var spec = new NetworkSpec("ddpmpp-tiny", 8, 1, 3, 0, null, PrecondKind.Edm, 0.5);
        using var net = new Precond(spec.CreateNetwork(_d, 5), spec.Precond, spec.SigmaData);
        // Untrained, the near-zero-initialised layers (edm's init_zero: weight 1e-5, bias 0) make F
        // nearly independent of sigma and class; give them weights so images depend on the whole network.
        int k = 0;
        foreach (var p in net.Network.Module.Parameters())
            if (p.Value.ToArray().All(v => Math.Abs(v) < 1e-3f)) p.Value.CopyFrom(Edm.Verification.Compare.Random(p.Value.Length, 50 + k++).Select(v => 0.1f * v).ToArray());
        Assert.True(k > 0);
        ulong[] seeds = [3, 7, 11];
        foreach (var sampler in new[] { "euler", "stochastic" })
        {
            var settings = Edm.Sampling.SamplerSettings.Named(sampler, 3);
            var one = Generator.Generate(net, seeds, settings, batch: 1);
            var three = Generator.Generate(net, seeds, settings, batch: 3);
            Assert.Equal(one, three);
            var single = Generator.Generate(net, [7], settings, batch: 1);
            Assert.Equal(one.AsSpan(64, 64).ToArray(), single);
            // Streaming (keepImages false): nothing is kept, the batches carry the same images.
            var streamed = new List<float>();
            Assert.Empty(Generator.Generate(net, seeds, settings, batch: 2, onBatch: (_, images) => streamed.AddRange(images), keepImages: false));
            Assert.Equal(one, streamed.ToArray());
            Assert.NotEqual(one.AsSpan(0, 64).ToArray(), one.AsSpan(64, 64).ToArray());
        }
        // Random classes come from each seed's own stream: fixed per seed, covering every class.
        Assert.Equal(Generator.ClassOf(7, 3, null), Generator.ClassOf(7, 3, null));
        Assert.Equal([0, 1, 2], Enumerable.Range(0, 60).Select(s => Generator.ClassOf((ulong)s, 3, null)).Distinct().Order());
        Assert.Equal(2, Generator.ClassOf(7, 3, 2));
        var euler = new SamplerSettings { Steps = 3, Solver = Solver.Euler };
        Assert.NotEqual(Generator.Generate(net, [7], euler, 1, fixedClass: 0), Generator.Generate(net, [7], euler, 1, fixedClass: 2));
        Assert.Equal("fixedClass", Assert.Throws<InvalidOptionException>(() => Generator.Generate(net, [7], euler, 1, fixedClass: 3)).Option);
    }

    [Fact]
    public void Transfer_starts_net_and_ema_from_a_snapshot_and_refuses_another_network()
    {
        using var tmp = new TempDir();
        using var ds = ImageDataset.Open(MakeDataset(tmp), preload: true);
        string snap;
        float[][] trained;
        using (var t = Trainer.Start(_d, ds, Tiny()))
        {
            for (int i = 0; i < 2; i++) t.TrainStep();
            snap = t.SaveSnapshot(tmp.Path);
            trained = t.Ema.Select(e => e.ToArray()).ToArray();
        }
        // Another seed would draw other initial weights: the transferred run must hold the snapshot's.
        using (var t = Trainer.Start(_d, ds, Tiny() with { Seed = 11, Transfer = snap, Dropout = 0.2 }))
        {
            var w = t.Precond.Network.Module.Parameters().Select(p => p.Value.ToArray()).ToArray();
            Assert.Equal(trained, w);
            Assert.Equal(trained, t.Ema.Select(e => e.ToArray()).ToArray());
            Assert.Equal(0, t.Step);
            Assert.True(double.IsFinite(t.TrainStep()));
            // The state records the transfer; a resume takes the weights from the state, not the snapshot.
            var state = t.SaveState(tmp.Path);
            using var r = Trainer.Resume(_d, ds, state);
            Assert.Equal(snap, r.Options.Transfer);
            Assert.Equal(t.Ema[0].ToArray(), r.Ema[0].ToArray());
        }
        var e = Assert.Throws<CheckpointException>(() => Trainer.Start(_d, ds, Tiny() with { Cond = false, Transfer = snap }));
        Assert.Contains("preset, resolution, channels", e.Message);
        Assert.Throws<CheckpointException>(() => Trainer.Start(_d, ds, Tiny() with { Transfer = tmp["missing.safetensors"] }));

        // CLI: --transfer with --resume, or a file that is not a snapshot, is exit 2 with nothing written.
        var outDir = tmp["never"];
        Assert.Equal(2, CliProcess.Code(["train", "--data", ds.Path, "--transfer", snap, "--resume", tmp.Path, "--kimg", "0.01", "--out", outDir, "--device", "cpu"]));
        var junk = tmp["junk.safetensors"];
        File.WriteAllText(junk, "not a snapshot");
        var (code, _, err) = CliProcess.Run(["train", "--data", ds.Path, "--transfer", junk, "--kimg", "0.01", "--out", outDir, "--device", "cpu"]);
        Assert.Equal(2, code);
        Assert.Contains("--transfer", err);
        Assert.False(Directory.Exists(outDir));
    }

    [Fact]
    public void Learning_rate_ramps_up_holds_and_decays_linearly_to_zero_at_the_end()
    {
        var o = new TrainingOptions { Preset = "ddpmpp-tiny", Batch = 4, Kimg = 10, Lr = 2e-3, LrRampupKimg = 1, LrDecayKimg = 4 };
        Assert.Equal(1e-3, Trainer.LearningRate(o, 500), 12);       // half way up the ramp
        Assert.Equal(2e-3, Trainer.LearningRate(o, 6000), 12);      // held until the decay starts
        Assert.Equal(1e-3, Trainer.LearningRate(o, 8000), 12);      // half way down
        Assert.Equal(0, Trainer.LearningRate(o, 10_000), 12);       // zero at the end
        Assert.Equal(2e-3, Trainer.LearningRate(o with { LrDecayKimg = 0 }, 9_999), 12);  // no decay: edm's constant rate
        using var tmp = new TempDir();
        using var ds = ImageDataset.Open(MakeDataset(tmp), preload: true);
        var e = Assert.Throws<InvalidOptionException>(() => (o with { LrDecayKimg = 11 }).Validate(ds));
        Assert.Equal("LrDecayKimg", e.Option);
        Assert.Contains("must lie in [0, the run's kimg 10]", e.Problem);
        (o with { LrDecayKimg = 10 }).Validate(ds);
    }

    [Fact]
    public void Cli_mistakes_exit_2_without_leaving_files()
    {
        using var tmp = new TempDir();
        var data = MakeDataset(tmp);
        var outDir = tmp["never"];
        Assert.Equal(2, CliProcess.Code(["train", "--data", tmp["missing"], "--preset", "ddpmpp-tiny", "--kimg", "0.01", "--out", outDir, "--device", "cpu"]));
        Directory.CreateDirectory(tmp["empty"]);
        Assert.Equal(2, CliProcess.Code(["train", "--data", tmp["empty"], "--preset", "ddpmpp-tiny", "--kimg", "0.01", "--out", outDir, "--device", "cpu"]));
        var odd = tmp["odd"];
        TempDir.WritePng(Path.Combine(odd, "a.png"), 12, 12, 1, TempDir.RandomBytes(144, 1));
        Assert.Equal(2, CliProcess.Code(["train", "--data", odd, "--preset", "ddpmpp-tiny", "--kimg", "0.01", "--out", outDir, "--device", "cpu"]));
        Assert.Equal(2, CliProcess.Code(["train", "--data", data, "--preset", "ddpmpp-tiny", "--kimg", "0.01", "--out", outDir, "--augment", "1.5", "--device", "cpu"]));
        Assert.False(Directory.Exists(outDir));
        var file = tmp["file"];
        File.WriteAllText(file, "x");
        Assert.Equal(2, CliProcess.Code(["train", "--data", data, "--preset", "ddpmpp-tiny", "--kimg", "0.01", "--out", file, "--device", "cpu"]));

        var gen = tmp["gen"];
        Assert.Equal(2, CliProcess.Code(["generate", "--network", tmp["nope.safetensors"], "--seeds", "0-1", "--outdir", gen, "--device", "cpu"]));
        Assert.Equal(2, CliProcess.Code(["generate", "--network", file, "--seeds", "0-1", "--outdir", gen, "--device", "cpu"]));
        var snap = tmp["snap.safetensors"];
        var spec = new NetworkSpec("ddpmpp-tiny", 8, 1, 3, 0, null, PrecondKind.Edm, 0.5);
        using (var net = spec.CreateNetwork(_d)) Checkpoints.SaveSnapshot(snap, net, spec, null);
        Assert.Equal(2, CliProcess.Code(["generate", "--network", snap, "--seeds", "5-2", "--outdir", gen, "--device", "cpu"]));
        Assert.Equal(2, CliProcess.Code(["generate", "--network", snap, "--seeds", "0", "--class", "3", "--outdir", gen, "--device", "cpu"]));
        foreach (var (args, expected) in new[]
                 {
                     (new[] { "--seeds", "3,3,3" }, "seed 3 3 times"),
                     (new[] { "--seeds", "0", "--grid", tmp["g.jpg"] }, "ending in .png"),
                     (new[] { "--seeds", "0", "--steps", "100000" }, "more than 1000"),
                 })
        {
            var (code, _, err) = CliProcess.Run(["generate", "--network", snap, "--outdir", gen, "--device", "cpu", .. args]);
            Assert.Equal(2, code);
            Assert.Contains(expected, err);
        }
        Assert.Empty(Directory.Exists(gen) ? Directory.GetFiles(gen, "*.png") : []);
        var (ok, output, _) = CliProcess.Run(["generate", "--network", snap, "--seeds", "0-2", "--steps", "2", "--sampler", "euler", "--outdir", gen, "--device", "cpu"]);
        Assert.Equal(0, ok);
        Assert.Contains("3/3 images", output);  // progress
        Assert.Equal(new[] { "grid.png", "seed0000.png", "seed0001.png", "seed0002.png" }, Directory.GetFiles(gen).Select(Path.GetFileName).Order());
        // An interrupted run continues: kept images are not rewritten, missing ones are sampled, the grid shows all.
        File.Delete(Path.Combine(gen, "seed0001.png"));
        var kept = File.GetLastWriteTimeUtc(Path.Combine(gen, "seed0000.png"));
        var grid = File.ReadAllBytes(Path.Combine(gen, "grid.png"));
        (ok, output, _) = CliProcess.Run(["generate", "--network", snap, "--seeds", "0-2", "--steps", "2", "--sampler", "euler", "--outdir", gen, "--skip-existing", "--device", "cpu"]);
        Assert.Equal(0, ok);
        Assert.Contains("2 of 3 images are already", output);
        Assert.Equal(kept, File.GetLastWriteTimeUtc(Path.Combine(gen, "seed0000.png")));
        Assert.Equal(grid, File.ReadAllBytes(Path.Combine(gen, "grid.png")));
    }
}

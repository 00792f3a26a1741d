using System.Globalization;
using Edm.Model.Data;
using Edm.Sampling;
using Edm.Tests.Data;
using Xunit;

namespace Edm.Tests.Bench;

/// <summary>
/// A 16x16 FID reference for the committed MNIST model, made once per test class: the 334 held-out
/// digits of the fixture box-filtered 2x2 (as `train --resolution 16` and `dataset convert --filter box`
/// do), written as PNGs and passed through `fid ref` with the committed 16x16 classifier.
/// </summary>
public sealed class Mnist16Reference : IDisposable
{
    public TempDir Dir { get; } = new();
    public string Npz => Dir["ref16.npz"];
    public static string Network => TestData.Repo("models/mnist16-ddpmpp-tiny.safetensors");
    public static string Features => "classifier:" + TestData.Repo("models/mnist16-classifier.safetensors");

    public Mnist16Reference()
    {
        using var ds = ImageDataset.Open(TestData.Repo("Edm.Tests/Fixtures/mnist-heldout-334.zip"), preload: true);
        Assert.Equal((1, 32), (ds.Channels, ds.Resolution));
        var x = ds.ReadImages(Enumerable.Range(0, ds.Count).ToArray());  // (N, 1, 32, 32)
        for (int i = 0; i < ds.Count; i++)
        {
            var png = new byte[16 * 16];  // (16, 16)
            for (int y = 0; y < 16; y++)
                for (int xx = 0; xx < 16; xx++)
                {
                    int sum = 0;
                    for (int dy = 0; dy < 2; dy++)
                        for (int dx = 0; dx < 2; dx++) sum += ImageIO.ToByte(x[i * 1024 + (2 * y + dy) * 32 + 2 * xx + dx]);
                    png[y * 16 + xx] = (byte)((sum + 2) / 4);  // the 2x2 mean in [-1, 1], saved to 8 bits
                }
            TempDir.WritePng(Dir[$"digits16/{i:D4}.png"], 16, 16, 1, png);
        }
        var (code, _, err) = CliProcess.Run("fid", "ref", "--data", Dir["digits16"], "--dest", Npz, "--features", Features, "--device", "cpu");
        Assert.True(code == 0, err);
    }

    public void Dispose() => Dir.Dispose();
}

// `fig2` (issue 14): the Fig. 2 sampler study on the committed 16x16 MNIST model, at CI size.
public sealed class Fig2Tests(Mnist16Reference reference) : IClassFixture<Mnist16Reference>
{
    // The CI-sized run, with one option's value replaced (or the option added).
    string[] Args(string outDir, string? option = null, string? value = null)
    {
        string[] args = ["fig2", "--network", Mnist16Reference.Network, "--ref", reference.Npz, "--features", Mnist16Reference.Features,
                         "--out", outDir, "--images", "8", "--nfe", "3,5", "--device", "cpu"];
        if (option is null) return args;
        int i = Array.IndexOf(args, option);
        if (i < 0) return [.. args, option, value!];
        args[i + 1] = value!;
        return args;
    }

    [Fact]
    public void A_small_study_writes_every_point_and_the_figure()
    {
        using var tmp = new TempDir();
        var (code, output, err) = CliProcess.Run(Args(tmp["out"]));
        Assert.True(code == 0, err + output);
        Assert.Contains("estimate:", output);
        Assert.Contains("eta", output);
        Assert.Contains("+ EDM sigma(t), s(t)", output);  // the printed table

        var lines = File.ReadAllLines(Path.Combine(tmp["out"], "fig2.csv"));
        Assert.Equal("formulation,sampler,steps,nfe,images,fid", lines[0]);
        var rows = lines.Skip(1).Select(l => l.Split(',')).ToList();
        Assert.Equal(2 * (3 * 4 + 1), rows.Count);
        var fid = new Dictionary<(string, string, int), double>();
        foreach (var r in rows)
        {
            Assert.Equal(6, r.Length);
            int steps = int.Parse(r[2], CultureInfo.InvariantCulture), nfe = int.Parse(r[3], CultureInfo.InvariantCulture);
            Assert.Equal("8", r[4]);
            double f = double.Parse(r[5], CultureInfo.InvariantCulture);
            Assert.True(double.IsFinite(f) && f > 0, string.Join(',', r));
            Assert.Contains(nfe, new[] { 3, 5 });
            // Euler: N = NFE; Heun: 2N - 1 = NFE.
            Assert.Equal(r[1] == "original" ? nfe : (nfe + 1) / 2, steps);
            fid[(r[0], r[1], nfe)] = f;
        }
        foreach (int nfe in new[] { 3, 5 })
        {
            Assert.True(fid.ContainsKey(("EDM", "edm", nfe)));
            foreach (var f in Fig2Chain.Formulations)
                foreach (var s in Fig2Chain.Samplers) Assert.True(fid.ContainsKey((f, s, nfe)), $"{f} {s} NFE {nfe} missing");
            // With one network the last step of every chain is EDM's sampler: the same seeds give the same FID.
            foreach (var f in Fig2Chain.Formulations) Assert.Equal(fid[("EDM", "edm", nfe)], fid[(f, "edm_sigma_s", nfe)]);
            Assert.NotEqual(fid[("EDM", "edm", nfe)], fid[("VP", "original", nfe)]);
        }
        var png = File.ReadAllBytes(Path.Combine(tmp["out"], "fig2.png"));
        Assert.Equal(new byte[] { 0x89, (byte)'P', (byte)'N', (byte)'G' }, png[..4]);
        Assert.Equal(new[] { "fig2.csv", "fig2.png" }, Directory.GetFiles(tmp["out"]).Select(Path.GetFileName).Order());
    }

    [Fact]
    public void The_in_memory_samples_score_as_generate_then_fid_calc_does()
    {
        // fig2's EDM point at NFE 5 (Heun, 3 steps) against the same seeds through PNGs on disk.
        using var tmp = new TempDir();
        var (code, output, err) = CliProcess.Run(Args(tmp["out"], "--nfe", "5"));
        Assert.True(code == 0, err + output);
        var edm = File.ReadAllLines(Path.Combine(tmp["out"], "fig2.csv")).Single(l => l.StartsWith("EDM,edm,", StringComparison.Ordinal));
        double inMemory = double.Parse(edm.Split(',')[5], CultureInfo.InvariantCulture);
        (code, _, err) = CliProcess.Run("generate", "--network", Mnist16Reference.Network, "--seeds", "0-7", "--steps", "3", "--sampler", "heun",
            "--outdir", tmp["gen"], "--device", "cpu");
        Assert.True(code == 0, err);
        (code, output, err) = CliProcess.Run("fid", "calc", "--images", tmp["gen"], "--ref", reference.Npz, "--features", Mnist16Reference.Features, "--device", "cpu");
        Assert.True(code == 0, err);
        double onDisk = double.Parse(output.Trim().Split('\n')[^1], CultureInfo.InvariantCulture);
        Assert.True(Math.Abs(inMemory - onDisk) <= 1e-4 * onDisk, $"fig2 {inMemory} vs generate + fid calc {onDisk}");
    }

    [Fact]
    public void Bad_input_is_one_error_line_exit_2_and_nothing_written()
    {
        using var tmp = new TempDir();
        var three = tmp["three.npz"];
        new Edm.Model.Metrics.FeatureStatistics([0, 0, 0], [1, 0, 0, 0, 1, 0, 0, 0, 1], 3).Save(three);
        File.WriteAllText(tmp["file"], "in the way");
        var cases = new (string Option, string Value, string Expected)[]
        {
            ("--network", tmp["missing.safetensors"], "does not exist"),
            ("--ref", three, "3 features"),
            ("--features", "classifier:" + TestData.Repo("models/mnist-classifier.safetensors"), "32x32"),
            ("--nfe", "2,5", "3 <= NFE"),
            ("--nfe", "1", "Heun"),
            ("--nfe", "5,x", "'x'"),
            ("--nfe", "5,5", "twice"),
            ("--images", "1", "at least 2"),
            ("--batch", "0", "--batch"),
        };
        int k = 0;
        foreach (var (option, value, expected) in cases)
        {
            string outDir = tmp[$"out{k++}"];
            var (code, _, err) = CliProcess.Run(Args(outDir, option, value));
            Assert.True(code == 2, $"{option} {value}: exit {code}\n{err}");
            var errLines = err.Split('\n', StringSplitOptions.RemoveEmptyEntries);
            Assert.True(errLines.Length == 1 && errLines[0].StartsWith("error: ", StringComparison.Ordinal), err);
            Assert.Contains(expected, err);
            Assert.False(Directory.Exists(outDir), $"{expected}: {outDir} was created");
        }
        // An --out that cannot be a folder (a file is in the way).
        var (c2, _, e2) = CliProcess.Run(Args(Path.Combine(tmp["file"], "out")));
        Assert.Equal(2, c2);
        Assert.StartsWith("error: --out", e2);
        Assert.Equal("in the way", File.ReadAllText(tmp["file"]));
    }
}

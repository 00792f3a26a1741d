using Edm.Tests.Data;
using Xunit;

namespace Edm.Tests.Model;

// The models in models/ load and work from a fresh clone: the 16x16 MNIST diffusion model samples
// through `generate`, and `fid` reads generate's output folder (its grid.png is not a sample).
public sealed class CommittedModelTests
{
    [Fact]
    public void The_mnist16_model_generates_and_fid_reads_its_output()
    {
        using var tmp = new TempDir();
        var gen = tmp["gen"];
        var (code, _, err) = CliProcess.Run("generate", "--network", TestData.Repo("models/mnist16-ddpmpp-tiny.safetensors"), "--seeds", "0-3",
            "--steps", "3", "--sampler", "euler", "--outdir", gen, "--device", "cpu");
        Assert.True(code == 0, err);
        Assert.True(File.Exists(Path.Combine(gen, "grid.png")));
        string clf = "classifier:" + TestData.Repo("models/mnist16-classifier.safetensors"), reference = tmp["ref.npz"];
        (code, _, err) = CliProcess.Run("fid", "ref", "--data", TestData.Repo("Edm.Tests/Fixtures/mnist-heldout-334.zip"), "--dest", tmp["wrong.npz"], "--features", clf, "--device", "cpu");
        Assert.Equal(2, code);  // 32x32 digits into the 16x16 classifier
        Assert.Contains("16x16", err);
        (code, var output, err) = CliProcess.Run("fid", "calc", "--images", gen, "--ref", reference, "--features", clf, "--device", "cpu");
        Assert.Equal(2, code);  // no such reference yet
        Assert.Contains("ref.npz", err);
        Assert.True(CliProcess.Code("fid", "ref", "--data", tmp["gen"], "--dest", tmp["gen.npz"], "--features", clf, "--device", "cpu") == 2,
            "fid ref on a generate folder must refuse its grid (it is not an --images option)");
        new Edm.Model.Metrics.FeatureStatistics(new double[128], Enumerable.Range(0, 128 * 128).Select(i => i % 129 == 0 ? 1.0 : 0).ToArray(), 128).Save(reference);
        (code, output, err) = CliProcess.Run("fid", "calc", "--images", gen, "--ref", reference, "--features", clf, "--device", "cpu");
        Assert.True(code == 0, err);
        Assert.True(double.IsFinite(double.Parse(output.Trim().Split('\n')[^1], System.Globalization.CultureInfo.InvariantCulture)));
    }

    [Fact]
    public void Generate_takes_edms_sampler_options()
    {
        using var tmp = new TempDir();
        string net = TestData.Repo("models/mnist16-ddpmpp-tiny.safetensors");
        string[] Gen(string dir, params string[] extra) => ["generate", "--network", net, "--seeds", "0-1", "--steps", "4", "--outdir", tmp[dir], "--device", "cpu", .. extra];
        Assert.Equal(0, CliProcess.Code(Gen("edm")));
        // The VP formulation's sampler (Fig. 2's ablation): other time steps, schedule and scaling.
        Assert.Equal(0, CliProcess.Code(Gen("vp", "--disc", "vp", "--schedule", "vp", "--scaling", "vp")));
        Assert.NotEqual(File.ReadAllBytes(Path.Combine(tmp["edm"], "seed0000.png")), File.ReadAllBytes(Path.Combine(tmp["vp"], "seed0000.png")));
        Assert.Equal(0, CliProcess.Code(Gen("churn", "--s-churn", "10", "--s-min", "0.05", "--s-max", "50", "--s-noise", "1.003", "--sigma-max", "40", "--rho", "5")));
        foreach (var (args, expected) in new[]
                 {
                     (new[] { "--rho", "0" }, "rho"),
                     (new[] { "--s-churn", "-1" }, "S_churn"),
                     (new[] { "--schedule", "cos" }, "vp, ve, linear"),
                     (new[] { "--disc", "cosine" }, "vp, ve, iddpm, edm"),
                     (new[] { "--sampler", "dpmpp_2m", "--schedule", "vp" }, "runs in sigma"),
                 })
        {
            var (code, _, err) = CliProcess.Run(Gen("bad", args));
            Assert.Equal(2, code);
            Assert.Contains(expected, err);
        }
        Assert.False(Directory.Exists(tmp["bad"]) && Directory.EnumerateFiles(tmp["bad"], "*.png").Any());
    }
}

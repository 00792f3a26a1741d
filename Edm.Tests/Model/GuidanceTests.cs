using Edm.Autograd;
using Edm.Kernels;
using Edm.Model;
using Edm.Model.IO;
using Edm.Model.Networks;
using Edm.Model.Modules;
using Edm.Tests.Data;
using Xunit;

namespace Edm.Tests.Model;

// Classifier-free guidance at sampling time and label dropout in training (NVlabs/edm's
// label_dropout), on the conditional DDPM++ fixture made with edm's own network.
public sealed class GuidanceTests(CpuDevice cpu) : IClassFixture<CpuDevice>
{
    readonly EdmDevice _d = cpu.Device;

    static string Fixture(string name) => TestData.Repo($"Edm.Tests/Fixtures/interop/{name}");

    float[] Denoise(Precond net, Tensor x, double[] sigma, float[]? onehot, double guidance)
    {
        net.SamplingLabels = onehot is null ? null : Tensor.FromArray(_d, onehot, x.Shape[0], net.Network.LabelDim);
        net.Guidance = guidance;
        try
        {
            using var d = net.Denoise(x, sigma);
            return d.ToArray();
        }
        finally
        {
            net.SamplingLabels?.Dispose();
            net.SamplingLabels = null;
            net.Guidance = 1;
        }
    }

    [Fact]
    public void Guidance_mixes_the_conditional_and_unconditional_denoiser()
    {
        using var net = NetworkFiles.Load(_d, Fixture("ddpmpp-edm.pkl"));
        using var x = Tensor.FromArray(_d, TestData.Rand(2 * 64, 3), 2, 1, 8, 8);
        double[] sigma = [0.5, 3.0];
        float[] onehot = [0, 1, 0, 0, 0, 1];
        var cond = Denoise(net, x, sigma, onehot, 1);
        var uncond = Denoise(net, x, sigma, null, 1);
        Assert.True(cond.Zip(uncond).Max(p => Math.Abs(p.First - p.Second)) > 1e-3, "labels must change D for the test to mean anything");
        TestData.Close("w = 0", Denoise(net, x, sigma, onehot, 0), TestData.D(uncond), 1e-6, 1e-6);
        foreach (double w in new[] { 2.0, -0.5 })
        {
            var want = cond.Zip(uncond).Select(p => w * p.First + (1 - w) * (double)p.Second).ToArray();
            TestData.Close($"w = {w}", Denoise(net, x, sigma, onehot, w), want, 1e-5, 1e-5);
        }
        using var vp = NetworkFiles.Load(_d, Fixture("ddpmpp-vp.pkl"));   // unconditional
        Assert.Throws<ArgumentException>(() => vp.Guidance = 2);
        Assert.Throws<ArgumentException>(() => net.Guidance = double.NaN);
    }

    [Fact]
    public void Label_dropout_zeroes_the_labels_of_a_fraction_of_the_batch_in_training_only()
    {
        const int b = 64;
        using var net = Presets.Create("ddpmpp-tiny", new InitContext(_d, 5), 8, 1, labelDim: 3, labelDropout: 0.5);
        using var precond = new Precond(net, PrecondKind.Edm);
        int seed = 100;
        foreach (var p in net.Module.Parameters())        // away from the near-zero initial output layer, so labels matter
            p.Value.CopyFrom(TestData.Random(p.Value.Length, seed++, -0.3, 0.3));
        var xs = TestData.Rand(b * 64, 9);
        var sigma = Enumerable.Repeat(1.0, b).ToArray();
        var labels = new float[b * 3];
        for (int i = 0; i < b; i++) labels[i * 3 + i % 3] = 1;
        float[] Run(bool training, bool withLabels)
        {
            using var noGrad = Tape.NoGrad();
            using var scope = new TensorScope();
            net.Module.Train(training);
            var y = precond.Forward(new Variable(Tensor.FromArray(_d, xs, b, 1, 8, 8)), sigma,
                withLabels ? new Variable(Tensor.FromArray(_d, labels, b, 3)) : null);
            return y.Value.ToArray();
        }
        var evalCond = Run(false, true);
        var zero = Run(false, false);
        var train = Run(true, true);                  // dropout 0 in the preset: only labels are dropped
        Assert.Equal(evalCond, Run(false, true));     // eval mode: nothing dropped, deterministic
        for (int i = 0; i < b; i++)
            Assert.False(evalCond.AsSpan(i * 64, 64).SequenceEqual(zero.AsSpan(i * 64, 64)), $"sample {i}: labels must change D");
        int dropped = 0, kept = 0;
        for (int i = 0; i < b; i++)
        {
            var s = train.AsSpan(i * 64, 64).ToArray();
            if (s.SequenceEqual(zero.AsSpan(i * 64, 64).ToArray())) dropped++;
            else if (s.SequenceEqual(evalCond.AsSpan(i * 64, 64).ToArray())) kept++;
        }
        Assert.Equal(b, dropped + kept);              // each sample is either conditional or unconditional
        Assert.InRange(dropped, 16, 48);              // p = 0.5 of 64: 32 +- 4 sigma
        Assert.Throws<InvalidOptionException>(() => Presets.Create("ddpmpp-tiny", new InitContext(_d), 8, 1, labelDim: 3, labelDropout: 1));
    }

    [Fact]
    public void Generate_with_guidance_and_subdirs()
    {
        using var tmp = new TempDir();
        var (code, output, err) = CliProcess.Run("generate", "--network", Fixture("ddpmpp-edm.pkl"), "--seeds", "999-1001", "--steps", "2",
            "--guidance", "2", "--subdirs", "--outdir", tmp["gen"], "--device", "cpu");
        Assert.True(code == 0, err);
        Assert.True(File.Exists(Path.Combine(tmp["gen"], "000000", "seed0999.png")));
        Assert.True(File.Exists(Path.Combine(tmp["gen"], "001000", "seed1001.png")));
        Assert.Contains("eta", output);
        (code, _, err) = CliProcess.Run("generate", "--network", Fixture("ddpmpp-vp.pkl"), "--seeds", "0", "--steps", "2",
            "--guidance", "2", "--outdir", tmp["bad"], "--device", "cpu");
        Assert.Equal(2, code);
        Assert.Contains("--guidance", err);
        Assert.Contains("label_dim 0", err);
    }

    [Fact]
    public void Train_refuses_label_dropout_without_conditioning()
    {
        using var tmp = new TempDir();
        var (code, _, err) = CliProcess.Run("train", "--data", TestData.Repo("Edm.Tests/Fixtures/mnist-heldout-334.zip"), "--out", tmp["run"],
            "--preset", "ddpmpp-tiny", "--kimg", "0.01", "--label-dropout", "0.1", "--device", "cpu");
        Assert.Equal(2, code);
        Assert.Contains("--label-dropout", err);
        Assert.Contains("--cond", err);
    }
}

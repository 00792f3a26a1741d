using Edm.Autograd;
using Edm.Kernels;
using Edm.Model.Modules;
using Edm.Model.Data;
using Edm.Model.Metrics;
using Edm.Tests.Data;
using Xunit;

namespace Edm.Tests.Metrics;

// The feature classifier: it learns (a few steps lower the loss), the committed MNIST classifier
// (models/mnist-classifier.safetensors, trained by `classifier train`, see docs/metrics.md) classifies
// 334 held-out digits (Edm.Tests/Fixtures, never trained on) at >= 97%, and its features give a
// Frechet distance of 0 between a set and its own statistics.
public sealed class ClassifierTests(CpuDevice cpu) : IClassFixture<CpuDevice>
{
    readonly EdmDevice _d = cpu.Device;

    [Fact]
    public void A_few_training_steps_lower_the_loss()
    {
        // Two classes of 8x8 images: bright top half vs bright bottom half, with noise.
        using var tmp = new TempDir();
        var root = tmp["data"];
        var labels = new List<string>();
        var rng = new Random(5);
        for (int i = 0; i < 40; i++)
        {
            int cls = i % 2;
            var px = new byte[64];
            for (int p = 0; p < 64; p++) px[p] = (byte)Math.Clamp(((p < 32) == (cls == 0) ? 200 : 40) + rng.Next(-30, 30), 0, 255);
            TempDir.WritePng(Path.Combine(root, $"i{i:D2}.png"), 8, 8, 1, px);
            labels.Add($"[\"i{i:D2}.png\", {cls}]");
        }
        File.WriteAllText(Path.Combine(root, "dataset.json"), "{\"labels\": [" + string.Join(", ", labels) + "]}");
        using var ds = ImageDataset.Open(root, preload: true);
        var (train, test) = ClassifierTraining.Split(ds, 8);
        var log = new List<string>();
        using var net = ClassifierTraining.Train(_d, ds, train, 32 * 16, 16, 3e-3, 1, log.Add);
        Assert.Equal(8, test.Length);
        Assert.Empty(train.Intersect(test));
        using var before = new MnistClassifier(new InitContext(_d, 1), 1, 8, 2);
        double Loss(MnistClassifier m)
        {
            using var scope = new TensorScope();
            var x = new Variable(Tensor.FromArray(_d, ds.ReadImages(train), train.Length, 1, 8, 8));
            var y = new Variable(ds.LabelBatch(_d, train)!);
            return MnistClassifier.CrossEntropy(m.Logits(x), y).Value.Item();
        }
        Assert.True(Loss(net) < 0.5 * Loss(before), $"loss {Loss(before)} -> {Loss(net)}");
        Assert.Equal(1.0, ClassifierTraining.Accuracy(net, ds, test));
        // Save and load give the same logits.
        var path = tmp["clf.safetensors"];
        net.Save(path);
        using var loaded = MnistClassifier.Load(_d, path);
        Assert.Equal(Loss(net), Loss(loaded));
    }

    [Fact]
    public void The_committed_mnist_classifier_is_accurate_on_held_out_digits()
    {
        using var net = MnistClassifier.Load(_d, TestData.Repo("models/mnist-classifier.safetensors"));
        using var ds = ImageDataset.Open(TestData.Repo("Edm.Tests/Fixtures/mnist-heldout-334.zip"), preload: true);
        double acc = ClassifierTraining.Accuracy(net, ds, Enumerable.Range(0, ds.Count).ToArray());
        Assert.True(acc >= 0.97, $"held-out accuracy {acc:P2}");
        var f = ClassifierTraining.Features(net, ds.ReadImages(Enumerable.Range(0, ds.Count).ToArray()), ds.Count);
        var stats = FeatureStatistics.Of(f, ds.Count, MnistClassifier.FeatureDim);
        Assert.InRange(FrechetDistance.Compute(stats, stats).Distance, -1e-6, 1e-6);
    }

    [Fact]
    public void Fid_ref_and_calc_work_from_the_cli_and_refuse_mismatches()
    {
        using var tmp = new TempDir();
        string clf = "classifier:" + TestData.Repo("models/mnist-classifier.safetensors"), data = TestData.Repo("Edm.Tests/Fixtures/mnist-heldout-334.zip");
        var reference = tmp["ref.npz"];
        var (code, _, err) = CliProcess.Run("fid", "ref", "--data", data, "--dest", reference, "--features", clf, "--device", "cpu");
        Assert.True(code == 0, err);
        (code, var output, err) = CliProcess.Run("fid", "calc", "--images", data, "--ref", reference, "--features", clf, "--device", "cpu");
        Assert.True(code == 0, err);
        Assert.InRange(double.Parse(output.Trim().Split('\n')[^1], System.Globalization.CultureInfo.InvariantCulture), -1e-6, 1e-6);
        // Fewer images than --num, a reference of another feature size, a file that is not a classifier.
        Assert.Equal(2, CliProcess.Code("fid", "calc", "--images", data, "--ref", reference, "--features", clf, "--num", "1000", "--device", "cpu"));
        var three = tmp["three.npz"];
        new FeatureStatistics([0, 0, 0], [1, 0, 0, 0, 1, 0, 0, 0, 1], 3).Save(three);
        (code, _, err) = CliProcess.Run("fid", "calc", "--images", data, "--ref", three, "--features", clf, "--device", "cpu");
        Assert.Equal(2, code);
        Assert.Contains("3 features", err);
        var notClf = tmp["x.safetensors"];
        File.WriteAllText(notClf, "garbage!");
        Assert.Equal(2, CliProcess.Code("fid", "ref", "--data", data, "--dest", tmp["r2.npz"], "--features", "classifier:" + notClf, "--device", "cpu"));
        Assert.False(File.Exists(tmp["r2.npz"]));
    }
}

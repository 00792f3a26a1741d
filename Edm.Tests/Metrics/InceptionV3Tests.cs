// The FID Inception-v3 (Edm.Model/Metrics/InceptionV3.cs): PyTorch parity on the committed
// reduced-width fixture (Edm.Tests/Fixtures/inception, made by scripts/inception_parity.py: the
// same architecture in plain torch.nn, seeded random weights, every width / 16), the stage shapes
// of the full-width network at 299x299, and the weight-file errors. EDM_INCEPTION_FIXTURE points
// the parity test at another fixture folder (e.g. the full-width one, see docs/metrics.md).
using Edm.Autograd;
using Edm.Kernels;
using Edm.Model.IO;
using Edm.Model.Metrics;
using Edm.Model.Modules;
using Edm.Tests.Data;
using Xunit;
using Xunit.Abstractions;

namespace Edm.Tests.Metrics;

public sealed class InceptionV3Tests(CpuDevice cpu, ITestOutputHelper output) : IClassFixture<CpuDevice>
{
    readonly EdmDevice _d = cpu.Device;

    static string FixtureDir => Environment.GetEnvironmentVariable("EDM_INCEPTION_FIXTURE") is { Length: > 0 } dir
        ? dir : TestData.Repo("Edm.Tests/Fixtures/inception");

    [Fact]
    public void Features_match_PyTorch()
    {
        using var net = InceptionV3.Load(_d, Path.Combine(FixtureDir, "weights.safetensors"));
        var io = SafeTensors.Read(Path.Combine(FixtureDir, "io.safetensors")).Tensors;
        var input = io["input"];
        var got = new Dictionary<string, float[]>();
        float[] features;
        using (Tape.NoGrad())
        using (new TensorScope())
        {
            var x = new Variable(Tensor.FromArray(_d, input.Data, input.Shape));
            var f = net.Features(x, (name, v) => { if (name.StartsWith("block")) got[name] = v.Value.ToArray(); });
            Assert.Equal(io["features"].Shape, f.Value.Shape);
            features = f.Value.ToArray();
        }
        // "Float32 precision" measured, not assumed: the fixture holds PyTorch's float32 outputs and
        // the same network evaluated in float64 (from the same float32 weights and input). Through
        // 48 conv + batch-norm units float32 rounding alone moves block2 by ~1e-3 (of max 28) in
        // PyTorch. Ours must be no further from float64 than PyTorch's float32 is (measured: 0.3-0.5
        // of it; the bilinear taps are exact ratios, see Interpolate.cs), and within twice that of
        // PyTorch's float32 output.
        foreach (var name in new[] { "block0", "block1", "block2", "features" })
        {
            var ours = name == "features" ? features : got[name];
            float[] torch32 = io[name].Data, exact = io[name + "_f64"].Data;
            Assert.Equal(exact.Length, ours.Length);
            double scale = exact.Max(v => Math.Abs((double)v));
            Assert.True(scale > 0.1, $"{name}: the reference is all near zero (max {scale}); the fixture would not test anything");
            double torchErr = MaxDiff(torch32, exact), ourErr = MaxDiff(ours, exact), vsTorch = MaxDiff(ours, torch32);
            output.WriteLine($"{name}: max |ours - f64| {ourErr:E2}, max |torch32 - f64| {torchErr:E2}, max |ours - torch32| {vsTorch:E2}, max |f64| {scale:F3}");
            double floor = 1e-6 * scale;
            Assert.True(ourErr <= torchErr + floor, $"{name}: max |ours - float64| = {ourErr:E3} > PyTorch's float32 error {torchErr:E3}");
            Assert.True(vsTorch <= 2 * torchErr + floor, $"{name}: max |ours - PyTorch float32| = {vsTorch:E3} > 2 x PyTorch's float32 error {torchErr:E3}");
        }
    }

    static double MaxDiff(float[] a, float[] b)
    {
        double m = 0;
        for (int i = 0; i < a.Length; i++) m = Math.Max(m, Math.Abs(a[i] - (double)b[i]));
        return m;
    }

    [Fact]
    public void Full_width_stage_shapes_at_299()
    {
        using var net = new InceptionV3(new InitContext(_d, seed: 3));
        Assert.Equal(2048, net.FeatureDim);
        var shapes = new Dictionary<string, int[]>();
        using (Tape.NoGrad())
        using (new TensorScope())
        {
            var x = new Variable(Tensor.Zeros(_d, 1, 3, 64, 48));   // any input size is resized to 299x299
            var f = net.Features(x, (name, v) => shapes[name] = (int[])v.Value.Shape.Clone());
            Assert.Equal(new[] { 1, 2048 }, f.Value.Shape);
        }
        var want = new Dictionary<string, int[]>
        {
            ["Conv2d_1a_3x3"] = [1, 32, 149, 149], ["Conv2d_2a_3x3"] = [1, 32, 147, 147], ["Conv2d_2b_3x3"] = [1, 64, 147, 147],
            ["block0"] = [1, 64, 73, 73], ["Conv2d_3b_1x1"] = [1, 80, 73, 73], ["Conv2d_4a_3x3"] = [1, 192, 71, 71],
            ["block1"] = [1, 192, 35, 35], ["Mixed_5b"] = [1, 256, 35, 35], ["Mixed_5c"] = [1, 288, 35, 35], ["Mixed_5d"] = [1, 288, 35, 35],
            ["Mixed_6a"] = [1, 768, 17, 17], ["Mixed_6b"] = [1, 768, 17, 17], ["Mixed_6c"] = [1, 768, 17, 17], ["Mixed_6d"] = [1, 768, 17, 17],
            ["Mixed_6e"] = [1, 768, 17, 17], ["block2"] = [1, 768, 17, 17], ["Mixed_7a"] = [1, 1280, 8, 8], ["Mixed_7b"] = [1, 2048, 8, 8],
            ["Mixed_7c"] = [1, 2048, 8, 8], ["block3"] = [1, 2048, 1, 1],
        };
        Assert.Equal(want.Keys.Order(), shapes.Keys.Order());
        foreach (var (name, s) in want) Assert.True(s.SequenceEqual(shapes[name]), $"{name}: {Shapes.Format(shapes[name])}, expected {Shapes.Format(s)}");
        // The same network in PyTorch (scripts/inception_parity.py at width 1) has 21,785,568
        // parameters (conv weights, batch-norm weights and biases; torchvision's Inception3 without fc and AuxLogits).
        Assert.Equal(21_785_568, net.ParameterCount());
    }

    [Fact]
    public void Weight_file_errors_name_the_tensor()
    {
        using var tmp = new TempDir();
        var src = SafeTensors.Read(Path.Combine(TestData.Repo("Edm.Tests/Fixtures/inception"), "weights.safetensors")).Tensors;
        string Write(string name, Action<OrderedDictionary<string, HostTensor>> edit)
        {
            var t = new OrderedDictionary<string, HostTensor>();
            foreach (var (k, v) in src) t.Add(k, v);
            edit(t);
            var path = tmp[name];
            SafeTensors.Write(path, t);
            return path;
        }
        var missing = Write("missing.safetensors", t => t.Remove("Mixed_6c.branch7x7dbl_4.bn.running_var"));
        var e = Assert.Throws<InvalidDataException>(() => InceptionV3.Load(_d, missing));
        Assert.Contains("'Mixed_6c.branch7x7dbl_4.bn.running_var'", e.Message);
        Assert.Contains("missing", e.Message);
        var shape = Write("shape.safetensors", t => t["Mixed_7b.branch3x3_2a.conv.weight"] = new HostTensor([24, 24, 3, 1], new float[24 * 24 * 3]));
        e = Assert.Throws<InvalidDataException>(() => InceptionV3.Load(_d, shape));
        Assert.Contains("'Mixed_7b.branch3x3_2a.conv.weight'", e.Message);
        Assert.Contains("(24, 24, 3, 1)", e.Message);
        var extra = Write("extra.safetensors", t => t.Add("Mixed_8a.conv.weight", new HostTensor([1], [0f])));
        e = Assert.Throws<InvalidDataException>(() => InceptionV3.Load(_d, extra));
        Assert.Contains("'Mixed_8a.conv.weight'", e.Message);
        // Another network's weights (the committed MNIST classifier).
        e = Assert.Throws<InvalidDataException>(() => InceptionV3.Load(_d, TestData.Repo("models/mnist-classifier.safetensors")));
        Assert.Contains("not FID Inception-v3 weights", e.Message);
        Assert.Contains("'Conv2d_1a_3x3.conv.weight'", e.Message);
    }

    [Fact]
    public void Feature_adapter_maps_minus_one_one_to_zero_one_and_tiles_grayscale()
    {
        using var fx = new InceptionFeatures(InceptionV3.Load(_d, Path.Combine(TestData.Repo("Edm.Tests/Fixtures/inception"), "weights.safetensors")), batch: 2);
        int n = 3, r = 12;
        var gray = TestData.Random(n * r * r, 5);                          // (3, 1, 12, 12) in [-1, 1]
        var got = fx.Features(gray, n, 1, r);                              // two batches: 2 + 1
        var rgb = new float[n * 3 * r * r];
        for (int b = 0; b < n; b++)
            for (int c = 0; c < 3; c++)
                for (int i = 0; i < r * r; i++) rgb[(b * 3 + c) * r * r + i] = 0.5f * (gray[b * r * r + i] + 1f);
        float[] want;
        using (Tape.NoGrad())
        using (new TensorScope())
            want = fx.Network.Features(new Variable(Tensor.FromArray(_d, rgb, n, 3, r, r))).Value.ToArray();
        TestData.Close("adapter features", got, TestData.D(want), 1e-5, 1e-5);   // batches of 2 + 1 vs one batch of 3
        Assert.NotNull(fx.Refuses(2, r));
        Assert.Null(fx.Refuses(3, 7));
    }

    [Fact]
    public void Fid_with_inception_features_from_the_cli()
    {
        using var tmp = new TempDir();
        string data = TestData.Repo("Edm.Tests/Fixtures/mnist-heldout-334.zip");   // grayscale 28x28 digits, tiled to RGB
        string incep = "inception:" + Path.Combine(TestData.Repo("Edm.Tests/Fixtures/inception"), "weights.safetensors");
        var reference = tmp["ref.npz"];
        var (code, output, err) = CliProcess.Run("fid", "ref", "--data", data, "--dest", reference, "--features", incep, "--num", "12", "--device", "cpu");
        Assert.True(code == 0, err);
        Assert.Contains("(128 features)", output);                        // the fixture is the width/16 network
        (code, output, err) = CliProcess.Run("fid", "calc", "--images", data, "--ref", reference, "--features", incep, "--num", "12", "--device", "cpu");
        Assert.True(code == 0, err);
        Assert.InRange(double.Parse(output.Trim().Split('\n')[^1], System.Globalization.CultureInfo.InvariantCulture), -1e-3, 1e-3);
        // Another network's weights: one error line, exit 2, nothing written.
        var dest = tmp["r2.npz"];
        (code, _, err) = CliProcess.Run("fid", "ref", "--data", data, "--dest", dest, "--features", "inception:" + TestData.Repo("models/mnist-classifier.safetensors"), "--device", "cpu");
        Assert.Equal(2, code);
        var lines = err.Trim().Split('\n');
        Assert.Single(lines);
        Assert.StartsWith("error:", lines[0]);
        Assert.Contains("'Conv2d_1a_3x3.conv.weight'", lines[0]);
        Assert.False(File.Exists(dest));
        Assert.Equal(2, CliProcess.Code("fid", "ref", "--data", data, "--dest", dest, "--features", "inception:", "--device", "cpu"));
        Assert.Equal(2, CliProcess.Code("fid", "ref", "--data", data, "--dest", dest, "--features", "inception:" + tmp["absent.safetensors"], "--device", "cpu"));
        Assert.False(File.Exists(dest));
    }
}

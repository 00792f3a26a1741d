using Edm.Autograd;
using Edm.Kernels;
using Edm.Model;
using Edm.Model.Networks;
using Edm.Model.Modules;
using Xunit;

namespace Edm.Tests.Model;

public sealed class NetworkTests(CpuDevice cpu) : IClassFixture<CpuDevice>
{
    readonly EdmDevice _d = cpu.Device;

    static float[] Rand(int n, int seed) => Edm.Verification.Compare.Random(n, seed);

    [Theory]
    [InlineData("ddpmpp-tiny", 16, 1, 10, 9)]
    [InlineData("ddpmpp-tiny", 32, 3, 0, 0)]
    [InlineData("ncsnpp-tiny", 16, 1, 10, 0)]
    [InlineData("adm-tiny", 16, 3, 10, 9)]
    [InlineData("adm-tiny", 8, 1, 0, 0)]
    public void Tiny_presets_map_images_to_images(string preset, int res, int ch, int labels, int augment)
    {
        using var scope = new TensorScope();
        using var net = Presets.Create(preset, new InitContext(_d, 3), res, ch, labels, augment);
        Assert.InRange(net.Module.ParameterCount(), 10_000, 400_000);
        int b = 2;
        var x = new Variable(Tensor.FromArray(_d, Rand(b * ch * res * res, 1), b, ch, res, res));
        var cl = labels > 0 ? new Variable(Tensor.FromArray(_d, Enumerable.Range(0, b * labels).Select(i => i % labels == 1 ? 1f : 0f).ToArray(), b, labels)) : null;
        var al = augment > 0 ? new Variable(Tensor.Zeros(_d, b, augment)) : null;
        var y = net.Forward(x, [0.3, -1.1], cl, al);
        Assert.Equal(new[] { b, ch, res, res }, y.Shape);
        Assert.All(y.Value.ToArray(), v => Assert.True(float.IsFinite(v)));
    }

    [Fact]
    public void Paper_presets_have_the_published_parameter_counts()
    {
        // Counted from NVlabs/edm's public code: conditional CIFAR-10 (10 classes) networks.
        using (var net = Presets.Create("ddpmpp-cifar10", new InitContext(_d), labelDim: 10))
            Assert.Equal(55_734_147, net.Module.ParameterCount()); // 55.73M
        using (var net = Presets.Create("ncsnpp-cifar10", new InitContext(_d), labelDim: 10))
            Assert.Equal(56_398_339, net.Module.ParameterCount()); // 56.40M
    }

    [Fact]
    public void Small_preset_has_the_pytorch_ddpmpp_parameter_count()
    {
        // bench/torch_baseline.py's independent DdpmPP(res=32, img_ch=1, ch=32, mult=(1, 2, 2), blocks=1,
        // attn=(16,)) counts 1,259,393 parameters.
        using var scope = new TensorScope();
        using var net = Presets.Create("ddpmpp-small", new InitContext(_d, 4), 32, 1);
        Assert.Equal(1_259_393, net.Module.ParameterCount());
        var x = new Variable(Tensor.FromArray(_d, Rand(32 * 32, 2), 1, 1, 32, 32));
        var y = net.Forward(x, [0.5], null, null);
        Assert.Equal(new[] { 1, 1, 32, 32 }, y.Shape);
        Assert.All(y.Value.ToArray(), v => Assert.True(float.IsFinite(v)));
    }

    [Fact]
    public void Parameter_names_follow_the_pytorch_module_paths()
    {
        using var net = Presets.Create("ddpmpp-tiny", new InitContext(_d), 16, 1, labelDim: 10, augmentDim: 9);
        var names = net.Module.NamedParameters().Select(p => p.Name).ToList();
        Assert.Contains("map_label.weight", names);
        Assert.Contains("map_augment.weight", names);
        Assert.DoesNotContain("map_augment.bias", names);
        Assert.Contains("enc.16x16_conv.weight", names);
        Assert.Contains("enc.16x16_block0.conv0.weight", names);
        Assert.Contains("enc.8x8_down.skip.weight", names);
        Assert.Contains("dec.8x8_in0.qkv.weight", names);
        Assert.Contains("dec.16x16_aux_conv.bias", names);
        Assert.Equal(names.Count, names.Distinct().Count());
    }

    [Fact]
    public void Bad_preset_input_names_the_allowed_values()
    {
        var bad = Assert.Throws<InvalidOptionException>(() => Presets.Create("nosuch", new InitContext(_d)));
        Assert.Equal("Preset", bad.Option);
        Assert.Contains("ddpmpp-tiny", bad.Message);
        bad = Assert.Throws<InvalidOptionException>(() => Presets.Create("ddpmpp-tiny", new InitContext(_d), resolution: 12));
        Assert.Equal("Resolution", bad.Option);
        Assert.Contains("16", bad.Message);
        ArgumentException e;
        using var net = Presets.Create("ddpmpp-tiny", new InitContext(_d), 16, 1, labelDim: 10);
        using var scope = new TensorScope();
        var x = new Variable(Tensor.Zeros(_d, 1, 1, 16, 16));
        e = Assert.Throws<ArgumentException>(() => net.Forward(x, [0.1], new Variable(Tensor.Zeros(_d, 1, 7)), null));
        Assert.Contains("(1, 10)", e.Message);
        e = Assert.Throws<ArgumentException>(() => net.Forward(new Variable(Tensor.Zeros(_d, 1, 3, 16, 16)), [0.1], null, null));
        Assert.Contains("(B, 1, 16, 16)", e.Message);
    }

    [Fact]
    public void Tiny_network_gradient_matches_finite_differences()
    {
        // L = sum(F(x) * r); analytic dL/dtheta against central differences for a few parameters
        // of different layers. float32 forward: h = 1e-2 on O(0.1) weights, tolerance 3% + 1e-3.
        using var net = Presets.Create("ddpmpp-tiny", new InitContext(_d, 7), 8, 1, labelDim: 0);
        int b = 2, res = 8;
        var xData = Rand(b * res * res, 2);
        var r = Rand(b * res * res, 3);
        double[] noise = [0.5, -0.7];
        Variable Fwd() => net.Forward(new Variable(Tensor.FromArray(_d, xData, b, 1, res, res)), noise, null, null);
        NetworkGradient.AssertMatchesFiniteDifferences(net.Module, Fwd, r, [b, 1, res, res],
            ["enc.8x8_conv.weight", "enc.8x8_block0.conv0.weight", "dec.8x8_aux_conv.weight", "map_layer0.weight", "enc.4x4_down.norm0.weight"]);
    }
}

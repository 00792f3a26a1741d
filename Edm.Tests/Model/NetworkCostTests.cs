using Edm.Kernels;
using Edm.Model.Networks;
using Edm.Model.Modules;
using Xunit;

namespace Edm.Tests.Model;

// The analytic FLOP count and layer walk (Edm.Model/Networks/NetworkCost.cs) that the step bench
// uses, on the full ddpmpp-cifar10 network.
public sealed class NetworkCostTests(CpuDevice fixture) : IClassFixture<CpuDevice>
{
    [Fact]
    public void Flop_count_and_layers_match_an_independent_count()
    {
        using var net = Presets.Create("ddpmpp-cifar10", new InitContext(fixture.Device, 0), labelDim: 10);
        Assert.Equal(55_734_147, net.Module.ParameterCount());
        // 42,380,429,824 FLOPs per image: forward hooks on the output shapes of the independent
        // PyTorch DDPM++ in bench/torch_baseline.py (forward_flops; 254.28 GFLOP for a step at batch 2).
        Assert.Equal(42_380_429_824.0, StepFlops.Forward(net.Module, 1));
        Assert.Equal(2 * 42_380_429_824.0, StepFlops.Forward(net.Module, 2));

        var layers = StepLayers.Of(net.Module).ToList();
        var convs = layers.Where(l => l.Module is Conv2d { Weight: not null }).ToList();
        Assert.Equal(100, convs.Count);
        Assert.Equal(73, layers.Count(l => l.Module is GroupNorm));
        Assert.Equal(6, layers.Count(l => l.Module is UNetBlock { NumHeads: > 0 }));
        // Resampling blocks: conv0 and skip resample; norm0 sees the input resolution; conv1 does neither.
        Assert.Equal((32, 16, Resample.Down), At(layers, "enc.16x16_down.conv0"));
        Assert.Equal((32, 16, Resample.Down), At(layers, "enc.16x16_down.skip"));
        Assert.Equal((32, 32, Resample.None), At(layers, "enc.16x16_down.norm0"));
        Assert.Equal((16, 16, Resample.None), At(layers, "enc.16x16_down.conv1"));
        Assert.Equal((8, 16, Resample.Up), At(layers, "dec.16x16_up.conv0"));
        Assert.Equal((32, 32, Resample.None), At(layers, "dec.32x32_aux_conv"));
    }

    static (int, int, Resample) At(List<StepLayer> layers, string name)
    {
        var l = layers.Single(x => x.Name == name);
        return (l.InRes, l.OutRes, l.Mode);
    }
}

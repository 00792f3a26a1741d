using Edm.Autograd;
using Edm.Kernels;
using Edm.Model;
using Edm.Model.IO;
using Edm.Model.Networks;
using Edm.Model.Modules;
using Xunit;

namespace Edm.Tests.Model;

// Network weights as safetensors with PyTorch-style names: bit-exact round trip, wrong shapes named.
public sealed class WeightsTests(CpuDevice cpu) : IClassFixture<CpuDevice>
{
    readonly EdmDevice _d = cpu.Device;

    [Fact]
    public void Weights_round_trip_bit_exact_and_errors_name_the_tensor()
    {
        var dir = Directory.CreateTempSubdirectory("edm-weights-");
        try
        {
            var path = Path.Combine(dir.FullName, "net.safetensors");
            using var a = Presets.Create("ncsnpp-tiny", new InitContext(_d, 1), 8, 1, labelDim: 3);
            Weights.Save(a.Module, path, new Dictionary<string, string> { ["preset"] = "ncsnpp-tiny" });
            using var b = Presets.Create("ncsnpp-tiny", new InitContext(_d, 2), 8, 1, labelDim: 3);
            Assert.NotEqual(a.Module.Parameters().First().Value.ToArray(), b.Module.Parameters().First().Value.ToArray());
            var meta = Weights.Load(b.Module, path);
            Assert.Equal("ncsnpp-tiny", meta["preset"]);
            foreach (var ((na, ta), (nb, tb)) in Weights.ToHost(a.Module).Zip(Weights.ToHost(b.Module)))
            {
                Assert.Equal(na, nb);
                Assert.Equal(ta.Data, tb.Data); // bit-exact
            }
            Assert.Contains("map_noise.freqs", Weights.ToHost(a.Module).Keys);

            // A network of another shape: the first mismatching tensor is named.
            using var c = Presets.Create("ncsnpp-tiny", new InitContext(_d), 8, 1, labelDim: 4);
            var e = Assert.Throws<SafeTensorsException>(() => Weights.Load(c.Module, path));
            Assert.Contains("map_label.weight", e.Message);
            using var u = Presets.Create("ncsnpp-tiny", new InitContext(_d), 8, 1, labelDim: 0);
            e = Assert.Throws<SafeTensorsException>(() => Weights.Load(u.Module, path));
            Assert.Contains("map_label", e.Message);
        }
        finally { dir.Delete(true); }
    }
}

using Edm.Autograd;
using Edm.Kernels;
using Edm.Model;
using Edm.Model.IO;
using Edm.Model.Training;
using Edm.Tests.Data;
using Xunit;
using Xunit.Abstractions;

namespace Edm.Tests.Interop;

// NVlabs/edm .pkl snapshots and PyTorch .pth files read natively. The fixtures in
// Edm.Tests/Fixtures/interop were made by scripts/make-interop-fixtures.py with NVlabs/edm's own
// networks on random weights; each NAME.io.safetensors holds inputs and edm's D(x; sigma) for them.
public sealed class InteropTests(CpuDevice cpu, ITestOutputHelper log) : IClassFixture<CpuDevice>
{
    readonly EdmDevice _d = cpu.Device;

    static string Fixture(string name) => TestData.Repo($"Edm.Tests/Fixtures/interop/{name}");

    float[] Denoise(Precond net, SafeTensorsFile io, bool labels = true)
    {
        using var noGrad = Tape.NoGrad();
        using var scope = new TensorScope();
        var x = io.Tensors["x"];
        var sigma = io.Tensors["sigma"].Data.Select(v => (double)v).ToArray();
        Variable? V(string name) => io.Tensors.TryGetValue(name, out var t) ? new Variable(Tensor.FromArray(_d, t.Data, t.Shape)) : null;
        net.Network.Module.Eval();
        var d = net.Forward(V("x")!, sigma, labels ? V("class_labels") : null, V("augment_labels"));
        return d.Value.ToArray();
    }

    void AssertMatchesEdm(string what, float[] got, float[] want)
    {
        double scale = want.Max(v => Math.Abs((double)v)), worst = got.Zip(want).Max(p => Math.Abs((double)p.First - p.Second));
        log.WriteLine($"{what}: max |D - D_edm| = {worst:E2} (max |D_edm| = {scale:F3})");
        TestData.Close(what, got, want.Select(v => (double)v).ToArray(), atol: 2e-5 * Math.Max(1, scale), rtol: 1e-4);
    }

    [Theory]
    [InlineData("ddpmpp-edm")]
    [InlineData("ddpmpp-vp")]
    [InlineData("ddpmpp-ve")]
    [InlineData("ddpmpp-iddpm")]
    [InlineData("ncsnpp-edm")]
    [InlineData("adm-edm")]
    [InlineData("adm-vp")]
    [InlineData("adm-ve")]
    [InlineData("adm-iddpm")]
    public void An_edm_snapshot_loads_and_denoises_as_edm_does(string name)
    {
        using var net = NetworkFiles.Load(_d, Fixture(name + ".pkl"));
        var io = SafeTensors.Read(Fixture(name + ".io.safetensors"));
        AssertMatchesEdm(name, Denoise(net, io), io.Tensors["D"].Data);
        if (io.Tensors.TryGetValue("D_nolabels", out var noLabels))
            AssertMatchesEdm(name + " without labels", Denoise(net, io, labels: false), noLabels.Data);
    }

    [Fact]
    public void Our_committed_snapshot_denoises_in_edms_network_as_here()
    {
        // D of models/mnist16-ddpmpp-tiny.safetensors computed by NVlabs/edm's EDMPrecond after
        // scripts/load-in-pytorch.py loaded our file into it (edm names, resample_filter computed by edm).
        using var net = NetworkFiles.Load(_d, TestData.Repo("models/mnist16-ddpmpp-tiny.safetensors"));
        var io = SafeTensors.Read(Fixture("mnist16-ddpmpp-tiny.edm.io.safetensors"));
        AssertMatchesEdm("mnist16 in edm", Denoise(net, io), io.Tensors["D"].Data);
    }

    [Fact]
    public void A_pth_holding_the_edm_module_loads_like_the_pkl()
    {
        using var net = NetworkFiles.Load(_d, Fixture("ddpmpp-edm-module.pth"));
        var io = SafeTensors.Read(Fixture("ddpmpp-edm.io.safetensors"));
        AssertMatchesEdm("module.pth", Denoise(net, io), io.Tensors["D"].Data);
    }

    [Theory]
    [InlineData("ddpmpp-edm-state.pth")]   // torch.save(state_dict), zip format
    [InlineData("ddpmpp-edm-kdiff.pth")]   // {'model_ema': state_dict, 'step': 10}
    [InlineData("ddpmpp-edm-legacy.pth")]  // _use_new_zipfile_serialization=False
    public void State_dict_files_load_into_a_network_with_Weights_Load(string file)
    {
        using var reference = NetworkFiles.Load(_d, Fixture("ddpmpp-edm.pkl"));
        using var fresh = NetworkFiles.Load(_d, Fixture("ddpmpp-vp.pkl"));  // same architecture, unconditional: not loadable
        Assert.Throws<SafeTensorsException>(() => Weights.Load(fresh.Network.Module, Fixture(file)));
        // A network of the same architecture with other weights: after loading, every tensor equals edm's.
        using var target = NetworkFiles.Load(_d, Fixture("ddpmpp-edm.pkl"));
        foreach (var (_, p) in target.Network.Module.NamedParameters()) Ops.Fill(p.Value, 0.25f);
        Weights.Load(target.Network.Module, Fixture(file));
        foreach (var ((na, a), (nb, b)) in Weights.ToHost(reference.Network.Module).Zip(Weights.ToHost(target.Network.Module)))
        {
            Assert.Equal(na, nb);
            Assert.Equal(a.Data, b.Data);
        }
        // A state dict has no architecture: NetworkFiles says what to do instead.
        var e = Assert.Throws<CheckpointException>(() => NetworkFiles.Load(_d, Fixture(file)));
        Assert.Contains("Weights.Load", e.Message);
    }

    [Fact]
    public void Edm_names_in_safetensors_load_and_resample_filters_are_checked()
    {
        using var tmp = new TempDir();
        var tensors = TorchFile.Read(Fixture("ddpmpp-edm-state.pth")).Tensors();
        Assert.Contains(tensors.Keys, k => k.EndsWith(".resample_filter", StringComparison.Ordinal));
        SafeTensors.Write(tmp["edm.safetensors"], tensors);
        using var target = NetworkFiles.Load(_d, Fixture("ddpmpp-edm.pkl"));
        Weights.Load(target.Network.Module, tmp["edm.safetensors"]);

        var name = tensors.Keys.First(k => k.EndsWith(".resample_filter", StringComparison.Ordinal));
        var bad = tensors[name];
        tensors[name] = bad with { Data = bad.Data.Select((v, i) => i == 0 ? v + 0.1f : v).ToArray() };
        SafeTensors.Write(tmp["bad.safetensors"], tensors);
        var e = Assert.Throws<SafeTensorsException>(() => Weights.Load(target.Network.Module, tmp["bad.safetensors"]));
        Assert.Contains(name, e.Message);
    }

    [Theory]
    [InlineData("bad-global.pkl", "system")]                       // REDUCE of posix.system: refused, never run
    [InlineData("bad-global-in-pth.pth", "eval")]                  // builtins.eval inside a torch zip
    [InlineData("truncated.pth", "truncated")]                      // half a zip
    [InlineData("unknown-class.pkl", "MyCustomPrecond")]
    [InlineData("unsupported-kwargs.pkl", "my_new_option")]
    public void Bad_files_are_refused_with_a_clear_message(string file, string named)
    {
        var e = Assert.Throws<CheckpointException>(() => NetworkFiles.Load(_d, Fixture(file)));
        log.WriteLine(e.Message);
        Assert.Contains(named, e.Message);
        Assert.Contains(file, e.Message);
    }

    [Theory]
    [InlineData("wrong-shape.pth", "model.enc.8x8_conv.weight")]
    [InlineData("missing-tensor.pth", "model.map_layer0.weight")]
    [InlineData("extra-tensor.pth", "model.bogus.weight")]
    public void State_dicts_that_do_not_fit_name_the_tensor(string file, string named)
    {
        using var target = NetworkFiles.Load(_d, Fixture("ddpmpp-edm.pkl"));
        var e = Assert.Throws<SafeTensorsException>(() => Weights.Load(target.Network.Module, Fixture(file)));
        log.WriteLine(e.Message);
        Assert.Contains(named, e.Message);
    }

    [Fact]
    public void Generate_samples_from_an_edm_pkl_and_refuses_a_bad_one()
    {
        using var tmp = new TempDir();
        var (code, _, err) = CliProcess.Run("generate", "--network", Fixture("ddpmpp-edm.pkl"), "--seeds", "0-1", "--steps", "3",
            "--outdir", tmp["gen"], "--device", "cpu");
        Assert.True(code == 0, err);
        Assert.True(File.Exists(Path.Combine(tmp["gen"], "seed0001.png")));
        (code, _, err) = CliProcess.Run("generate", "--network", Fixture("bad-global.pkl"), "--seeds", "0", "--outdir", tmp["bad"], "--device", "cpu");
        Assert.Equal(2, code);
        Assert.StartsWith("error:", err.Trim());
        Assert.Contains("system", err);
        Assert.False(Directory.Exists(tmp["bad"]) && Directory.EnumerateFiles(tmp["bad"]).Any(), "nothing may be written for a refused network");
    }
}

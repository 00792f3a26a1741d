using Edm.Kernels;
using Edm.Model;
using Edm.Model.Training;
using Xunit;

namespace Edm.Tests.Data;

// Corrupt or implausible files given to the CLI: one `error:` line, exit 2, nothing written.
public sealed class BadFileTests(CpuDevice cpu) : IClassFixture<CpuDevice>
{
    readonly EdmDevice _d = cpu.Device;

    static string Dataset(TempDir tmp, string name, int count = 4)
    {
        var root = tmp[name];
        for (int i = 0; i < count; i++) TempDir.WritePng(Path.Combine(root, $"img{i}.png"), 8, 8, 1, TempDir.RandomBytes(64, i));
        return root;
    }

    static void AssertUsageError((int Code, string Out, string Err) r, string expected)
    {
        Assert.Equal(2, r.Code);
        Assert.StartsWith("error: ", r.Err);
        Assert.Contains(expected, r.Err);
        Assert.DoesNotContain("   at ", r.Err);
        Assert.Single(r.Err.Split('\n', StringSplitOptions.RemoveEmptyEntries));
    }

    [Fact]
    public void Dataset_problems_are_named()
    {
        using var tmp = new TempDir();
        // dataset.json that is not UTF-8.
        var a = Dataset(tmp, "a");
        File.WriteAllBytes(Path.Combine(a, "dataset.json"), [0x7B, 0x22, 0xFF, 0xFE, 0x22, 0x3A, 0x31, 0x7D]);
        AssertUsageError(CliProcess.Run("dataset", "info", "--path", a), "dataset.json");
        // Classes far above the image count (an id, not a class index).
        var b = Dataset(tmp, "b");
        File.WriteAllText(Path.Combine(b, "dataset.json"), "{\"labels\": [[\"img0.png\", 0], [\"img1.png\", 1], [\"img2.png\", 2], [\"img3.png\", 1000000]]}");
        AssertUsageError(CliProcess.Run("dataset", "info", "--path", b), "renumber the classes");
        // A PNG whose header is fine but whose pixels are cut off: info decodes the pixels as train does.
        var c = Dataset(tmp, "c");
        var png = Path.Combine(c, "img2.png");
        var bytes = File.ReadAllBytes(png);
        File.WriteAllBytes(png, bytes[..(bytes.Length * 2 / 3)]);
        AssertUsageError(CliProcess.Run("dataset", "info", "--path", c), "img2.png");
        // Messages quote a name once.
        Assert.DoesNotContain("''", CliProcess.Run("dataset", "info", "--path", c).Err);
    }

    [Fact]
    public void Dataset_convert_refuses_a_folder_destination_and_huge_resolutions_without_writing()
    {
        using var tmp = new TempDir();
        var src = Dataset(tmp, "src");
        var destDir = tmp["out"] + "/";
        AssertUsageError(CliProcess.Run("dataset", "convert", "--source", src, "--dest", destDir), "is a folder");
        Assert.False(Directory.Exists(destDir));
        AssertUsageError(CliProcess.Run("dataset", "convert", "--source", src, "--dest", tmp["x.zip"], "--resolution", "60000"), "out of range");
        AssertUsageError(CliProcess.Run("dataset", "convert", "--source", src, "--dest", tmp["x.tar"]), "does not end in .zip");
        Assert.Empty(Directory.GetFiles(tmp.Path, "*x.*"));
    }

    [Fact]
    public void Snapshots_with_non_finite_values_or_a_broken_header_fail_the_check()
    {
        using var tmp = new TempDir();
        var spec = new NetworkSpec("ddpmpp-tiny", 8, 1, 0, 0, null, PrecondKind.Edm, 0.5);
        var nanWeight = tmp["nan-weight.safetensors"];
        using (var net = spec.CreateNetwork(_d))
        {
            var w = net.Module.NamedParameters().First(p => p.Name.EndsWith("conv0.weight")).Param.Value;
            var data = w.ToArray();
            data[3] = float.NaN;
            w.CopyFrom(data);
            Checkpoints.SaveSnapshot(nanWeight, net, spec, null);
        }
        AssertUsageError(CliProcess.Run("checkpoint", "check", nanWeight), "non-finite");
        var nanSigma = tmp["nan-sigma.safetensors"];
        using (var net = spec.CreateNetwork(_d)) Checkpoints.SaveSnapshot(nanSigma, net, spec with { SigmaData = double.NaN }, null);
        AssertUsageError(CliProcess.Run("checkpoint", "check", nanSigma), "sigma_data");
        AssertUsageError(CliProcess.Run("generate", "--network", nanSigma, "--seeds", "0", "--outdir", tmp["gen"], "--device", "cpu"), "sigma_data");
        Assert.False(Directory.Exists(tmp["gen"]) && Directory.EnumerateFiles(tmp["gen"]).Any());
        // A safetensors header that is not UTF-8.
        var broken = tmp["broken.safetensors"];
        byte[] header = [(byte)'{', (byte)'"', 0xC3, 0x28, (byte)'"', (byte)':', (byte)'1', (byte)'}'];
        File.WriteAllBytes(broken, [.. BitConverter.GetBytes((ulong)header.Length), .. header]);
        AssertUsageError(CliProcess.Run("checkpoint", "check", broken), "header");
    }
}

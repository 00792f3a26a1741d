using Xunit;

namespace Edm.Tests.Bench;

// Bad input at the CLI boundary: one line, exit code 2, no stack trace.
public sealed class CliTests
{
    static (int Code, string Err) Run(params string[] args)
    {
        var (code, _, err) = CliProcess.Run(args);
        return (code, err);
    }

    [Fact]
    public void Absent_device_is_exit_2_listing_present_devices()
    {
        var (code, err) = Run("verify", "--device", "cuda:3");
        Assert.Equal(2, code);
        Assert.Contains("cpu", err);
        Assert.DoesNotContain("   at ", err);
    }

    [Fact]
    public void Unknown_device_name_is_exit_2()
    {
        var (code, err) = Run("info", "--device", "tpu");
        Assert.Equal(2, code);
        Assert.Contains("allowed", err);
    }

    [Fact]
    public void Unknown_op_is_exit_2_listing_allowed_ops()
    {
        var (code, err) = Run("kernels", "--device", "cpu", "--op", "gelu,nosuchop");
        Assert.Equal(2, code);
        Assert.Contains("nosuchop", err);
        Assert.Contains("gelu", err);
    }

    [Fact]
    public void Unwritable_json_path_is_exit_2()
    {
        var (code, err) = Run("kernels", "--device", "cpu", "--op", "gelu", "--json", "/proc/forbidden/out.json");
        Assert.Equal(2, code);
        Assert.Contains("--json", err);
    }

    [Fact]
    public void Unknown_command_or_option_is_exit_2()
    {
        Assert.Equal(2, Run("nosuchcommand").Code);
        Assert.Equal(2, Run("verify", "--nosuchoption").Code);
    }

    [Fact]
    public void Kernels_quick_writes_json_rows()
    {
        var path = Path.Combine(Path.GetTempPath(), $"edm-kernels-{Guid.NewGuid():N}.json");
        try
        {
            var (code, _) = Run("kernels", "--device", "cpu", "--op", "axpy", "--quick", "--reps", "2", "--json", path);
            Assert.Equal(0, code);
            var doc = System.Text.Json.JsonDocument.Parse(File.ReadAllText(path));
            var row = doc.RootElement[0];
            foreach (var key in new[] { "op", "shape", "device", "median_ms", "gbps", "gflops", "baseline", "baseline_ms", "ratio" })
                Assert.True(row.TryGetProperty(key, out _), key);
            Assert.Equal("axpy", row.GetProperty("op").GetString());
            Assert.True(row.GetProperty("median_ms").GetDouble() > 0);
        }
        finally { File.Delete(path); }
    }
}

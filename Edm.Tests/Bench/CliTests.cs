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

    [Fact]
    public void A_bad_EDM_DEVICE_names_the_variable()
    {
        var (code, _, err) = CliProcess.Run(new Dictionary<string, string> { ["EDM_DEVICE"] = "tpu" }, "info");
        Assert.Equal(2, code);
        Assert.Contains("EDM_DEVICE", err);
        (code, _, err) = CliProcess.Run(new Dictionary<string, string> { ["EDM_DEVICE"] = "cuda:5" }, "info");
        Assert.Equal(2, code);
        Assert.Contains("EDM_DEVICE", err);
    }

    [Fact]
    public void A_bad_kernel_choice_variable_is_refused_when_the_device_opens()
    {
        var (code, _, err) = CliProcess.Run(new Dictionary<string, string> { ["EDM_CONV_GPU"] = "winograd" }, "info", "--device", "cpu");
        Assert.Equal(2, code);
        Assert.StartsWith("error: EDM_CONV_GPU=winograd is not a convolution algorithm; allowed: implicit, im2col", err);
        (code, _, err) = CliProcess.Run(new Dictionary<string, string> { ["EDM_GEMM_GPU"] = "fast" }, "info", "--device", "cpu");
        Assert.Equal(2, code);
        Assert.StartsWith("error: EDM_GEMM_GPU=fast is not a GEMM kernel; allowed: auto, tiled, tiled128, tiled128v, tf32", err);
        (code, _, _) = CliProcess.Run(new Dictionary<string, string> { ["EDM_CONV_GPU"] = "im2col", ["EDM_GEMM_GPU"] = "tiled128v" }, "info", "--device", "cpu");
        Assert.Equal(0, code);
    }

    [Fact]
    public void An_empty_op_list_is_exit_2()
    {
        var (code, err) = Run("kernels", "--device", "cpu", "--op", "");
        Assert.Equal(2, code);
        Assert.Contains("names no op", err);
    }

    [Fact]
    public void Info_on_the_cpu_prints_no_shared_memory_figure()
    {
        var (code, output, _) = CliProcess.Run("info", "--device", "cpu");
        Assert.Equal(0, code);
        Assert.DoesNotContain("shared memory", output);
    }

    [Fact]
    public void Truncation_reference_that_is_missing_or_malformed_is_exit_2()
    {
        var dir = Directory.CreateTempSubdirectory("edm-ref-").FullName;
        try
        {
            string[] small = ["truncation", "--device", "cpu", "--dataset", "gaussian", "--dim", "2", "--batch", "2", "--solvers", "euler",
                "--discretizations", "edm", "--steps", "4", "--local-rhos", "7", "--local-steps", "4", "--no-plots", "--out", Path.Combine(dir, "out")];
            var (code, err) = Run([.. small, "--reference", Path.Combine(dir, "nonexistent")]);
            Assert.Equal(2, code);
            Assert.Contains("is not a folder", err);
            // A reference folder made by the same configuration, then one row garbled.
            var refDir = Path.Combine(dir, "ref");
            Assert.Equal(0, Run([.. small[..^1], refDir, "--reference-only"]).Code);
            var csv = Directory.GetFiles(refDir, "global_*.csv").First();
            File.AppendAllText(csv, "gaussian,euler,edm,7,abc\n");
            (code, err) = Run([.. small, "--reference", refDir]);
            Assert.Equal(2, code);
            Assert.Contains("line", err);
            Assert.Contains("columns", err);
            // --out that is a file.
            (code, err) = Run([.. small[..^1], csv]);
            Assert.Equal(2, code);
            Assert.Contains("is a file", err);
        }
        finally { Directory.Delete(dir, true); }
    }
}

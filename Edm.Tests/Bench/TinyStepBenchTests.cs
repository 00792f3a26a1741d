using System.Diagnostics;
using System.Text.Json;
using Xunit;

namespace Edm.Tests.Bench;

// `kernels --op step_ddpmpp_tiny,step_ddpmpp_tiny_fwd` (Edm.Bench/Perf/TinyStepBench.cs): the rows
// build and run (--quick: 8x8, batch 2), --onnx misuse is one error line and exit 2, and, where
// Debian's PyTorch is installed (/usr/bin/python3 with torch), the PyTorch peer's rows join ours in
// `compare` and the ONNX Runtime peer runs from a freshly exported model. Without PyTorch those two
// tests return early (they say so on the console): the C# side is still covered by the others.
public sealed class TinyStepBenchTests : IDisposable
{
    const string Ops = "step_ddpmpp_tiny,step_ddpmpp_tiny_fwd";
    const string QuickShape = "ddpmpp-tiny (2, 1, 8, 8) label_dim 0";
    readonly string _dir = Directory.CreateTempSubdirectory("edm-tiny-bench-").FullName;

    public void Dispose() => Directory.Delete(_dir, recursive: true);

    static JsonElement[] Rows(string path) => JsonDocument.Parse(File.ReadAllText(path)).RootElement.EnumerateArray().ToArray();

    [Fact]
    public void Quick_rows_run_one_step_and_one_forward_at_8x8()
    {
        string json = Path.Combine(_dir, "ours.json");
        var (code, output, err) = CliProcess.Run("kernels", "--device", "cpu", "--op", Ops, "--quick", "--reps", "1", "--json", json);
        Assert.True(code == 0, err);
        var rows = Rows(json);
        Assert.Equal(["step_ddpmpp_tiny", "step_ddpmpp_tiny_fwd"], rows.Select(r => r.GetProperty("op").GetString()));
        foreach (var r in rows)
        {
            Assert.Equal(QuickShape, r.GetProperty("shape").GetString());
            Assert.True(r.GetProperty("median_ms").GetDouble() > 0);
            Assert.True(r.GetProperty("gflops").GetDouble() > 0);
            Assert.Equal("none", r.GetProperty("baseline").GetString());
            Assert.Contains("188,769 parameters", r.GetProperty("note").GetString());
        }
        Assert.Contains("Adam", rows[0].GetProperty("note").GetString());
    }

    [Fact]
    public void A_missing_onnx_folder_is_one_error_line_and_exit_2()
    {
        var (code, _, err) = CliProcess.Run("kernels", "--device", "cpu", "--op", "step_ddpmpp_tiny_fwd", "--onnx", Path.Combine(_dir, "absent"));
        Assert.Equal(2, code);
        Assert.StartsWith("error: --onnx", err);
        Assert.Contains("--export-onnx", err);
        Assert.DoesNotContain("   at ", err);
    }

    [Fact]
    public void A_garbage_onnx_file_is_one_error_line_and_exit_2()
    {
        File.WriteAllBytes(Path.Combine(_dir, "ddpmpp-tiny-16.onnx"), Data.TempDir.RandomBytes(4096, 3));
        var (code, _, err) = CliProcess.Run("kernels", "--device", "cpu", "--op", "step_ddpmpp_tiny_fwd", "--onnx", _dir);
        Assert.Equal(2, code);
        Assert.StartsWith("error: --onnx", err);
        Assert.Contains("cannot load", err);
        Assert.DoesNotContain("   at ", err);
    }

    [Fact]
    public void Onnx_without_the_forward_rows_or_with_quick_is_exit_2()
    {
        var (code, _, err) = CliProcess.Run("kernels", "--device", "cpu", "--op", "step_ddpmpp_tiny", "--onnx", _dir);
        Assert.Equal(2, code);
        Assert.Contains("step_ddpmpp_tiny_fwd", err);
        (code, _, err) = CliProcess.Run("kernels", "--device", "cpu", "--op", "step_ddpmpp_tiny_fwd", "--quick", "--onnx", _dir);
        Assert.Equal(2, code);
        Assert.Contains("--quick", err);
    }

    /// <summary>Runs /usr/bin/python3 bench/torch_baseline.py with args; null when PyTorch is not installed there.</summary>
    static (int Code, string Out, string Err)? Torch(params string[] args)
    {
        const string python = "/usr/bin/python3";
        if (!File.Exists(python)) return null;
        var psi = new ProcessStartInfo(python) { RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
        foreach (var a in new[] { "-c", "import torch" }) psi.ArgumentList.Add(a);
        using (var probe = Process.Start(psi)!)
        {
            probe.WaitForExit();
            if (probe.ExitCode != 0)
            {
                Console.WriteLine("TinyStepBenchTests: no PyTorch under /usr/bin/python3; the peer test returned early");
                return null;
            }
        }
        psi.ArgumentList.Clear();
        psi.ArgumentList.Add(TestData.Repo("bench/torch_baseline.py"));
        foreach (var a in args) psi.ArgumentList.Add(a);
        psi.Environment["OMP_NUM_THREADS"] = "1";
        using var p = Process.Start(psi)!;
        var stdout = p.StandardOutput.ReadToEndAsync();
        var stderr = p.StandardError.ReadToEndAsync();
        p.WaitForExit();
        return (p.ExitCode, stdout.Result, stderr.Result);
    }

    [Fact]
    public void PyTorch_peer_has_our_parameter_count_and_joins_our_rows_in_compare()
    {
        string theirs = Path.Combine(_dir, "torch.json"), ours = Path.Combine(_dir, "ours.json");
        if (Torch("--device", "cpu", "--ops", Ops, "--quick", "--reps", "1", "--threads", "1", "--json", theirs) is not var (code, output, err)) return;
        Assert.True(code == 0, err);
        Assert.Contains("step_ddpmpp_tiny: DDPM++ tiny parameters 188,769 (ours: 188,769; equal)", output);
        Assert.Contains("step_ddpmpp_tiny_fwd: DDPM++ tiny parameters 188,769 (ours: 188,769; equal)", output);
        Assert.Equal(0, CliProcess.Run("kernels", "--device", "cpu", "--op", Ops, "--quick", "--reps", "1", "--json", ours).Code);
        var (cmp, table, cmpErr) = CliProcess.Run("compare", ours, theirs);
        Assert.True(cmp == 0, cmpErr);
        Assert.Contains($"step_ddpmpp_tiny     {QuickShape}", table);
        Assert.Contains($"step_ddpmpp_tiny_fwd {QuickShape}", table);
        Assert.DoesNotContain("only in", table);
    }

    [Fact]
    public void Onnx_Runtime_is_the_baseline_of_the_forward_rows_from_an_exported_model()
    {
        string models = Path.Combine(_dir, "onnx"), json = Path.Combine(_dir, "ort.json");
        if (Torch("--export-onnx", models) is not var (code, _, err)) return;
        Assert.True(code == 0, err);
        var (run, _, runErr) = CliProcess.Run("kernels", "--device", "cpu", "--op", "step_ddpmpp_tiny_fwd", "--onnx", models, "--reps", "1", "--json", json);
        Assert.True(run == 0, runErr);
        var rows = Rows(json);
        Assert.Equal(["ddpmpp-tiny (64, 1, 16, 16) label_dim 0", "ddpmpp-tiny (64, 1, 32, 32) label_dim 0"], rows.Select(r => r.GetProperty("shape").GetString()));
        foreach (var r in rows)
        {
            Assert.Equal("onnxruntime-cpu", r.GetProperty("baseline").GetString());
            Assert.True(r.GetProperty("baseline_ms").GetDouble() > 0);
            Assert.True(r.GetProperty("ratio").GetDouble() > 0);
        }
    }
}

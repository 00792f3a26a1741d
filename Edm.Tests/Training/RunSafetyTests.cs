using System.Diagnostics;
using Edm.Model.Training;
using Edm.Tests.Data;
using Xunit;

namespace Edm.Tests.Training;

// What `train` promises about the run folder, checked with files on disk before and after: one
// training per folder (a lock naming the holder), no fresh run over a run's files, SIGTERM saves a
// resumable state, a diverged loss stops without touching the last checkpoint, old states pruned,
// stale temporaries cleaned, and a resume with nothing left to do says so.
public sealed class RunSafetyTests
{
    static string[] Tiny(string data, string outDir, params string[] extra) =>
        ["train", "--data", data, "--out", outDir, "--preset", "ddpmpp-tiny", "--batch", "2", "--lr-rampup", "0", "--device", "cpu", .. extra];

    [Fact]
    public void A_second_training_into_a_locked_folder_is_refused_naming_the_holder()
    {
        using var tmp = new TempDir();
        var data = TrainingTests.MakeDataset(tmp);
        var dir = tmp["run"];
        Directory.CreateDirectory(dir);
        using (RunLock.Acquire(dir))
        {
            var (code, _, err) = CliProcess.Run(Tiny(data, dir, "--kimg", "0.004"));
            Assert.Equal(2, code);
            Assert.Contains($"in use by process {Environment.ProcessId}", err);
            Assert.Empty(Directory.GetFiles(dir, "*.safetensors"));
            Assert.Throws<RunLockedException>(() => RunLock.Acquire(dir));
        }
        // Released (as after a killed holder: the OS drops the lock with the process): the run goes ahead.
        Assert.Equal(0, CliProcess.Code(Tiny(data, dir, "--kimg", "0.004")));
    }

    [Fact]
    public void A_fresh_run_refuses_a_folder_with_snapshots_or_stats_but_no_state()
    {
        using var tmp = new TempDir();
        var data = TrainingTests.MakeDataset(tmp);
        var dir = tmp["run"];
        Assert.Equal(0, CliProcess.Code(Tiny(data, dir, "--kimg", "0.004")));
        foreach (var s in Checkpoints.List(dir, Checkpoints.StatePrefix)) File.Delete(s);
        var snapshot = Checkpoints.List(dir, Checkpoints.SnapshotPrefix).Single();
        var before = File.ReadAllBytes(snapshot);
        var stats = File.ReadAllText(Path.Combine(dir, "stats.jsonl"));
        var (code, _, err) = CliProcess.Run(Tiny(data, dir, "--kimg", "0.004"));
        Assert.Equal(2, code);
        Assert.Contains("no training state", err);
        Assert.Equal(before, File.ReadAllBytes(snapshot));
        Assert.Equal(stats, File.ReadAllText(Path.Combine(dir, "stats.jsonl")));
    }

    [Fact]
    public async Task Sigterm_saves_a_state_that_resumes()
    {
        using var tmp = new TempDir();
        var data = TrainingTests.MakeDataset(tmp);
        var dir = tmp["run"];
        using var p = CliProcess.Start(Tiny(data, dir, "--kimg", "1000", "--snap", "1000", "--tick", "0.002"));
        var stdout = new System.Text.StringBuilder();
        var sawTick = new ManualResetEventSlim();
        p.OutputDataReceived += (_, e) => { if (e.Data is null) return; lock (stdout) stdout.AppendLine(e.Data); if (e.Data.StartsWith("tick ")) sawTick.Set(); };
        p.BeginOutputReadLine();
        var stderr = p.StandardError.ReadToEndAsync();
        Assert.True(sawTick.Wait(TimeSpan.FromMinutes(2)), "no progress line within 2 minutes: " + stdout);
        Process.Start("kill", ["-TERM", p.Id.ToString()])!.WaitForExit();
        Assert.True(p.WaitForExit(TimeSpan.FromMinutes(2)), "did not stop within 2 minutes of SIGTERM");
        Assert.Equal(130, p.ExitCode);
        Assert.Contains("--resume", await stderr);
        Assert.Single(Checkpoints.List(dir, Checkpoints.StatePrefix));
        Assert.Empty(Directory.GetFiles(dir, ".*.tmp-*"));
        // It resumes: a shorter length than what is done says there is nothing to do and exits 0.
        var (code, output, err) = CliProcess.Run("train", "--data", data, "--out", dir, "--resume", dir, "--kimg", "0.001", "--device", "cpu");
        Assert.True(code == 0, err);
        Assert.Contains("nothing to train", output);
    }

    [Fact]
    public void A_diverged_loss_stops_with_the_step_and_keeps_the_last_checkpoint()
    {
        using var tmp = new TempDir();
        var data = TrainingTests.MakeDataset(tmp);
        var dir = tmp["run"];
        var (code, _, err) = CliProcess.Run(Tiny(data, dir, "--kimg", "0.04", "--snap", "0.002", "--lr", "1e30"));
        Assert.Equal(2, code);
        Assert.StartsWith("error: the loss diverged", err);
        Assert.Contains("at step", err);
        Assert.DoesNotContain("   at ", err);
        // Every state on disk is whole and finite (the diverged step was not saved).
        using var device = Edm.Kernels.EdmDevice.Create("cpu");
        foreach (var s in Checkpoints.List(dir, Checkpoints.StatePrefix)) Checkpoints.CheckState(device, s);
    }

    [Fact]
    public void Old_states_are_pruned_to_keep_states_and_stale_temporaries_removed()
    {
        using var tmp = new TempDir();
        var data = TrainingTests.MakeDataset(tmp);
        var dir = tmp["run"];
        Directory.CreateDirectory(dir);
        var stale = Path.Combine(dir, ".training_options.json.tmp-99999-0");
        File.WriteAllText(stale, "torn");
        // Checkpoints are named by whole kimg, so three distinct states need 3 kimg (a few seconds at 8x8).
        var (code, output, err) = CliProcess.Run("train", "--data", data, "--out", dir, "--preset", "ddpmpp-tiny", "--batch", "16", "--lr-rampup", "0",
            "--kimg", "3", "--snap", "1", "--keep-states", "2", "--device", "cpu");
        Assert.True(code == 0, err);
        Assert.False(File.Exists(stale));
        Assert.Contains("removed 1 temporary file", output);
        Assert.Equal([Checkpoints.StateName(3000), Checkpoints.StateName(2000)], Checkpoints.List(dir, Checkpoints.StatePrefix).Select(Path.GetFileName));
        Assert.Equal(3, Checkpoints.List(dir, Checkpoints.SnapshotPrefix).Length);
        Assert.Equal(2, CliProcess.Code(Tiny(data, tmp["other"], "--kimg", "0.004", "--keep-states", "-1")));
    }

    [Theory]
    [InlineData("1000000000", "elements of one tensor")]
    [InlineData("100000", "needs about")]
    public void A_batch_too_large_for_memory_is_refused_before_training(string batch, string expected)
    {
        using var tmp = new TempDir();
        var data = TrainingTests.MakeDataset(tmp);
        var (code, _, err) = CliProcess.Run("train", "--data", data, "--out", tmp["run"], "--preset", "ddpmpp-tiny", "--batch", batch, "--kimg", "1", "--device", "cpu");
        Assert.Equal(2, code);
        Assert.StartsWith($"error: --batch {batch}", err);
        Assert.Contains(expected, err);
        Assert.False(Directory.Exists(tmp["run"]) && Directory.EnumerateFiles(tmp["run"], "*.safetensors").Any());
    }
}

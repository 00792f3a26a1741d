// `checkpoint check PATH`: checks that the newest training state and network snapshot in a training
// folder (or one given file) load completely; what scripts/kill-during-snapshot.sh runs after each
// kill. Exit 0 when they load, 2 with one line naming the broken file otherwise.
using System.CommandLine;
using Edm.Model.Training;

namespace Edm.Bench.Cli;

/// <summary>The checkpoint command.</summary>
public sealed class CheckpointCommand : IBenchCommand
{
    /// <inheritdoc/>
    public Command Build()
    {
        var device = CommonOptions.Device();
        var path = new Argument<string>("path") { Description = "Training output folder, or one state/snapshot file" };
        var check = new Command("check", "Check that the newest training state and snapshot load");
        check.Options.Add(device);
        check.Arguments.Add(path);
        check.SetAction(p => CliErrors.Guard(() =>
        {
            string target = p.GetValue(path)!;
            using var dev = CommonOptions.OpenDevice(p.GetValue(device));
            string[] states, snaps;
            if (File.Exists(target))
            {
                bool isState = Path.GetFileName(target).StartsWith(Checkpoints.StatePrefix, StringComparison.Ordinal);
                states = isState ? [target] : [];
                snaps = isState ? [] : [target];
            }
            else if (Directory.Exists(target))
            {
                states = Checkpoints.List(target, Checkpoints.StatePrefix);
                snaps = Checkpoints.List(target, Checkpoints.SnapshotPrefix);
                if (states.Length == 0 && snaps.Length == 0) throw new UsageException($"'{target}' holds no training states or snapshots");
            }
            else throw new UsageException($"'{target}' does not exist");
            try
            {
                if (states.Length > 0) Console.WriteLine($"ok: {states[0]} ({Checkpoints.CheckState(dev, states[0])})");
                if (snaps.Length > 0)
                {
                    var (net, spec, meta) = Checkpoints.LoadSnapshot(dev, snaps[0]);
                    net.Dispose();
                    Console.WriteLine($"ok: {snaps[0]} ({spec.Preset} {spec.Resolution}x{spec.Resolution}x{spec.Channels}, kimg {meta.GetValueOrDefault("kimg", "?")})");
                }
            }
            catch (CheckpointException e) { throw new UsageException(e.Message); }
            return 0;
        }));
        var cmd = new Command("checkpoint", "Inspect training checkpoints");
        cmd.Subcommands.Add(check);
        return cmd;
    }
}

// `train`: trains a preset network on an image dataset (Edm.Model.Training.Trainer) and writes
// snapshots, training states, training_options.json and stats.jsonl to --out; `--resume DIR`
// continues exactly from the newest training state in DIR. User mistakes (dataset, options,
// output folder, a corrupt state, device memory) print one line and exit with code 2.
using System.CommandLine;
using Edm.Kernels;
using Edm.Model;
using Edm.Model.Data;
using Edm.Model.Networks;
using Edm.Model.Training;

namespace Edm.Bench.Cli;

/// <summary>The train command.</summary>
public sealed class TrainCommand : IBenchCommand
{
    /// <inheritdoc/>
    public Command Build()
    {
        var device = CommonOptions.Device();
        var data = new Option<string>("--data") { Description = "Dataset folder or zip (NVlabs/edm format; see docs/data.md)", Required = true };
        var output = new Option<string>("--out") { Description = "Output folder (snapshots, states, stats.jsonl)", Required = true };
        var preset = new Option<string?>("--preset") { Description = $"Network preset: {Presets.Names}" };
        var batch = new Option<int?>("--batch") { Description = "Images per optimizer step (default 512)" };
        var batchGpu = new Option<int?>("--batch-gpu") { Description = "Images per forward/backward round; smaller than --batch = gradient accumulation" };
        var kimg = new Option<double?>("--kimg") { Description = "Training length in thousands of images (fractions allowed, e.g. 0.5)" };
        var snap = new Option<double?>("--snap") { Description = "Snapshot interval in kimg (default 50); a snapshot is also written at the end" };
        var tick = new Option<double?>("--tick") { Description = "Progress-line interval in kimg (default: --snap / 10)" };
        var resume = new Option<string?>("--resume") { Description = "Continue from the newest training state in this folder (or this state file)" };
        var lr = new Option<double?>("--lr") { Description = "Learning rate (default 1e-3)" };
        var lrRampup = new Option<double?>("--lr-rampup") { Description = "Learning-rate ramp-up in kimg (default 10000)" };
        var ema = new Option<double?>("--ema") { Description = "EMA half-life in kimg (default 500)" };
        var emaRampup = new Option<double?>("--ema-rampup") { Description = "EMA ramp-up ratio (default 0.05; 0 = none)" };
        var dropout = new Option<double?>("--dropout") { Description = "Dropout probability (default: the preset's)" };
        var augment = new Option<double?>("--augment") { Description = "Augmentation probability (default 0)" };
        var seed = new Option<ulong?>("--seed") { Description = "Seed of weights, data order, noise and dropout (default 0)" };
        var loss = new Option<string?>("--loss") { Description = "Loss: edm (default), vp or ve" };
        var precond = new Option<string?>("--precond") { Description = "Preconditioning: edm (default), vp or ve" };
        var cond = new Option<bool>("--cond") { Description = "Class-conditional training (labelled dataset)" };
        var resolution = new Option<int?>("--resolution") { Description = "Train at a lower resolution that divides the dataset's (box-filter downsampling)" };
        var cmd = new Command("train", "Train a preset network on an image dataset (EDM loss, Adam, EMA snapshots, exact resume)");
        foreach (var o in new Option[] { device, data, output, preset, batch, batchGpu, kimg, snap, tick, resume, lr, lrRampup, ema, emaRampup,
                     dropout, augment, seed, loss, precond, cond, resolution })
            cmd.Options.Add(o);
        cmd.SetAction(p => CliErrors.Guard(() =>
        {
            string outDir = Path.GetFullPath(p.GetValue(output)!);
            string? resumeFrom = p.GetValue(resume);
            double aug = p.GetValue(augment) ?? 0;
            if (resumeFrom is null && p.GetValue(preset) is null) throw new UsageException("--preset is required (unless --resume is given)");
            if (resumeFrom is null && p.GetValue(kimg) is null) throw new UsageException("--kimg is required (unless --resume is given)");

            // Options given on the command line (null: not given).
            TrainingOptions Apply(TrainingOptions o) => o with
            {
                Preset = p.GetValue(preset) ?? o.Preset,
                Batch = p.GetValue(batch) ?? o.Batch,
                BatchGpu = p.GetValue(batchGpu) ?? o.BatchGpu,
                Kimg = p.GetValue(kimg) ?? o.Kimg,
                SnapKimg = p.GetValue(snap) ?? o.SnapKimg,
                TickKimg = p.GetValue(tick) ?? o.TickKimg,
                Lr = p.GetValue(lr) ?? o.Lr,
                LrRampupKimg = p.GetValue(lrRampup) ?? o.LrRampupKimg,
                EmaHalflifeKimg = p.GetValue(ema) ?? o.EmaHalflifeKimg,
                EmaRampupRatio = p.GetValue(emaRampup) ?? o.EmaRampupRatio,
                Dropout = p.GetValue(dropout) ?? o.Dropout,
                Augment = aug,
                Seed = p.GetValue(seed) ?? o.Seed,
                Loss = p.GetValue(loss) is { } l ? Parse(l, "--loss", LossSettings.Parse) : o.Loss,
                Precond = p.GetValue(precond) is { } pc ? Parse(pc, "--precond", Precond.Parse) : o.Precond,
                Cond = p.GetValue(cond) || o.Cond,
                Resolution = p.GetValue(resolution) ?? o.Resolution,
            };

            bool created = !Directory.Exists(outDir);
            try
            {
                if (resumeFrom is null && Checkpoints.List(outDir, Checkpoints.StatePrefix).Length > 0)
                    throw new UsageException($"--out '{outDir}' already holds a training run; continue it with --resume '{outDir}' or choose another folder");
                RequireWritableFolder(outDir);
                using var ds = OpenDataset(p.GetValue(data)!);
                using var dev = CommonOptions.OpenDevice(p.GetValue(device));
                using var trainer = resumeFrom is null
                    ? Trainer.Start(dev, ds, Apply(new TrainingOptions { SnapKimg = 50 }))
                    : ResumeFrom(dev, ds, resumeFrom, Apply);
                Console.WriteLine($"device: {dev}");
                try { trainer.Run(outDir, Console.WriteLine); }
                catch (DeviceOutOfMemoryException e)
                {
                    var o = trainer.Options;
                    throw new UsageException($"out of device memory with {o.RoundBatch} images per forward/backward round ({e.Message}); " +
                        $"pass --batch-gpu with a smaller divisor of --batch {o.Batch} (gradient accumulation keeps the batch)");
                }
                return 0;
            }
            catch (Exception e) when (e is not UsageException)
            {
                if (created && Directory.Exists(outDir) && !Directory.EnumerateFileSystemEntries(outDir).Any()) Directory.Delete(outDir);
                throw e switch
                {
                    DatasetException or CheckpointException or IOException or UnauthorizedAccessException => new UsageException(e.Message),
                    NotSupportedException => new UsageException($"not supported in this build: {e.Message}"),
                    _ => e,
                };
            }
            catch
            {
                if (created && Directory.Exists(outDir) && !Directory.EnumerateFileSystemEntries(outDir).Any()) Directory.Delete(outDir);
                throw;
            }
        }));
        return cmd;
    }

    static T Parse<T>(string value, string option, Func<string, T> parse)
    {
        try { return parse(value); }
        catch (ArgumentException e) { throw new UsageException($"{option}: {e.Message}"); }
    }

    static ImageDataset OpenDataset(string path)
    {
        try { return ImageDataset.Open(path, preload: true); }
        catch (FileNotFoundException e) { throw new UsageException(e.Message); }
        catch (DirectoryNotFoundException e) { throw new UsageException(e.Message); }
    }

    /// <summary>Creates the output folder if needed and checks a file can be created in it.</summary>
    static void RequireWritableFolder(string dir)
    {
        try
        {
            if (File.Exists(dir)) throw new UsageException($"--out '{dir}' is a file; give a folder");
            Directory.CreateDirectory(dir);
            var probe = Path.Combine(dir, $".edm-write-probe-{Environment.ProcessId}");
            File.WriteAllText(probe, "");
            File.Delete(probe);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            throw new UsageException($"--out '{dir}' is not writable: {e.Message}");
        }
    }

    /// <summary>Resumes from a state file, or from the newest state in a folder.</summary>
    static Trainer ResumeFrom(EdmDevice dev, ImageDataset ds, string from, Func<TrainingOptions, TrainingOptions> apply)
    {
        string[] states = File.Exists(from) ? [from] : Checkpoints.List(from, Checkpoints.StatePrefix);
        if (states.Length == 0)
            throw new UsageException($"--resume '{from}' holds no {Checkpoints.StatePrefix}NNNNNN{Checkpoints.Extension}");
        try { return Trainer.Resume(dev, ds, states[0], apply); }
        catch (CheckpointException e)
        {
            string hint = states.Length > 1 ? $"; to resume from the previous state pass --resume {states[1]}" : "";
            throw new UsageException($"cannot resume: {e.Message}{hint}");
        }
    }
}

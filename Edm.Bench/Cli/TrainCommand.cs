// `train`: trains a preset network on an image dataset (Edm.Model.Training.Trainer) and writes
// snapshots, training states, training_options.json and stats.jsonl to --out; `--resume DIR`
// continues exactly from the newest training state in DIR; `--transfer SNAPSHOT` starts from a
// snapshot's weights (fine-tuning, as NVlabs/edm's --transfer). User mistakes (dataset, options,
// output folder, a corrupt state, device memory) print one line and exit with code 2.
using System.CommandLine;
using System.Runtime.InteropServices;
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
        var preset = new Option<string?>("--preset") { Description = $"Network preset (required unless --resume): {Presets.Names}" };
        var batch = new Option<int?>("--batch") { Description = "Images per optimizer step (default 512)" };
        var batchGpu = new Option<int?>("--batch-gpu") { Description = "Images per forward/backward round; smaller than --batch = gradient accumulation" };
        var kimg = new Option<double?>("--kimg") { Description = "Training length in thousands of images (required unless --resume; fractions allowed, e.g. 0.5)" };
        var snap = new Option<double?>("--snap") { Description = "Snapshot interval in kimg (default 50); a snapshot is also written at the end" };
        var tick = new Option<double?>("--tick") { Description = "Progress-line interval in kimg (default: --snap / 10)" };
        var resume = new Option<string?>("--resume") { Description = "Continue from the newest training state in this folder (or this state file)" };
        var transfer = new Option<string?>("--transfer") { Description = "Start from a network snapshot's weights (fine-tuning; the preset and resolution default to the snapshot's, the EMA ramp-up to 0; fresh Adam and counters)" };
        var lr = new Option<double?>("--lr") { Description = "Learning rate (default 1e-3)" };
        var lrRampup = new Option<double?>("--lr-rampup") { Description = "Learning-rate ramp-up in kimg (default 10000)" };
        var lrDecay = new Option<double?>("--lr-decay") { Description = "Linear learning-rate decay to 0 over the last this many kimg of the run (default 0: none)" };
        var ema = new Option<double?>("--ema") { Description = "EMA half-life in kimg (default 500)" };
        var emaRampup = new Option<double?>("--ema-rampup") { Description = "EMA ramp-up ratio (default 0.05; 0 = none)" };
        var dropout = new Option<double?>("--dropout") { Description = "Dropout probability (default: the preset's)" };
        var labelDropout = new Option<double?>("--label-dropout") { Description = "Probability of training a sample without its class label, for --guidance at sampling (needs --cond; default 0)" };
        var augment = new Option<double?>("--augment") { Description = "Augmentation probability (default 0)" };
        var seed = new Option<ulong?>("--seed") { Description = "Seed of weights, data order, noise and dropout (default 0)" };
        var loss = new Option<string?>("--loss") { Description = "Loss: edm (default), vp or ve" };
        var precond = new Option<string?>("--precond") { Description = "Preconditioning: edm (default), vp or ve" };
        var cond = new Option<bool>("--cond") { Description = "Class-conditional training (labelled dataset)" };
        var resolution = new Option<int?>("--resolution") { Description = "Train at a lower resolution that divides the dataset's (box-filter downsampling)" };
        var keepStates = new Option<int>("--keep-states") { Description = "Training states to keep (the newest K; every snapshot is kept; 0 = all)", DefaultValueFactory = _ => 3 };
        var cmd = new Command("train", "Train a preset network on an image dataset (EDM loss, Adam, EMA snapshots, exact resume)");
        foreach (var o in new Option[] { device, data, output, preset, batch, batchGpu, kimg, snap, tick, resume, transfer, lr, lrRampup, lrDecay, ema, emaRampup,
                     dropout, labelDropout, augment, seed, loss, precond, cond, resolution, keepStates })
            cmd.Options.Add(o);
        cmd.SetAction(p => CliErrors.Guard(() =>
        {
            string outDir = Path.GetFullPath(p.GetValue(output)!);
            string? resumeFrom = p.GetValue(resume);
            double aug = p.GetValue(augment) ?? 0;
            string? transferFrom = p.GetValue(transfer) is { } tf ? Path.GetFullPath(tf) : null;
            if (transferFrom is not null && resumeFrom is not null)
                throw new UsageException("--transfer and --resume cannot be given together (a resumed run takes its weights from its training state)");
            NetworkSpec? transferSpec = transferFrom is null ? null : ReadTransferSpec(transferFrom);
            if (resumeFrom is null && transferSpec is null && p.GetValue(preset) is null) throw new UsageException("--preset is required (unless --resume or --transfer is given)");
            if (resumeFrom is null && p.GetValue(kimg) is null) throw new UsageException("--kimg is required (unless --resume is given)");

            // Options given on the command line (null: not given).
            TrainingOptions Apply(TrainingOptions o) => o with
            {
                Preset = p.GetValue(preset) ?? transferSpec?.Preset ?? o.Preset,
                Batch = p.GetValue(batch) ?? o.Batch,
                BatchGpu = p.GetValue(batchGpu) ?? o.BatchGpu,
                Kimg = p.GetValue(kimg) ?? o.Kimg,
                SnapKimg = p.GetValue(snap) ?? o.SnapKimg,
                TickKimg = p.GetValue(tick) ?? o.TickKimg,
                Lr = p.GetValue(lr) ?? o.Lr,
                LrRampupKimg = p.GetValue(lrRampup) ?? o.LrRampupKimg,
                LrDecayKimg = p.GetValue(lrDecay) ?? o.LrDecayKimg,
                EmaHalflifeKimg = p.GetValue(ema) ?? o.EmaHalflifeKimg,
                EmaRampupRatio = p.GetValue(emaRampup) ?? (transferSpec is null ? o.EmaRampupRatio : 0),
                Dropout = p.GetValue(dropout) ?? o.Dropout,
                LabelDropout = p.GetValue(labelDropout) ?? o.LabelDropout,
                Augment = aug,
                Seed = p.GetValue(seed) ?? o.Seed,
                Loss = p.GetValue(loss) is { } l ? Parse(l, "--loss", TrainLoss) : o.Loss,
                Precond = p.GetValue(precond) is { } pc ? Parse(pc, "--precond", TrainPrecond) : o.Precond,
                Cond = p.GetValue(cond) || o.Cond,
                Resolution = p.GetValue(resolution) ?? transferSpec?.Resolution ?? o.Resolution,
                Transfer = transferFrom ?? o.Transfer,
            };

            if (p.GetValue(keepStates) < 0) throw new UsageException($"--keep-states {p.GetValue(keepStates)} must be >= 0 (0 keeps every state)");
            bool created = !Directory.Exists(outDir);
            try
            {
                // Probed with the longest name a run writes (a state's temporary file), so a path over
                // the OS limit fails here and not at the first checkpoint.
                CommonOptions.RequireWritableFolder(outDir, "--out", $".{Checkpoints.StateName(999_999_999)}.tmp-{Environment.ProcessId}-{Guid.Empty:N}");
                using var runLock = LockRun(outDir);
                int stale = RunLock.RemoveStaleTemporaries(outDir);
                if (stale > 0) Console.WriteLine($"removed {stale} temporary file(s) left by an interrupted write in '{outDir}'");
                if (resumeFrom is null) RequireNoRun(outDir);
                using var ds = OpenDataset(p.GetValue(data)!);
                using var dev = CommonOptions.OpenDevice(p.GetValue(device));
                using var trainer = resumeFrom is null
                    ? Trainer.Start(dev, ds, Apply(new TrainingOptions { SnapKimg = 50 }))
                    : ResumeFrom(dev, ds, resumeFrom, Apply);
                Console.WriteLine($"device: {dev}");
                trainer.RequireMemory();
                using var stop = new CancellationTokenSource();
                string? signal = null;
                void OnSignal(PosixSignalContext c)
                {
                    c.Cancel = true;  // finish the step and save instead of dying mid-step
                    signal = c.Signal == PosixSignal.SIGINT ? "SIGINT" : "SIGTERM";
                    stop.Cancel();
                }
                using var sigint = PosixSignalRegistration.Create(PosixSignal.SIGINT, OnSignal);
                using var sigterm = PosixSignalRegistration.Create(PosixSignal.SIGTERM, OnSignal);
                bool finished;
                try { finished = trainer.Run(outDir, Console.WriteLine, stop.Token, p.GetValue(keepStates)); }
                catch (DeviceOutOfMemoryException e)
                {
                    var o = trainer.Options;
                    throw new UsageException($"out of device memory with {o.RoundBatch} images per forward/backward round ({e.Message}); " +
                        $"pass --batch-gpu with a smaller divisor of --batch {o.Batch} (gradient accumulation keeps the batch)");
                }
                if (finished) return 0;
                Console.Error.WriteLine($"stopped by {signal}; continue with: train --data {p.GetValue(data)} --out {outDir} --resume {outDir}");
                return 130;
            }
            catch (Exception e) when (e is not UsageException)
            {
                RemoveIfEmpty(created, outDir);
                throw e switch
                {
                    DatasetException or CheckpointException or IOException or UnauthorizedAccessException => new UsageException(e.Message),
                    NotSupportedException => new UsageException($"not supported in this build: {e.Message}"),
                    _ => e,
                };
            }
            catch
            {
                RemoveIfEmpty(created, outDir);
                throw;
            }
        }));
        return cmd;
    }

    // The losses and preconditionings `train` runs: the others (k-diffusion's F-space weightings,
    // iDDPM) exist in the library (Losses.Compute, Precond) but the training loop does not use them.
    static LossKind TrainLoss(string name) => name.Trim().ToLowerInvariant() switch
    {
        "edm" => LossKind.Edm, "vp" => LossKind.Vp, "ve" => LossKind.Ve,
        "karras" or "snr" or "soft-min-snr" => throw new ArgumentException($"'{name}' (a k-diffusion F-space weighting) is library API only (Losses.Compute); train supports edm, vp, ve"),
        _ => throw new ArgumentException($"unknown loss '{name}'; allowed: edm, vp, ve"),
    };

    static PrecondKind TrainPrecond(string name) => name.Trim().ToLowerInvariant() switch
    {
        "edm" => PrecondKind.Edm, "vp" => PrecondKind.Vp, "ve" => PrecondKind.Ve,
        "iddpm" => throw new ArgumentException("'iddpm' needs a network with variance channels and is not supported by train; allowed: edm, vp, ve"),
        _ => throw new ArgumentException($"unknown preconditioning '{name}'; allowed: edm, vp, ve"),
    };

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

    /// <summary>Removes a folder this run created when nothing but its lock file is in it.</summary>
    static void RemoveIfEmpty(bool created, string dir)
    {
        if (!created || !Directory.Exists(dir)) return;
        if (Directory.EnumerateFileSystemEntries(dir).Any(f => Path.GetFileName(f) != RunLock.LockName)) return;
        Directory.Delete(dir, recursive: true);
    }

    /// <summary>Takes the run folder's lock; a folder in use by another training is a usage error.</summary>
    static RunLock LockRun(string dir)
    {
        try { return RunLock.Acquire(dir); }
        catch (RunLockedException e) { throw new UsageException(e.Message); }
    }

    /// <summary>A fresh run refuses a folder that holds any part of a run (states, snapshots or statistics).</summary>
    static void RequireNoRun(string dir)
    {
        bool states = Checkpoints.List(dir, Checkpoints.StatePrefix).Length > 0;
        bool snapshots = Checkpoints.List(dir, Checkpoints.SnapshotPrefix).Length > 0;
        bool stats = File.Exists(Path.Combine(dir, "stats.jsonl"));
        if (states)
            throw new UsageException($"--out '{dir}' already holds a training run; continue it with --resume '{dir}' or choose another folder");
        if (snapshots || stats)
            throw new UsageException($"--out '{dir}' holds {(snapshots ? "network snapshots" : "")}{(snapshots && stats ? " and " : "")}{(stats ? "stats.jsonl" : "")} " +
                "but no training state to resume from (a snapshot has no optimizer state); choose another folder, or move those files away to start over");
    }

    /// <summary>The network a --transfer snapshot describes (a missing or foreign file is a usage error).</summary>
    static NetworkSpec ReadTransferSpec(string path)
    {
        try { return NetworkSpec.FromMetadata(Checkpoints.Read(path, Checkpoints.SnapshotFormat).Metadata, path); }
        catch (CheckpointException e) { throw new UsageException($"--transfer: {e.Message}"); }
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

// Options shared by every command, and the error boundary that turns user mistakes into one line
// and exit code 2.
using System.CommandLine;
using Edm.Kernels;
using Edm.Model;
using Edm.Model.Data;
using Edm.Model.IO;
using Edm.Model.Training;

namespace Edm.Bench.Cli;

/// <summary>Options every command takes.</summary>
public static class CommonOptions
{
    /// <summary>--device auto|cpu|cuda[:N]|opencl[:N] (default: EDM_DEVICE, else auto).</summary>
    public static Option<string?> Device() => new("--device")
    {
        Description = "Device: auto, cpu, cuda[:N] or opencl[:N] (default: $EDM_DEVICE, else auto = CUDA > OpenCL > CPU)",
    };

    /// <summary>--json PATH.</summary>
    public static Option<string?> Json() => new("--json") { Description = "Also write the results as JSON to this path" };

    /// <summary>Opens the device, turning selection errors into usage errors.</summary>
    public static EdmDevice OpenDevice(string? spec)
    {
        if (spec is not null && string.IsNullOrWhiteSpace(spec))
            throw new UsageException("--device is empty; allowed: auto, cpu, cuda[:N], opencl[:N] (leave it out for $EDM_DEVICE or auto)");
        try { return EdmDevice.Create(spec); }
        catch (DeviceSelectionException e) { throw new UsageException(e.Message); }
    }

    /// <summary>Checks a path can be written (its folder exists or can be created) before long work starts.</summary>
    public static void RequireWritable(string? path, string option)
    {
        if (path is null) return;
        try
        {
            var full = Path.GetFullPath(path);
            if (Directory.Exists(full)) throw new UsageException($"{option} '{path}' is a directory; give a file path");
            var dir = Path.GetDirectoryName(full)!;
            Directory.CreateDirectory(dir);
            var probe = Path.Combine(dir, $".edm-write-probe-{Environment.ProcessId}");
            File.WriteAllText(probe, "");
            File.Delete(probe);
        }
        catch (UsageException) { throw; }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException or ArgumentException or NotSupportedException)
        {
            throw new UsageException($"{option} '{path}' is not writable ({Reason(e)})");
        }
    }

    /// <summary>
    /// Creates the folder <paramref name="dir"/> if needed and checks that a file named
    /// <paramref name="longestName"/> (the longest name the command will write there) can be created
    /// in it, before long work starts: a file in the way, a read-only folder or a path over the OS
    /// limit is a usage error naming <paramref name="option"/>.
    /// </summary>
    public static void RequireWritableFolder(string dir, string option, string longestName = ".edm-write-probe")
    {
        try
        {
            if (File.Exists(dir)) throw new UsageException($"{option} '{dir}' is a file; give a folder");
            Directory.CreateDirectory(dir);
            var probe = Path.Combine(dir, longestName);
            File.WriteAllText(probe, "");
            File.Delete(probe);
        }
        catch (UsageException) { throw; }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException or ArgumentException or NotSupportedException)
        {
            throw new UsageException($"{option} '{dir}' is not writable ({Reason(e)})");
        }
    }

    /// <summary>Why a write failed, without the name of the probe file that found it out.</summary>
    static string Reason(Exception e) => e switch
    {
        UnauthorizedAccessException => "permission denied",
        PathTooLongException => "the path is longer than the system allows",
        DirectoryNotFoundException or FileNotFoundException => "a file cannot be created there",
        _ when e.Message.Contains("File name too long", StringComparison.OrdinalIgnoreCase) => "the path is longer than the system allows",
        _ when e.Message.Contains("Read-only file system", StringComparison.OrdinalIgnoreCase) => "read-only file system",
        _ => System.Text.RegularExpressions.Regex.Replace(e.Message, @"\s*'?[^' ]*(\.edm-write-probe|\.tmp-\d+-0+)[^' ]*'?", ""),
    };

    /// <summary>Writes a file atomically: a temporary file in the same folder, then a rename.</summary>
    public static void WriteAtomic(string path, string contents)
    {
        var full = Path.GetFullPath(path);
        Directory.CreateDirectory(Path.GetDirectoryName(full)!);
        var tmp = full + $".tmp-{Environment.ProcessId}";
        File.WriteAllText(tmp, contents);
        File.Move(tmp, full, overwrite: true);
    }
}

/// <summary>
/// The CLI's error boundary. A user's mistake (a bad flag value, a missing or corrupt file, an
/// absent device, out of memory, an unwritable disk) prints one line "error: ..." and exits with 2.
/// Anything else is a bug of this program: it prints the exception with its stack trace and a
/// request to report it, and exits with 70 (EX_SOFTWARE).
/// </summary>
public static class CliErrors
{
    /// <summary>Exit code of a user's mistake.</summary>
    public const int UsageExit = 2;
    /// <summary>Exit code of an internal error (a bug).</summary>
    public const int BugExit = 70;

    /// <summary>The CLI flag of a library option name (TrainingOptions properties, Generator parameters).</summary>
    static readonly Dictionary<string, string> Flags = new(StringComparer.Ordinal)
    {
        ["Preset"] = "--preset", ["Batch"] = "--batch", ["batch"] = "--batch", ["BatchGpu"] = "--batch-gpu", ["Kimg"] = "--kimg",
        ["SnapKimg"] = "--snap", ["TickKimg"] = "--tick", ["Lr"] = "--lr", ["LrRampupKimg"] = "--lr-rampup", ["LrDecayKimg"] = "--lr-decay",
        ["EmaHalflifeKimg"] = "--ema", ["EmaRampupRatio"] = "--ema-rampup", ["Dropout"] = "--dropout", ["Augment"] = "--augment",
        ["Seed"] = "--seed", ["Loss"] = "--loss", ["Precond"] = "--precond", ["Cond"] = "--cond", ["Resolution"] = "--resolution",
        ["fixedClass"] = "--class", ["guidance"] = "--guidance", ["LabelDropout"] = "--label-dropout", ["Channels"] = "--channels", ["LabelDim"] = "--label-dim", ["AugmentDim"] = "--augment-dim",
    };

    /// <summary>The flag that sets a library option, or the option's own name when no flag does.</summary>
    public static string FlagOf(string option) => Flags.TryGetValue(option, out var f) ? f : option;

    /// <summary>The message of a user's mistake, or null when <paramref name="e"/> is a bug.</summary>
    public static string? UserMessage(Exception e) => e switch
    {
        UsageException or DeviceSelectionException or DeviceOutOfMemoryException => e.Message,
        InvalidOptionException o => $"{FlagOf(o.Option)} {o.Problem}",
        DatasetException or CheckpointException or SafeTensorsException or PickleException or TrainingDivergedException or RunLockedException => e.Message,
        FileNotFoundException or DirectoryNotFoundException or UnauthorizedAccessException or PathTooLongException => e.Message,
        IOException => $"i/o error: {e.Message}",
        _ => null,
    };

    /// <summary>Runs an action; a user mistake prints one line and returns 2, a bug its stack trace and 70.</summary>
    public static int Guard(Func<int> action)
    {
        try { return action(); }
        catch (Exception e)
        {
            if (UserMessage(e) is { } message)
            {
                Console.Error.WriteLine($"error: {message}");
                return UsageExit;
            }
            Console.Error.WriteLine($"internal error: {e}");
            Console.Error.WriteLine("This is a bug in EdmKernels, not a mistake in your input. Please report it with the command line and this output.");
            return BugExit;
        }
    }
}

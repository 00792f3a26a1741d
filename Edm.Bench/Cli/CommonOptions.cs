// Options shared by every command, and the error boundary that turns user mistakes into one line
// and exit code 2.
using System.CommandLine;
using Edm.Kernels;

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
            throw new UsageException($"{option} '{path}' is not writable: {e.Message}");
        }
    }

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

/// <summary>The CLI's error boundary.</summary>
public static class CliErrors
{
    /// <summary>Runs an action; a user mistake prints one line and returns 2.</summary>
    public static int Guard(Func<int> action)
    {
        try { return action(); }
        catch (UsageException e) { Console.Error.WriteLine($"error: {e.Message}"); return 2; }
        catch (DeviceSelectionException e) { Console.Error.WriteLine($"error: {e.Message}"); return 2; }
        catch (DeviceOutOfMemoryException e) { Console.Error.WriteLine($"error: {e.Message}"); return 2; }
        catch (ArgumentException e) { Console.Error.WriteLine($"error: {e.Message}"); return 2; }
    }
}

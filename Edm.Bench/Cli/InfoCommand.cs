// `info`: the devices found, the one selected, its memory and warp size.
using System.CommandLine;
using Edm.Kernels;

namespace Edm.Bench.Cli;

/// <summary>The info command.</summary>
public sealed class InfoCommand : IBenchCommand
{
    /// <inheritdoc/>
    public Command Build()
    {
        var device = CommonOptions.Device();
        var cmd = new Command("info", "List the devices found and describe the selected one");
        cmd.Options.Add(device);
        cmd.SetAction(p => CliErrors.Guard(() =>
        {
            Console.WriteLine("devices present:");
            foreach (var d in EdmDevice.ListDevices()) Console.WriteLine($"  {d}");
            using var dev = CommonOptions.OpenDevice(p.GetValue(device));
            var a = dev.Accelerator;
            Console.WriteLine($"selected: {dev.Spec} ({dev.Name})");
            Console.WriteLine($"  memory: {dev.MemorySize / (1024.0 * 1024 * 1024):F1} GiB, warp size {dev.WarpSize}, " +
                              $"multiprocessors {a.NumMultiprocessors}, max group {a.MaxNumThreadsPerGroup}" +
                              // The CPU accelerator's "shared memory" is host memory with no hardware limit; only a GPU's is a real figure.
                              (dev.IsCpu ? "" : $", shared memory per group {a.MaxSharedMemoryPerGroup / 1024} KiB"));
            Console.WriteLine($"  CPU fast paths' instruction set: {CpuIsa.Describe()}");
            Console.WriteLine($"  launch policy: grid-stride kernels start {dev.GridThreads} threads" +
                              (dev.IsCpu ? $"; CPU fast paths {(dev.CpuFastPaths ? "on" : "off")} ({Environment.ProcessorCount} cores)" : ""));
            return 0;
        }));
        return cmd;
    }
}

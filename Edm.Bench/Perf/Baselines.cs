// Baselines timed in the same run as our kernels: on the CPU accelerator a plain C# loop doing the
// same work; on a GPU a device-to-device copy of the same number of bytes (the bandwidth limit).
using Edm.Kernels;
using KOps = Edm.Kernels.Ops;

namespace Edm.Bench.Perf;

/// <summary>Helpers that build baseline actions.</summary>
public static class Baselines
{
    /// <summary>Name of the GPU copy baseline.</summary>
    public const string Copy = "d2d-copy";
    /// <summary>Name of the plain C# baseline.</summary>
    public const string CSharp = "csharp-parallel-for";

    /// <summary>
    /// A device-to-device copy moving <paramref name="bytes"/> bytes in total (half read, half
    /// written). Returns the action and the buffers to dispose.
    /// </summary>
    public static (Action Run, IDisposable Resources) DeviceCopy(EdmDevice d, double bytes)
    {
        int n = (int)Math.Max(1, bytes / 8);
        var src = Tensor.Zeros(d, n);
        var dst = Tensor.Zeros(d, n);
        return (() => KOps.CopyInto(src, dst), new Disposables(src, dst));
    }

    /// <summary>Disposes a group of resources.</summary>
    public sealed class Disposables(params IDisposable?[] items) : IDisposable
    {
        /// <inheritdoc/>
        public void Dispose() { foreach (var i in items) i?.Dispose(); }
    }
}

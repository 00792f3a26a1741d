using Edm.Kernels;

namespace Edm.Tests;

/// <summary>One CPU-accelerator device shared by the tests of a class (xunit class fixture).</summary>
public sealed class CpuDevice : IDisposable
{
    /// <summary>The device (CPU fast paths on; tests switch them off to check kernels).</summary>
    public EdmDevice Device { get; } = EdmDevice.Create("cpu");

    /// <inheritdoc/>
    public void Dispose() => Device.Dispose();
}

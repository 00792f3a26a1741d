using Edm.Kernels;

namespace Edm.Tests.Autograd;

/// <summary>One CPU device shared by the tests of a class.</summary>
public sealed class CpuDeviceFixture : IDisposable
{
    /// <summary>The device.</summary>
    public EdmDevice Device { get; } = EdmDevice.Create("cpu");

    /// <inheritdoc/>
    public void Dispose() => Device.Dispose();
}

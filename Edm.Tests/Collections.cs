using Xunit;

namespace Edm.Tests;

// Tests that toggle a shared device's CpuFastPaths must not run concurrently with each other.
[CollectionDefinition("cpu-device")]
public sealed class CpuDeviceCollection;

using Xunit;

namespace Edm.Tests;

// Tests that toggle a shared device's CpuFastPaths must not run concurrently with each other.
[CollectionDefinition("cpu-device")]
public sealed class CpuDeviceCollection;

// Tests that redirect Console must not run concurrently with each other.
[CollectionDefinition("console")]
public sealed class ConsoleCollection;

using Edm.Kernels;
using Edm.Verification;
using Xunit;

namespace Edm.Tests.Kernels;

// Base of the kernel tests that run each check on both CPU paths: the C# fast path and the ILGPU
// kernels (CpuFastPaths = false). Classes deriving from it share the "cpu-device" collection,
// because they toggle a device's CpuFastPaths.
public abstract class BothPathsTests(CpuDevice cpu)
{
    /// <summary>The shared CPU device.</summary>
    protected readonly EdmDevice _d = cpu.Device;

    /// <summary>Asserts a verify row passed, naming it.</summary>
    protected static void Pass(VerifyRow r) => Assert.True(r.Passed, $"{r.Name} {r.Shapes}: max abs {r.MaxAbsError:E3} > tol {r.Tolerance:E1} {r.Note}");

    /// <summary>Runs <paramref name="check"/> with fast paths on, then off (restored to on).</summary>
    protected void BothPaths(Action<EdmDevice> check)
    {
        foreach (bool fast in new[] { true, false })
        {
            _d.CpuFastPaths = fast;
            try { check(_d); }
            finally { _d.CpuFastPaths = true; }
        }
    }
}

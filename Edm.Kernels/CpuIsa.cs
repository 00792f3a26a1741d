// The SIMD instruction set the CPU fast paths run on, as the .NET runtime reports it at start-up.
// The fast paths use System.Numerics.Vector<float> and TensorPrimitives, whose width the JIT picks
// once per process (Vector<float> is 256-bit with AVX2, 128-bit with SSE only; TensorPrimitives
// also uses Vector512 where the CPU has AVX-512F), so no code path is tuned for one machine.
// DOTNET_EnableAVX512=0 (.NET 10 ignores the older DOTNET_EnableAVX512F), DOTNET_EnableAVX2=0 (and the other DOTNET_Enable* knobs) switch an ISA
// off for the process; Forced lists those that are set.
using System.Numerics;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;

namespace Edm.Kernels;

/// <summary>The instruction set of the CPU fast paths.</summary>
public static class CpuIsa
{
    /// <summary>The widest vector ISA in use: "AVX-512F", "AVX2+FMA", "AVX", "SSE4.1", "SSE2", or "scalar/other".</summary>
    public static string Name =>
        Avx512F.IsSupported ? "AVX-512F" :
        Avx2.IsSupported && Fma.IsSupported ? "AVX2+FMA" :
        Avx.IsSupported ? "AVX" :
        Sse41.IsSupported ? "SSE4.1" :
        Sse2.IsSupported ? "SSE2" : "scalar/other";

    /// <summary>Whether fused multiply-add instructions are in use.</summary>
    public static bool HasFma => Fma.IsSupported;

    /// <summary>Float lanes of the widest vector the process uses (Vector512 when accelerated, else Vector&lt;float&gt;).</summary>
    public static int MaxFloatLanes => Vector512.IsHardwareAccelerated ? 16 : Vector<float>.Count;

    /// <summary>The DOTNET_Enable* / DOTNET_PreferredVectorBitWidth variables set in this process's environment.</summary>
    public static IReadOnlyList<string> Forced =>
        Environment.GetEnvironmentVariables().Keys.Cast<string>()
            .Where(k => k.StartsWith("DOTNET_Enable", StringComparison.OrdinalIgnoreCase) || k.Equals("DOTNET_PreferredVectorBitWidth", StringComparison.OrdinalIgnoreCase))
            .OrderBy(k => k, StringComparer.Ordinal)
            .Select(k => $"{k}={Environment.GetEnvironmentVariable(k)}")
            .ToList();

    /// <summary>One line for `info` and the bench header.</summary>
    public static string Describe() =>
        $"{Name}{(HasFma ? "" : " (no FMA)")}, Vector<float> {Vector<float>.Count} lanes, widest {MaxFloatLanes} lanes, GEMM micro-kernel {GemmCpu.KernelName}" +
        (Forced.Count > 0 ? $"; set by environment: {string.Join(", ", Forced)}" : "");
}

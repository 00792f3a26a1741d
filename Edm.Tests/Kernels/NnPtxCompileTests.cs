using System.Reflection;
using System.Text.RegularExpressions;
using Edm.Kernels;
using ILGPU;
using ILGPU.Algorithms;
using ILGPU.Backends.EntryPoints;
using ILGPU.Backends.PTX;
using ILGPU.Runtime;
using ILGPU.Runtime.Cuda;
using Xunit;

namespace Edm.Tests.Kernels;

// The part-B NN kernels compile to PTX for an H100 (sm_90) without a GPU: ILGPU's PTX backend runs
// on the host. This catches constructs the CPU accelerator accepts but the CUDA backend does not,
// and checks each kernel's static shared memory against the 48 KiB a block may declare statically.
// (ptxas and the driver are not run here: the GPU check script does that.)
public sealed class NnPtxCompileTests
{
    public static TheoryData<Type, string, bool> Kernels() => new()
    {
        { typeof(SoftmaxKernels), "ForwardKernel", true },
        { typeof(SoftmaxKernels), "BackwardKernel", true },
        { typeof(GroupNormKernels), "ForwardKernel", true },
        { typeof(GroupNormKernels), "BackwardInputKernel", true },
        { typeof(GroupNormKernels), "BackwardParamsKernel", true },
        { typeof(AttentionKernels), "ForwardKernel", true },
        { typeof(AttentionKernels), "BackwardQKernel", true },
        { typeof(AttentionKernels), "BackwardKVKernel", true },
        { typeof(AttentionKernels), "RowDotKernel", false },
        { typeof(PoolingKernels), "Expand2xKernel", false },
        { typeof(PoolingKernels), "Reduce2xKernel", false },
        { typeof(DropoutKernels), "ApplyKernel", false },
    };

    [Theory]
    [MemberData(nameof(Kernels))]
    public void KernelCompilesToPtxWithinStaticSharedMemory(Type family, string method, bool explicitlyGrouped)
    {
        using var context = Context.Create(b => b.Cuda().EnableAlgorithms().Optimize(OptimizationLevel.O2));
        var backend = new PTXBackend(context, new CudaCapabilityContext(CudaArchitecture.SM_90), CudaArchitecture.SM_90, CudaInstructionSet.ISA_80, null);
        var mi = family.GetMethod(method, BindingFlags.NonPublic | BindingFlags.Static);
        Assert.NotNull(mi);
        var entry = explicitlyGrouped ? EntryPointDescription.FromExplicitlyGroupedKernel(mi) : EntryPointDescription.FromImplicitlyGroupedKernel(mi);
        var specialization = KernelSpecialization.Empty;
        var ptx = ((PTXCompiledKernel)backend.Compile(entry, specialization)).PTXAssembly;
        Assert.Contains(".entry", ptx);
        int shared = Regex.Matches(ptx, @"\.shared[^\n]*\[(\d+)\]").Sum(m => int.Parse(m.Groups[1].Value));
        Assert.InRange(shared, 0, 48 * 1024);
    }
}

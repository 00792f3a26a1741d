using System.Reflection;
using Edm.Kernels;
using ILGPU;
using ILGPU.Algorithms;
using ILGPU.Backends.EntryPoints;
using ILGPU.Backends.PTX;
using ILGPU.Runtime;
using ILGPU.Runtime.Cuda;
using Xunit;

namespace Edm.Tests.Kernels;

// Every implicitly grouped kernel of Edm.Kernels (a static void method whose first parameter is an
// Index1D), with the generic ones instantiated for the operators the engine uses, and the
// explicitly grouped GEMM and norm-reduction kernels, compile to PTX for an H100 (sm_90) on the
// host: ILGPU's PTX backend needs no GPU. This catches constructs the CPU accelerator runs but the
// CUDA backend rejects (NnPtxCompileTests covers the norm/softmax/attention kernels the same way).
public sealed class PtxCompileTests
{
    static readonly Assembly Kernels = typeof(Tensor).Assembly;

    public static TheoryData<string> ImplicitKernels()
    {
        var data = new TheoryData<string>();
        foreach (var m in ImplicitMethods()) data.Add(Name(m));
        return data;
    }

    static string Name(MethodInfo m) =>
        $"{m.DeclaringType!.Name}.{m.Name}" + (m.IsGenericMethod ? $"<{string.Join(",", m.GetGenericArguments().Select(t => t.Name))}>" : "");

    static IEnumerable<MethodInfo> ImplicitMethods()
    {
        Type[] unary = [typeof(GeluOp), typeof(SiluOp), typeof(GeluTanhOp), typeof(ExpOp), typeof(ClampOp), typeof(ScaleOp)];
        Type[] binary = [typeof(AddOp), typeof(DivOp), typeof(GeluGradOp), typeof(SiluGradOp), typeof(GeluTanhGradOp)];
        Type[] reduce = [typeof(SumReduce), typeof(MaxReduce), typeof(SumSquaresReduce)];
        foreach (var t in Kernels.GetTypes())
            foreach (var m in t.GetMethods(BindingFlags.Static | BindingFlags.Public | BindingFlags.NonPublic | BindingFlags.DeclaredOnly))
            {
                var p = m.GetParameters();
                if (m.ReturnType != typeof(void) || p.Length == 0 || p[0].ParameterType != typeof(Index1D)) continue;
                if (!m.IsGenericMethodDefinition) { yield return m; continue; }
                var constraint = m.GetGenericArguments()[0].GetGenericParameterConstraints();
                var ops = constraint.Contains(typeof(IUnaryOp)) ? unary : constraint.Contains(typeof(IBinaryOp)) ? binary
                    : constraint.Contains(typeof(IReduceOp)) ? reduce : [];
                foreach (var op in ops) yield return m.MakeGenericMethod(op);
            }
    }

    static string CompilePtx(MethodInfo m, bool explicitlyGrouped)
    {
        using var context = Context.Create(b => b.Cuda().EnableAlgorithms().Optimize(OptimizationLevel.O2));
        var backend = new PTXBackend(context, new CudaCapabilityContext(CudaArchitecture.SM_90), CudaArchitecture.SM_90, CudaInstructionSet.ISA_80, null);
        var entry = explicitlyGrouped ? EntryPointDescription.FromExplicitlyGroupedKernel(m) : EntryPointDescription.FromImplicitlyGroupedKernel(m);
        return ((PTXCompiledKernel)backend.Compile(entry, KernelSpecialization.Empty)).PTXAssembly;
    }

    [Fact]
    public void The_scan_finds_the_kernel_families()
    {
        var names = ImplicitMethods().Select(Name).ToList();
        foreach (var expected in new[] { "ElementwiseKernels.Unary<GeluOp>", "ReductionKernels.Partial<SumReduce>", "RandomKernels.Fill", "LayoutKernels.Gather" })
            Assert.Contains(expected, names);
        Assert.True(names.Count >= 40, $"only {names.Count} kernels found");
    }

    [Theory]
    [MemberData(nameof(ImplicitKernels))]
    public void Implicitly_grouped_kernel_compiles_to_ptx(string name)
    {
        var m = ImplicitMethods().Single(k => Name(k) == name);
        Assert.Contains(".entry", CompilePtx(m, explicitlyGrouped: false));
    }

    [Theory]
    [InlineData("GemmTiledKernel")]
    [InlineData("SumSquares")]
    public void Explicitly_grouped_kernel_compiles_to_ptx(string method)
    {
        var m = Kernels.GetTypes()
            .SelectMany(t => t.GetMethods(BindingFlags.Static | BindingFlags.Public | BindingFlags.NonPublic | BindingFlags.DeclaredOnly))
            .Single(x => x.Name == method && x.ReturnType == typeof(void) && x.GetParameters().FirstOrDefault()?.ParameterType != typeof(Index1D));
        Assert.Contains(".entry", CompilePtx(m, explicitlyGrouped: true));
    }
}

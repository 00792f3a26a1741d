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

// Every kernel of Edm.Kernels compiles to PTX for an H100 (sm_90) on the host, at the optimisation
// level the engine runs (EdmDevice.KernelOptimization): ILGPU's PTX backend needs no GPU. This
// catches constructs the CPU accelerator runs but the CUDA backend rejects, and checks each
// kernel's static shared memory against the 48 KiB a block may declare statically. ptxas and the
// driver are not run here (scripts/ptxas-check.sh assembles the dumped PTX with ptxas where it is
// installed; the GPU check runs it on the card).
// One reflection scan finds the kernels: implicitly grouped ones are static void methods whose
// first parameter is an Index1D (generic ones instantiated for the operators the engine uses);
// explicitly grouped ones are static void methods over ArrayViews, scalars and the engine's small
// structs, named *Kernel (the convention of every kernel family: kernel methods end in "Kernel",
// the loaded launchers drop the suffix).
public sealed class PtxCompileTests
{
    static readonly Assembly KernelAssembly = typeof(Tensor).Assembly;

    static IEnumerable<MethodInfo> StaticMethods() =>
        KernelAssembly.GetTypes().SelectMany(t => t.GetMethods(BindingFlags.Static | BindingFlags.Public | BindingFlags.NonPublic | BindingFlags.DeclaredOnly));

    static IEnumerable<MethodInfo> ImplicitMethods()
    {
        Type[] unary = [typeof(GeluOp), typeof(SiluOp), typeof(GeluTanhOp), typeof(ExpOp), typeof(ClampOp), typeof(ScaleOp), typeof(ReluOp)];
        Type[] binary = [typeof(AddOp), typeof(DivOp), typeof(GeluGradOp), typeof(SiluGradOp), typeof(GeluTanhGradOp), typeof(ReluGradOp)];
        Type[] reduce = [typeof(SumReduce), typeof(MaxReduce), typeof(SumSquaresReduce)];
        foreach (var m in StaticMethods())
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

    static bool IsKernelParameter(Type t) =>
        t.IsPrimitive || (t.IsGenericType && (t.GetGenericTypeDefinition() == typeof(ArrayView<>) || t.GetGenericTypeDefinition() == typeof(SpecializedValue<>)))
        || (t.IsValueType && !t.IsByRef && t.Namespace == "Edm.Kernels");

    // Explicitly grouped kernels generic in their accumulator (ConvImplicitGemm.cs: ITileAcc) are
    // compiled for every accumulator the assembly has (SIMT and TF32).
    static IEnumerable<MethodInfo> ExplicitMethods() => StaticMethods().Where(m =>
        m.ReturnType == typeof(void) && m.GetParameters() is { Length: > 0 } p
        && p[0].ParameterType != typeof(Index1D) && m.Name.EndsWith("Kernel") && p.All(x => IsKernelParameter(x.ParameterType)))
        .SelectMany(m => !m.IsGenericMethodDefinition ? [m]
            : KernelAssembly.GetTypes().Where(t => t.IsValueType && m.GetGenericArguments()[0].GetGenericParameterConstraints().All(c => c.IsAssignableFrom(t)))
                .Select(t => m.MakeGenericMethod(t)));

    static string Name(MethodInfo m) =>
        $"{m.DeclaringType!.Name}.{m.Name}" + (m.IsGenericMethod ? $"<{string.Join(",", m.GetGenericArguments().Select(t => t.Name))}>" : "");

    public static TheoryData<string> ImplicitKernels() => new(ImplicitMethods().Select(Name));

    public static TheoryData<string> ExplicitKernels() => new(ExplicitMethods().Select(Name));

    static string CompilePtx(MethodInfo m, bool explicitlyGrouped)
    {
        using var context = Context.Create(b => b.Cuda().EnableAlgorithms().Optimize(EdmDevice.KernelOptimization));
        var backend = new PTXBackend(context, new CudaCapabilityContext(CudaArchitecture.SM_90), CudaArchitecture.SM_90, CudaInstructionSet.ISA_80, null);
        var entry = explicitlyGrouped ? EntryPointDescription.FromExplicitlyGroupedKernel(m) : EntryPointDescription.FromImplicitlyGroupedKernel(m);
        return ((PTXCompiledKernel)backend.Compile(entry, KernelSpecialization.Empty)).PTXAssembly;
    }

    static void AssertCompiles(MethodInfo m, bool explicitlyGrouped)
    {
        string ptx = CompilePtx(m, explicitlyGrouped);
        Assert.Contains(".entry", ptx);
        // scripts/ptxas-check.sh sets EDM_PTX_DUMP to a folder and assembles every file with ptxas.
        if (Environment.GetEnvironmentVariable("EDM_PTX_DUMP") is { Length: > 0 } dump)
        {
            Directory.CreateDirectory(dump);
            File.WriteAllText(Path.Combine(dump, Regex.Replace(Name(m), @"[^A-Za-z0-9_.]", "_") + ".ptx"), ptx);
        }
        int shared = Regex.Matches(ptx, @"\.shared[^\n]*\[(\d+)\]").Sum(x => int.Parse(x.Groups[1].Value));
        Assert.InRange(shared, 0, 48 * 1024);
    }

    [Fact]
    public void The_scan_finds_the_kernel_families()
    {
        var implicitNames = ImplicitMethods().Select(Name).ToList();
        foreach (var expected in new[] { "ElementwiseKernels.UnaryKernel<GeluOp>", "ReductionKernels.PartialKernel<SumReduce>", "RandomKernels.FillKernel", "LayoutKernels.GatherKernel",
                     "PoolingKernels.Expand2xKernel", "DropoutKernels.ApplyKernel", "AttentionKernels.RowDotKernel" })
            Assert.Contains(expected, implicitNames);
        Assert.True(implicitNames.Count >= 40, $"only {implicitNames.Count} implicitly grouped kernels found");
        Assert.All(ImplicitMethods(), m => Assert.EndsWith("Kernel", m.Name));
        var explicitNames = ExplicitMethods().Select(Name).ToList();
        foreach (var expected in new[] { "GemmKernels.GemmTiledKernel", "OptimizerKernels.SumSquaresKernel", "SoftmaxKernels.ForwardKernel", "SoftmaxKernels.BackwardKernel",
                     "GroupNormKernels.ForwardKernel", "GroupNormKernels.BackwardInputKernel", "GroupNormKernels.BackwardParamsKernel",
                     "AttentionKernels.ForwardKernel", "AttentionKernels.BackwardQKernel", "AttentionKernels.BackwardKVKernel" })
            Assert.Contains(expected, explicitNames);
    }

    [Theory]
    [MemberData(nameof(ImplicitKernels))]
    public void Implicitly_grouped_kernel_compiles_to_ptx(string name) => AssertCompiles(ImplicitMethods().Single(k => Name(k) == name), explicitlyGrouped: false);

    [Theory]
    [MemberData(nameof(ExplicitKernels))]
    public void Explicitly_grouped_kernel_compiles_to_ptx_within_static_shared_memory(string name) =>
        AssertCompiles(ExplicitMethods().Single(k => Name(k) == name), explicitlyGrouped: true);
}

// BenchmarkDotNet classes for people profiling one kernel (`bdn --filter '*Gemm*'`): BDN's
// statistics (mean, error, standard deviation over many iterations) and [MemoryDiagnoser]'s managed
// allocations per call, on the CPU accelerator (C# fast paths), in process (BdnCommand.cs). Shapes
// follow the `kernels` rows where one exists:
//   GemmBenchmarks        C = A B, 512^3                                    (GemmBench.cs)
//   Conv2dBenchmarks      3x3, B8 64->64 32x32: forward, backward (data + weight + bias gradients)
//   GroupNormBenchmarks   (4, 128, 32, 32), 32 groups: forward, forward + backward
//   ActivationBenchmarks  GELU and SiLU over 1M floats
//   AdamBenchmarks        one fused Adam step over 1M parameters
//   TinyStepBenchmarks    one training step of ddpmpp-tiny at 16x16, batch 32 (step_ddpmpp_tiny)
// Every benchmark synchronises the device, so a call's time is the kernel's, not its launch's.
// The `kernels` table stays the figure of record (a baseline in the same run, napkin math); these
// are for a profiler's loop.
using BenchmarkDotNet.Attributes;
using Edm.Bench.Perf;
using Edm.Kernels;
using KOps = Edm.Kernels.Ops;

namespace Edm.Bench.Bdn;

/// <summary>Opens the CPU device for a benchmark class and releases what the class registered.</summary>
public abstract class CpuBenchmark
{
    readonly List<IDisposable> _owned = [];

    /// <summary>The CPU accelerator (opened in <see cref="Setup"/>).</summary>
    protected EdmDevice Device { get; private set; } = null!;

    /// <summary>Opens the device and calls <see cref="Build"/>.</summary>
    [GlobalSetup]
    public void Setup()
    {
        Device = EdmDevice.Create("cpu");
        Build();
    }

    /// <summary>Allocates the class's inputs (register them with <see cref="Own{T}"/>).</summary>
    protected abstract void Build();

    /// <summary>Registers <paramref name="item"/> for disposal in <see cref="Cleanup"/>.</summary>
    protected T Own<T>(T item) where T : IDisposable
    {
        _owned.Add(item);
        return item;
    }

    /// <summary>A tensor of normal random values.</summary>
    protected Tensor Random(ulong seed, params int[] shape)
    {
        var t = Own(Tensor.Empty(Device, shape));
        KOps.Normal(t, seed);
        return t;
    }

    /// <summary>Releases the inputs, then the device.</summary>
    [GlobalCleanup]
    public void Cleanup()
    {
        foreach (var d in _owned) d.Dispose();
        _owned.Clear();
        Device.Dispose();
    }
}

/// <summary>SGEMM 512^3.</summary>
[MemoryDiagnoser]
public class GemmBenchmarks : CpuBenchmark
{
    Tensor _a = null!, _b = null!, _c = null!;   // (512, 512) each

    /// <inheritdoc/>
    protected override void Build()
    {
        _a = Random(1, 512, 512);
        _b = Random(2, 512, 512);
        _c = Own(Tensor.Empty(Device, 512, 512));
    }

    /// <summary>C = A B.</summary>
    [Benchmark]
    public void Gemm512()
    {
        KOps.MatMulInto(_a, _b, _c);
        Device.Synchronize();
    }
}

/// <summary>Conv2d 3x3, B8 64->64 at 32x32.</summary>
[MemoryDiagnoser]
public class Conv2dBenchmarks : CpuBenchmark
{
    Tensor _x = null!, _w = null!, _bias = null!, _dy = null!, _dw = null!, _db = null!;

    /// <inheritdoc/>
    protected override void Build()
    {
        _x = Random(1, 8, 64, 32, 32);           // (B, Cin, H, W)
        _w = Random(2, 64, 64, 3, 3);            // (Cout, Cin, 3, 3)
        _bias = Random(3, 64);
        _dy = Random(4, 8, 64, 32, 32);          // (B, Cout, H, W)
        _dw = Own(Tensor.Empty(Device, 64, 64, 3, 3));
        _db = Own(Tensor.Empty(Device, 64));
    }

    /// <summary>y = conv(x, w) + bias.</summary>
    [Benchmark]
    public void Conv2dForward()
    {
        KOps.Conv2d(_x, _w, _bias).Dispose();
        Device.Synchronize();
    }

    /// <summary>dx, dw and db from dy (no forward).</summary>
    [Benchmark]
    public void Conv2dBackward()
    {
        KOps.Conv2dBackwardData(_dy, _w).Dispose();
        KOps.Conv2dBackwardWeightInto(_x, _dy, _dw, accumulate: false);
        KOps.Conv2dBackwardBiasInto(_dy, _db, accumulate: false);
        Device.Synchronize();
    }
}

/// <summary>Group norm over (4, 128, 32, 32) with 32 groups.</summary>
[MemoryDiagnoser]
public class GroupNormBenchmarks : CpuBenchmark
{
    Tensor _x = null!, _gy = null!, _w = null!, _b = null!;

    /// <inheritdoc/>
    protected override void Build()
    {
        _x = Random(1, 4, 128, 32, 32);
        _gy = Random(2, 4, 128, 32, 32);
        _w = Random(3, 128);
        _b = Random(4, 128);
    }

    /// <summary>Forward.</summary>
    [Benchmark]
    public void GroupNormForward()
    {
        var o = KOps.GroupNormForward(_x, 32, _w, _b, 1e-5f);
        o.Y.Dispose(); o.Mean.Dispose(); o.Rstd.Dispose();
        Device.Synchronize();
    }

    /// <summary>Forward, then the input, weight and bias gradients.</summary>
    [Benchmark]
    public void GroupNormForwardBackward()
    {
        var o = KOps.GroupNormForward(_x, 32, _w, _b, 1e-5f);
        var g = KOps.GroupNormBackward(_x, _gy, o.Mean, o.Rstd, 32, _w);
        o.Y.Dispose(); o.Mean.Dispose(); o.Rstd.Dispose(); g.Dx.Dispose(); g.DWeight.Dispose(); g.DBias.Dispose();
        Device.Synchronize();
    }
}

/// <summary>GELU and SiLU over 1M floats.</summary>
[MemoryDiagnoser]
public class ActivationBenchmarks : CpuBenchmark
{
    Tensor _x = null!;                           // (1048576)

    /// <inheritdoc/>
    protected override void Build() => _x = Random(1, 1 << 20);

    /// <summary>GELU (erf form).</summary>
    [Benchmark]
    public void Gelu()
    {
        KOps.Gelu(_x).Dispose();
        Device.Synchronize();
    }

    /// <summary>SiLU.</summary>
    [Benchmark]
    public void Silu()
    {
        KOps.Silu(_x).Dispose();
        Device.Synchronize();
    }
}

/// <summary>One fused Adam step over 1M parameters.</summary>
[MemoryDiagnoser]
public class AdamBenchmarks : CpuBenchmark
{
    Tensor _p = null!, _g = null!, _m = null!, _v = null!;
    long _step;

    /// <inheritdoc/>
    protected override void Build()
    {
        _p = Random(1, 1 << 20);
        _g = Random(2, 1 << 20);
        _m = Own(Tensor.Zeros(Device, 1 << 20));
        _v = Own(Tensor.Zeros(Device, 1 << 20));
    }

    /// <summary>p, m, v updated in place from g.</summary>
    [Benchmark]
    public void Adam1M()
    {
        KOps.AdamStep(_p, _g, _m, _v, 1e-4f, 0.9f, 0.999f, 1e-8f, ++_step);
        Device.Synchronize();
    }
}

/// <summary>The step_ddpmpp_tiny row: forward + EDM loss + backward + Adam of ddpmpp-tiny, 16x16, batch 32.</summary>
[MemoryDiagnoser]
public class TinyStepBenchmarks : CpuBenchmark
{
    TinyTrainStep _step = null!;

    /// <inheritdoc/>
    protected override void Build() => _step = Own(new TinyTrainStep(Device, 16, TinyStepBench.StepBatch));

    /// <summary>One training step.</summary>
    [Benchmark]
    public void TrainStep16()
    {
        _step.Run();
        Device.Synchronize();
    }
}

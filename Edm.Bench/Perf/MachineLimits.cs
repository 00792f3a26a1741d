// The machine's limits, measured in the run that uses them, so a kernel's figure can be read as a
// fraction of what this CPU can do (machines differ from one session to the next):
//   peak FLOP/s: a register-resident loop of independent fused multiply-adds (12 accumulators, the
//     widest vector the process uses: Vector512 with AVX-512F, else Vector256 with AVX2+FMA, else
//     Vector128), on every core at once; 2 FLOPs per lane per FMA. Without FMA a multiply and an
//     add count 2 FLOPs as well.
//   bandwidth: a parallel streaming copy of 2 x 256 MiB (bytes read + written per second).
// Both are medians of 5 timed runs after a warm-up. The three FMA loops are written out per width:
// .NET 10 has no public generic vector interface to write them once (ISimdVector is internal).
using System.Diagnostics;
using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;
using Edm.Kernels;

namespace Edm.Bench.Perf;

/// <summary>Peak FMA throughput and memory bandwidth of this machine, measured now.</summary>
public sealed record MachineLimits(double PeakGflops, double BandwidthGbps, string Isa, int Cores)
{
    /// <summary>Measures both (about a second).</summary>
    public static MachineLimits Measure() => new(MeasurePeakGflops(), MeasureBandwidthGbps(), CpuIsa.Describe(), Environment.ProcessorCount);

    static double Median(Func<double> sample)
    {
        sample();
        var xs = Enumerable.Range(0, 5).Select(_ => sample()).Order().ToArray();
        return xs[xs.Length / 2];
    }

    /// <summary>GFLOP/s of independent FMAs on every core.</summary>
    public static double MeasurePeakGflops()
    {
        const int iters = 2_000_000;
        int cores = Environment.ProcessorCount, lanes = CpuIsa.MaxFloatLanes;
        return Median(() =>
        {
            var sw = Stopwatch.StartNew();
            var sink = new float[cores];
            Parallel.For(0, cores, new ParallelOptions { MaxDegreeOfParallelism = cores }, c => sink[c] = lanes == 16 ? Fma512(iters) : Vector256.IsHardwareAccelerated ? Fma256(iters) : Fma128(iters));
            double s = sw.Elapsed.TotalSeconds;
            GC.KeepAlive(sink);
            // Per iteration: 12 accumulators x lanes x 2 FLOPs, on each core.
            return 12.0 * (lanes == 16 ? 16 : Vector256.IsHardwareAccelerated ? 8 : 4) * 2 * iters * cores / s / 1e9;
        });
    }

    [MethodImpl(MethodImplOptions.NoInlining | MethodImplOptions.AggressiveOptimization)]
    static float Fma512(int iters)
    {
        var a = Vector512.Create(0.999f); var b = Vector512.Create(1e-7f);
        Vector512<float> c0 = a, c1 = a, c2 = a, c3 = a, c4 = a, c5 = a, c6 = a, c7 = a, c8 = a, c9 = a, c10 = a, c11 = a;
        for (int i = 0; i < iters; i++)
        {
            c0 = Vector512.FusedMultiplyAdd(c0, a, b); c1 = Vector512.FusedMultiplyAdd(c1, a, b); c2 = Vector512.FusedMultiplyAdd(c2, a, b);
            c3 = Vector512.FusedMultiplyAdd(c3, a, b); c4 = Vector512.FusedMultiplyAdd(c4, a, b); c5 = Vector512.FusedMultiplyAdd(c5, a, b);
            c6 = Vector512.FusedMultiplyAdd(c6, a, b); c7 = Vector512.FusedMultiplyAdd(c7, a, b); c8 = Vector512.FusedMultiplyAdd(c8, a, b);
            c9 = Vector512.FusedMultiplyAdd(c9, a, b); c10 = Vector512.FusedMultiplyAdd(c10, a, b); c11 = Vector512.FusedMultiplyAdd(c11, a, b);
        }
        return Vector512.Sum(c0 + c1 + c2 + c3 + c4 + c5 + c6 + c7 + c8 + c9 + c10 + c11);
    }

    [MethodImpl(MethodImplOptions.NoInlining | MethodImplOptions.AggressiveOptimization)]
    static float Fma256(int iters)
    {
        var a = Vector256.Create(0.999f); var b = Vector256.Create(1e-7f);
        Vector256<float> c0 = a, c1 = a, c2 = a, c3 = a, c4 = a, c5 = a, c6 = a, c7 = a, c8 = a, c9 = a, c10 = a, c11 = a;
        for (int i = 0; i < iters; i++)
        {
            c0 = Vector256.FusedMultiplyAdd(c0, a, b); c1 = Vector256.FusedMultiplyAdd(c1, a, b); c2 = Vector256.FusedMultiplyAdd(c2, a, b);
            c3 = Vector256.FusedMultiplyAdd(c3, a, b); c4 = Vector256.FusedMultiplyAdd(c4, a, b); c5 = Vector256.FusedMultiplyAdd(c5, a, b);
            c6 = Vector256.FusedMultiplyAdd(c6, a, b); c7 = Vector256.FusedMultiplyAdd(c7, a, b); c8 = Vector256.FusedMultiplyAdd(c8, a, b);
            c9 = Vector256.FusedMultiplyAdd(c9, a, b); c10 = Vector256.FusedMultiplyAdd(c10, a, b); c11 = Vector256.FusedMultiplyAdd(c11, a, b);
        }
        return Vector256.Sum(c0 + c1 + c2 + c3 + c4 + c5 + c6 + c7 + c8 + c9 + c10 + c11);
    }

    [MethodImpl(MethodImplOptions.NoInlining | MethodImplOptions.AggressiveOptimization)]
    static float Fma128(int iters)
    {
        var a = Vector128.Create(0.999f); var b = Vector128.Create(1e-7f);
        Vector128<float> c0 = a, c1 = a, c2 = a, c3 = a, c4 = a, c5 = a, c6 = a, c7 = a, c8 = a, c9 = a, c10 = a, c11 = a;
        for (int i = 0; i < iters; i++)
        {
            c0 = Vector128.FusedMultiplyAdd(c0, a, b); c1 = Vector128.FusedMultiplyAdd(c1, a, b); c2 = Vector128.FusedMultiplyAdd(c2, a, b);
            c3 = Vector128.FusedMultiplyAdd(c3, a, b); c4 = Vector128.FusedMultiplyAdd(c4, a, b); c5 = Vector128.FusedMultiplyAdd(c5, a, b);
            c6 = Vector128.FusedMultiplyAdd(c6, a, b); c7 = Vector128.FusedMultiplyAdd(c7, a, b); c8 = Vector128.FusedMultiplyAdd(c8, a, b);
            c9 = Vector128.FusedMultiplyAdd(c9, a, b); c10 = Vector128.FusedMultiplyAdd(c10, a, b); c11 = Vector128.FusedMultiplyAdd(c11, a, b);
        }
        return Vector128.Sum(c0 + c1 + c2 + c3 + c4 + c5 + c6 + c7 + c8 + c9 + c10 + c11);
    }

    /// <summary>GB/s of a parallel streaming copy (bytes read plus bytes written).</summary>
    public static unsafe double MeasureBandwidthGbps()
    {
        const int n = 64 << 20;  // floats: 256 MiB per array
        var src = GC.AllocateUninitializedArray<float>(n);
        var dst = GC.AllocateUninitializedArray<float>(n);
        src.AsSpan().Fill(1f);
        dst.AsSpan().Clear();
        int cores = Environment.ProcessorCount;
        return Median(() =>
        {
            var sw = Stopwatch.StartNew();
            Parallel.For(0, cores, c =>
            {
                int start = (int)((long)n * c / cores), end = (int)((long)n * (c + 1) / cores);
                src.AsSpan(start, end - start).CopyTo(dst.AsSpan(start, end - start));
            });
            return 2.0 * n * sizeof(float) / sw.Elapsed.TotalSeconds / 1e9;
        });
    }
}

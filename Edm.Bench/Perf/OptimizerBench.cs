// `kernels` rows of the optimizer family: the fused Adam step over a DDPM++-sized parameter
// buffer (56M; 4M with --quick on the CPU). Bytes per step: p r/w, g r, m r/w, v r/w = 28 per
// parameter. Baselines: on a GPU a device-to-device copy moving the same bytes (14 per parameter
// read + 14 written), the bandwidth ceiling; on the CPU a plain C# Parallel.For of the same update
// over managed arrays.
using Edm.Kernels;

namespace Edm.Bench.Perf;

/// <summary>Adam bench cases.</summary>
public sealed class OptimizerBench : IKernelBench
{
    /// <summary>Bytes moved per parameter by one Adam step.</summary>
    public const int AdamBytesPerParam = 28;

    /// <inheritdoc/>
    public IReadOnlyList<string> Ops { get; } = ["adam"];

    /// <inheritdoc/>
    public IEnumerable<BenchCase> Cases(EdmDevice device, string op, bool quick)
    {
        if (op != "adam") yield break;
        // 56M: the DDPM++ parameter count (docs/formulas.md section 7).
        int n = device.IsCpu ? (quick ? 4_000_000 : 16_000_000) : 56_000_000;
        yield return AdamCase(device, n);
    }

    static BenchCase AdamCase(EdmDevice device, int n)
    {
        var pattern = new float[n];
        for (int i = 0; i < n; i++) pattern[i] = 0.5f - (i % 1013) / 1013f;  // nonzero, no denormals
        var p = Tensor.FromArray(device, pattern, n);
        var g = Tensor.FromArray(device, pattern, n);
        var m = Tensor.Zeros(device, n);
        var v = Tensor.Zeros(device, n);
        long step = 0;
        void Run() => Kernels.Ops.AdamStep(p, g, m, v, 1e-4f, 0.9f, 0.999f, 1e-8f, ++step);
        double bytes = (double)n * AdamBytesPerParam;

        if (!device.IsCpu)
        {
            var (copy, buffers) = Baselines.DeviceCopy(device, bytes);
            return new BenchCase("adam", $"({n})", bytes, 10.0 * n, Run, Baselines.Copy, copy, new Baselines.Disposables(p, g, m, v, buffers));
        }
        // The same update as a plain C# Parallel.For over managed arrays.
        float[] bp = (float[])pattern.Clone(), bg = pattern, bm = new float[n], bv = new float[n];
        long bstep = 0;
        void Baseline()
        {
            var a = new AdamArgs(1e-4f, 0.9f, 0.999f, 1e-8f, ++bstep);
            int chunks = 4 * Environment.ProcessorCount;
            Parallel.For(0, chunks, c =>
            {
                int end = (int)((long)n * (c + 1) / chunks);
                for (int i = (int)((long)n * c / chunks); i < end; i++) a.Update(ref bp[i], ref bm[i], ref bv[i], bg[i]);
            });
        }
        return new BenchCase("adam", $"({n})", bytes, 10.0 * n, Run, Baselines.CSharp, Baseline, new Baselines.Disposables(p, g, m, v));
    }
}

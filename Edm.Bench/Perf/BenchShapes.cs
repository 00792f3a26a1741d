// Shapes of the NN part-B bench cases (group norm, attention, softmax, dropout, resampling), shared
// by their IKernelBench files and mirrored by bench/torch_baseline.py (same op names and shape
// strings, so that `compare` can join the two JSON files). --quick divides the batch (or B*heads)
// by 16 on every device; the row's Note says so.
namespace Edm.Bench.Perf;

/// <summary>Batch sizes and notes for the NN bench cases.</summary>
public static class BenchShapes
{
    /// <summary>Full batch (B, or B*heads for attention).</summary>
    public const int Batch = 64;
    /// <summary>Divisor applied by --quick.</summary>
    public const int QuickDivisor = 16;

    /// <summary>The batch for this run.</summary>
    public static int BatchFor(bool quick) => quick ? Batch / QuickDivisor : Batch;

    /// <summary>The row note for this run (null for full shapes).</summary>
    public static string? Note(bool quick) => quick ? $"--quick: batch {Batch} -> {Batch / QuickDivisor}" : null;

    /// <summary>Parallel.For over [0, n) items in 4 x cores chunks: the plain C# baselines' loop.</summary>
    public static void Par(int n, Action<int, int> body)
    {
        int chunks = Math.Min(n, 4 * Environment.ProcessorCount), size = (n + chunks - 1) / chunks;
        Parallel.For(0, chunks, c => { int s = c * size, e = Math.Min(n, s + size); if (s < e) body(s, e); });
    }
}

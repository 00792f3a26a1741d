// The CPU fast paths' parallel loops, in one place: chunks of a flat range (CpuParallel.For) and
// chunks of whole rows (RowChunks.Run). Work is split into contiguous index ranges; a reduction
// that combines per-chunk partials must fix its partition by index (not by which worker ran what),
// so that its result does not depend on scheduling.
namespace Edm.Kernels;

/// <summary>Splits CPU fast-path work into a few chunks run with Parallel.For.</summary>
public static class CpuParallel
{
    /// <summary>Smallest chunk worth a task.</summary>
    public const int MinChunk = 1 << 15;

    /// <summary>Runs body(start, count) over [0, n) in at most 4 x cores chunks.</summary>
    public static void For(int n, Action<int, int> body, int minChunk = MinChunk)
    {
        if (n <= 0) return;
        int chunks = Math.Clamp(n / Math.Max(1, minChunk), 1, 4 * Environment.ProcessorCount);
        if (chunks == 1) { body(0, n); return; }
        int size = (n + chunks - 1) / chunks;
        Parallel.For(0, chunks, c =>
        {
            int start = c * size;
            int count = Math.Min(size, n - start);
            if (count > 0) body(start, count);
        });
    }
}

/// <summary>Row loops of the NN CPU fast paths, in parallel chunks of whole rows.</summary>
internal static class RowChunks
{
    /// <summary>
    /// Runs body(r0, r1) over [0, rows) in contiguous chunks (CpuParallel.For) of at least ~32K
    /// elements, so that small tensors run on the calling thread.
    /// </summary>
    public static void Run(int rows, int cols, Action<int, int> body) =>
        CpuParallel.For(rows, (start, count) => body(start, start + count), minChunk: Math.Max(1, CpuParallel.MinChunk / Math.Max(1, cols)));
}

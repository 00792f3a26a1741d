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

/// <summary>
/// Reductions on the CPU fast paths that repeat bit for bit whatever the thread count and the
/// scheduling: the work is cut into chunks that depend on its size alone (never on the number of
/// cores or on which worker ran what), each chunk's partial result is stored at its index, and the
/// partials are combined in index order by the caller.
/// </summary>
public static class DeterministicChunks
{
    /// <summary>Most chunks a reduction is cut into (a constant: the partition must not follow the core count).</summary>
    public const int MaxChunks = 16;

    /// <summary>The chunk count for <paramref name="n"/> items of at least <paramref name="minChunk"/> each: a function of n alone.</summary>
    public static int Count(int n, int minChunk = CpuParallel.MinChunk) => Math.Clamp(n / Math.Max(1, minChunk), 1, Math.Max(1, Math.Min(MaxChunks, n)));

    /// <summary>Chunk c's range [start, start + count) when [0, n) is cut into <paramref name="chunks"/> near-equal chunks.</summary>
    public static (int Start, int Count) Range(int n, int chunks, int c)
    {
        int start = (int)((long)n * c / chunks), end = (int)((long)n * (c + 1) / chunks);
        return (start, end - start);
    }

    /// <summary>
    /// partial(start, count) for each of <paramref name="chunks"/> fixed chunks of [0, n), run in
    /// parallel; the results in chunk order.
    /// </summary>
    public static T[] Map<T>(int n, int chunks, Func<int, int, T> partial)
    {
        var results = new T[chunks];
        if (chunks == 1) { results[0] = partial(0, n); return results; }
        Parallel.For(0, chunks, c =>
        {
            var (start, count) = Range(n, chunks, c);
            results[c] = partial(start, count);
        });
        return results;
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

// The order in which training visits a dataset: epoch e is a permutation of 0..Count-1 that depends
// only on (seed, e); batches are read from it in order and run on into the next epoch. The state is
// (epoch, position within the epoch), so a resumed run that restores it draws exactly the indices
// the uninterrupted run would have drawn. (NVlabs/edm uses a windowed shuffle over an infinite
// stream; a plain per-epoch permutation gives the same uniform coverage and an exact resume point.)
namespace Edm.Model.Data;

/// <summary>Where a <see cref="DataOrderSampler"/> stands: the epoch, and the next position in its permutation.</summary>
public readonly record struct SamplerState(long Epoch, int Position);

/// <summary>Deterministic epoch-wise shuffled dataset order with a saveable state.</summary>
public sealed class DataOrderSampler
{
    int[] _perm;

    /// <summary>Dataset size.</summary>
    public int Count { get; }
    /// <summary>Seed of every epoch's permutation.</summary>
    public ulong Seed { get; }
    /// <summary>Current epoch (0-based).</summary>
    public long Epoch { get; private set; }
    /// <summary>Next position in the current epoch's permutation, in [0, Count).</summary>
    public int Position { get; private set; }
    /// <summary>The state to save with a checkpoint.</summary>
    public SamplerState State => new(Epoch, Position);

    /// <summary>A sampler over <paramref name="count"/> items, starting at epoch 0 or at a saved state.</summary>
    public DataOrderSampler(int count, ulong seed, SamplerState? state = null)
    {
        if (count < 1) throw new ArgumentException($"DataOrderSampler: count must be >= 1, got {count}");
        Count = count;
        Seed = seed;
        _perm = Permutation(count, seed, 0);
        if (state is { } s) Restore(s);
    }

    /// <summary>Moves to a saved state (the next <see cref="Next"/> continues exactly from there).</summary>
    public void Restore(SamplerState state)
    {
        if (state.Epoch < 0 || state.Position < 0 || state.Position >= Count)
            throw new ArgumentException($"DataOrderSampler: state (epoch {state.Epoch}, position {state.Position}) is invalid for {Count} items; need epoch >= 0 and 0 <= position < {Count}");
        if (state.Epoch != Epoch) _perm = Permutation(Count, Seed, state.Epoch);
        Epoch = state.Epoch;
        Position = state.Position;
    }

    /// <summary>The next <paramref name="batchSize"/> indices, continuing into the next epoch when this one runs out.</summary>
    public int[] Next(int batchSize)
    {
        if (batchSize < 1) throw new ArgumentException($"DataOrderSampler.Next: batch size must be >= 1, got {batchSize}");
        var batch = new int[batchSize];
        for (int b = 0; b < batchSize; b++)
        {
            batch[b] = _perm[Position++];
            if (Position == Count)
            {
                Epoch++;
                Position = 0;
                _perm = Permutation(Count, Seed, Epoch);
            }
        }
        return batch;
    }

    /// <summary>
    /// The permutation of epoch <paramref name="epoch"/>: a Fisher-Yates shuffle driven by SplitMix64
    /// keyed on (seed, epoch), with unbiased bounded draws (Lemire's multiply-and-reject).
    /// </summary>
    public static int[] Permutation(int count, ulong seed, long epoch)
    {
        var p = new int[count];
        for (int i = 0; i < count; i++) p[i] = i;
        ulong state = Mix(seed ^ Mix((ulong)epoch + 0x9E3779B97F4A7C15UL));
        for (int i = count - 1; i > 0; i--)
        {
            int j = Bounded(ref state, (uint)(i + 1));
            (p[i], p[j]) = (p[j], p[i]);
        }
        return p;
    }

    // SplitMix64 (Steele, Lea, Flood 2014): one step of the generator / its output mix.
    static ulong Next64(ref ulong state) => Mix(state += 0x9E3779B97F4A7C15UL);

    static ulong Mix(ulong z)
    {
        z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9UL;
        z = (z ^ (z >> 27)) * 0x94D049BB133111EBUL;
        return z ^ (z >> 31);
    }

    // Uniform integer in [0, n) without modulo bias (Lemire 2019).
    static int Bounded(ref ulong state, uint n)
    {
        while (true)
        {
            ulong m = (ulong)(uint)(Next64(ref state) >> 32) * n;
            uint low = (uint)m;
            if (low >= n || low >= (0u - n) % n) return (int)(m >> 32); // reject the (2^32 mod n) biased values
        }
    }
}

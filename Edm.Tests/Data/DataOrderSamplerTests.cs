using Edm.Model.Data;
using Xunit;

namespace Edm.Tests.Data;

public sealed class DataOrderSamplerTests
{
    [Fact]
    public void Each_epoch_is_a_permutation_that_depends_on_seed_and_epoch()
    {
        var p0 = DataOrderSampler.Permutation(1000, 42, 0);
        Assert.Equal(Enumerable.Range(0, 1000), p0.Order());
        Assert.Equal(p0, DataOrderSampler.Permutation(1000, 42, 0));      // deterministic
        Assert.NotEqual(p0, DataOrderSampler.Permutation(1000, 42, 1));   // new order each epoch
        Assert.NotEqual(p0, DataOrderSampler.Permutation(1000, 43, 0));   // and per seed
        Assert.NotEqual(Enumerable.Range(0, 1000), p0);                   // actually shuffled
        Assert.Equal(new[] { 0 }, DataOrderSampler.Permutation(1, 7, 3));
    }

    [Fact]
    public void Shuffle_is_roughly_uniform()
    {
        // Position of item 0 over 4000 epochs of 4 items: each of the 4 positions ~1000 times
        // (binomial sd ~27; 150 is > 5 sd, so a correct shuffle essentially never fails).
        var counts = new int[4];
        for (int e = 0; e < 4000; e++) counts[Array.IndexOf(DataOrderSampler.Permutation(4, 9, e), 0)]++;
        Assert.All(counts, c => Assert.InRange(c, 850, 1150));
    }

    [Fact]
    public void Batches_run_across_epochs_covering_each_epoch_once()
    {
        var s = new DataOrderSampler(10, 5);
        var seen = new List<int>();
        for (int i = 0; i < 7; i++) seen.AddRange(s.Next(3)); // 21 = two epochs + 1
        Assert.Equal(DataOrderSampler.Permutation(10, 5, 0), seen.Take(10));
        Assert.Equal(DataOrderSampler.Permutation(10, 5, 1), seen.Skip(10).Take(10));
        Assert.Equal(DataOrderSampler.Permutation(10, 5, 2)[0], seen[20]);
        Assert.Equal(new SamplerState(2, 1), s.State);
    }

    [Fact]
    public void Restored_state_resumes_exactly()
    {
        var a = new DataOrderSampler(37, 123);
        for (int i = 0; i < 11; i++) a.Next(8);
        var saved = a.State;
        var expected = Enumerable.Range(0, 20).SelectMany(_ => a.Next(8)).ToArray();

        var b = new DataOrderSampler(37, 123, saved);
        Assert.Equal(expected, Enumerable.Range(0, 20).SelectMany(_ => b.Next(8)).ToArray());
        var c = new DataOrderSampler(37, 123);
        c.Next(5);
        c.Restore(saved);
        Assert.Equal(expected, Enumerable.Range(0, 20).SelectMany(_ => c.Next(8)).ToArray());
    }

    [Fact]
    public void Invalid_arguments_are_rejected()
    {
        Assert.Throws<ArgumentException>(() => new DataOrderSampler(0, 1));
        Assert.Throws<ArgumentException>(() => new DataOrderSampler(5, 1, new SamplerState(0, 5)));
        Assert.Throws<ArgumentException>(() => new DataOrderSampler(5, 1, new SamplerState(-1, 0)));
        Assert.Throws<ArgumentException>(() => new DataOrderSampler(5, 1).Next(0));
    }
}

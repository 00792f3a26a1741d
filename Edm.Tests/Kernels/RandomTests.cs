using Edm.Verification;
using Edm.Kernels;
using Xunit;

namespace Edm.Tests.Kernels;

// Philox4x32-10 and the normal fills against float64 references (the same checks `verify` runs), over more shapes, on both
// the CPU fast path and the ILGPU kernels (CpuFastPaths = false).
[Collection("cpu-device")]
public sealed class RandomTests(CpuDevice cpu) : BothPathsTests(cpu), IClassFixture<CpuDevice>
{
    [Fact]
    public void Philox_matches_published_known_answers()
    {
        // Random123 known-answer vectors for philox4x32-10.
        Assert.Equal((0x6627e8d5u, 0xe169c58du, 0xbc57ac4cu, 0x9b00dbd8u), Philox.Block(0, 0, 0, 0, 0, 0));
        Assert.Equal((0x408f276du, 0x41c83b0eu, 0xa20bc7c6u, 0x6d5451fdu),
            Philox.Block(0xffffffff, 0xffffffff, 0xffffffff, 0xffffffff, 0xffffffff, 0xffffffff));
        Assert.Equal((0xd16cfe09u, 0x94fdccebu, 0x5001e420u, 0x24126ea1u),
            Philox.Block(0x243f6a88, 0x85a308d3, 0x13198a2e, 0x03707344, 0xa4093822, 0x299f31d0));
    }

    [Fact]
    public void Rng_values_depend_only_on_seed_stream_and_index()
    {
        float[] Fill(int n, bool fast, bool normal)
        {
            _d.CpuFastPaths = fast;
            try
            {
                using var t = Tensor.Empty(_d, n);
                if (normal) Ops.Normal(t, 42, 3); else Ops.Uniform(t, 42, 3);
                return t.ToArray();
            }
            finally { _d.CpuFastPaths = true; }
        }
        foreach (bool normal in new[] { true, false })
        {
            var small = Fill(10, true, normal);
            var big = Fill(70001, true, normal);
            var bigKernel = Fill(70001, false, normal);
            Assert.Equal(small, big.Take(10).ToArray());
            // Kernel and C# path evaluate the same function; allow 1 ulp-level differences from math intrinsics.
            for (int i = 0; i < big.Length; i += 97) Assert.True(Math.Abs(big[i] - bigKernel[i]) <= 1e-5f * (1 + Math.Abs(big[i])), $"index {i}");
            var other = Fill(10, true, normal);
            Assert.Equal(small, other);
        }
        using var a = Tensor.Empty(_d, 1000);
        using var b = Tensor.Empty(_d, 1000);
        Ops.Normal(a, 42, 3); Ops.Normal(b, 43, 3);
        Assert.NotEqual(a.ToArray(), b.ToArray());
    }

    [Fact]
    public void Rng_moments_within_statistical_bounds() => BothPaths(d =>
    {
        Pass(ElementwiseVerify.RandomMoments(d, normal: true, n: 1 << 18));
        Pass(ElementwiseVerify.RandomMoments(d, normal: false, n: 1 << 18));
    });

    [Fact]
    public void Normal_per_sample_is_independent_of_batch() => BothPaths(d =>
    {
        ulong[] seeds = [5, 9, 11, 2, 0, 77, 1234567890123];
        using var batch = Tensor.Empty(d, 7, 3, 5);
        Ops.NormalPerSample(batch, seeds, 4);
        var all = batch.ToArray();
        for (int b = 0; b < seeds.Length; b++)
        {
            using var one = Tensor.Empty(d, 1, 3, 5);
            Ops.NormalPerSample(one, [seeds[b]], 4);
            Assert.Equal(all.Skip(b * 15).Take(15).ToArray(), one.ToArray());
        }
        Assert.Throws<ArgumentException>(() => Ops.NormalPerSample(batch, [1, 2]));
    });
}

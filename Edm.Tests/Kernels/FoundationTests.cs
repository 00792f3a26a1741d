using Edm.Verification;
using Edm.Kernels;
using Xunit;

namespace Edm.Tests.Kernels;

// The foundation kernels against float64 references (the same checks `verify` runs), over more
// shapes, on both the CPU fast path and the ILGPU kernels (CpuFastPaths = false).
[Collection("cpu-device")]
public sealed class FoundationTests(CpuDevice cpu) : IClassFixture<CpuDevice>
{
    readonly EdmDevice _d = cpu.Device;

    static void Pass(VerifyRow r) => Assert.True(r.Passed, $"{r.Name} {r.Shapes}: max abs {r.MaxAbsError:E3} > tol {r.Tolerance:E1} {r.Note}");

    void BothPaths(Action<EdmDevice> check)
    {
        foreach (bool fast in new[] { true, false })
        {
            _d.CpuFastPaths = fast;
            try { check(_d); }
            finally { _d.CpuFastPaths = true; }
        }
    }

    public static TheoryData<int[], int[]> BroadcastShapes => new()
    {
        { [1], [1] },
        { [7], [7] },
        { [3, 5, 7], [3, 5, 7] },
        { [2, 3, 17, 9], [3, 1, 1] },
        { [4, 1], [1, 6] },
        { [1, 1, 1, 5], [3, 2, 4, 1] },
        { [5], [2, 3, 5] },
        { [2, 1, 3, 1, 2, 3], [1, 4, 3, 1, 1, 3] },
    };

    [Theory, MemberData(nameof(BroadcastShapes))]
    public void Binary_ops_broadcast_like_numpy(int[] sa, int[] sb) => BothPaths(d =>
    {
        foreach (var op in ElementwiseVerify.BinaryOps)
        {
            Pass(ElementwiseVerify.Binary(d, op, sa, sb));
            Pass(ElementwiseVerify.Binary(d, op, sb, sa));
        }
    });

    [Theory]
    [InlineData(1)]
    [InlineData(31)]
    [InlineData(4099)]
    public void Unary_ops_and_activations_match_float64(int n) => BothPaths(d =>
    {
        foreach (var op in ElementwiseVerify.UnaryOps) Pass(ElementwiseVerify.Unary(d, op, [n]));
        foreach (var op in ElementwiseVerify.GradOps) Pass(ElementwiseVerify.Grad(d, op, [n, 2]));
    });

    [Fact]
    public void Where_and_axpy_match_float64() => BothPaths(d =>
    {
        Pass(ElementwiseVerify.Where(d, [4, 1, 9], [4, 7, 9], [7, 1]));
        Pass(ElementwiseVerify.Where(d, [1], [3, 2], [2]));
        Pass(ElementwiseVerify.Axpy(d, [1]));
        Pass(ElementwiseVerify.Axpy(d, [3, 333]));
    });

    public static TheoryData<int[], int[]> ReduceCases => new()
    {
        { [1], [] },
        { [1], [0] },
        { [7], [0] },
        { [3, 5], [0] },
        { [3, 5], [1] },
        { [3, 5], [0, 1] },
        { [2, 3, 4, 5], [0, 2, 3] }, // per-channel (bias gradient layout)
        { [2, 3, 4, 5], [1] },
        { [2, 3, 4, 5], [-1] },
        { [2, 3, 4, 5], [1, 3] },
        { [3, 1, 17, 2, 1, 3], [0, 2, 5] },
        { [100003], [] },
    };

    [Theory, MemberData(nameof(ReduceCases))]
    public void Reductions_over_any_axis_set_match_float64(int[] shape, int[] axes) => BothPaths(d =>
    {
        foreach (var k in ElementwiseVerify.ReduceKinds) Pass(ElementwiseVerify.Reduce(d, k, shape, axes));
    });

    [Fact]
    public void Reduction_keepdims_and_sumto_shapes()
    {
        using var scope = new TensorScope();
        var x = Tensor.FromArray(_d, Compare.Random(2 * 3 * 4, 1), 2, 3, 4);
        Assert.Equal([1, 3, 1], Ops.Sum(x, [0, 2], keepDims: true).Shape);
        Assert.Equal([3], Ops.Sum(x, [0, 2]).Shape);
        Assert.Equal([1], Ops.Sum(x).Shape);
        var st = Ops.SumTo(x, [3, 1]);
        Assert.Equal([3, 1], st.Shape);
        var expect = Ops.Sum(x, [0, 2]).ToArray();
        Assert.Equal(expect, st.ToArray());
        Assert.Throws<ArgumentException>(() => Ops.SumTo(x, [5]));
        Assert.Throws<ArgumentException>(() => Ops.Sum(x, [3]));
        Assert.Throws<ArgumentException>(() => Ops.Sum(x, [1, 1]));
    }

    [Fact]
    public void Concat_slice_roundtrip_match_reference() => BothPaths(d =>
    {
        Pass(ElementwiseVerify.Concat(d, 0, [1, 3], [2, 3]));
        Pass(ElementwiseVerify.Concat(d, 1, [2, 3, 5], [2, 4, 5]));
        Pass(ElementwiseVerify.Concat(d, 2, [2, 3, 1], [2, 3, 7]));
        Pass(ElementwiseVerify.Slice(d, 0, [5, 2], 1, 3));
        Pass(ElementwiseVerify.Slice(d, 2, [3, 4, 11, 2], 3, 5));
        Pass(ElementwiseVerify.Slice(d, 3, [3, 4, 11, 2], 1, 1));
    });

    [Fact]
    public void Permute_matches_reference() => BothPaths(d =>
    {
        Pass(ElementwiseVerify.Permute(d, [2, 3, 5, 7], [0, 3, 1, 2]));
        Pass(ElementwiseVerify.Permute(d, [3, 4], [1, 0]));
        Pass(ElementwiseVerify.Permute(d, [1, 2, 1, 3, 2, 2], [5, 4, 3, 2, 1, 0]));
        Assert.Throws<ArgumentException>(() => Ops.Permute(Tensor.Zeros(d, 2, 3), 0, 0));
    });

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

    [Fact]
    public void Shape_errors_name_the_op_and_shapes()
    {
        using var scope = new TensorScope();
        var a = Tensor.Zeros(_d, 2, 3);
        var b = Tensor.Zeros(_d, 4, 3);
        var e = Assert.Throws<ArgumentException>(() => Ops.Add(a, b));
        Assert.Contains("Add", e.Message);
        Assert.Contains("(2, 3)", e.Message);
        Assert.Contains("(4, 3)", e.Message);
        e = Assert.Throws<ArgumentException>(() => Ops.Axpy(1, a, b));
        Assert.Contains("Axpy", e.Message);
        Assert.Throws<ArgumentException>(() => Tensor.Zeros(_d, 2, 0));
        Assert.Throws<ArgumentException>(() => Tensor.Zeros(_d, -1));
        e = Assert.Throws<ArgumentException>(() => Tensor.Empty(_d, 65536, 65536));
        Assert.Contains("32-bit", e.Message);
        Assert.Throws<ArgumentException>(() => a.Reshape(4, -1));
        Assert.Throws<ArgumentException>(() => Ops.Clamp(a, 1, 0));
        Assert.Throws<ArgumentException>(() => Ops.Concat(0, a, Tensor.Zeros(_d, 2, 4)));
        Assert.Throws<ArgumentException>(() => Ops.Slice(a, 1, 2, 2));
        Assert.Throws<ArgumentException>(() => Tensor.FromArray(_d, new float[5], 2, 3));
    }

    [Fact]
    public void Tensor_views_scope_and_memory_accounting()
    {
        long before = _d.BytesInUse;
        Tensor kept;
        using (var scope = new TensorScope())
        {
            var x = Tensor.FromArray(_d, [1, 2, 3, 4, 5, 6], 2, 3);
            var v = x.Reshape(3, -1);
            Assert.Equal([3, 2], v.Shape);
            Assert.Equal(x.ToArray(), v.ToArray());
            var row = x.Narrow0(1, 1);
            Assert.Equal([4f, 5, 6], row.ToArray());
            kept = scope.Escape(Ops.Scale(x, 2));
            Assert.Equal(3, scope.Count); // x, v, row (kept escaped)
        }
        Assert.Equal([2f, 4, 6, 8, 10, 12], kept.ToArray());
        kept.Dispose();
        Assert.Equal(before, _d.BytesInUse);
        Assert.Throws<ObjectDisposedException>(() => kept.ToArray());
    }

    [Fact]
    public void Caching_allocator_reuses_freed_buffers_and_accounts_live_bytes()
    {
        using var d = EdmDevice.Create("cpu");
        var a = Tensor.Empty(d, 1000);
        Assert.Equal(4000, d.BytesInUse);
        a.Dispose();
        Assert.Equal(0, d.BytesInUse);
        Assert.Equal(4000, d.CachedBytes);
        using (var b = Tensor.Zeros(d, 10, 100)) // same length: served from the cache, zeroed
        {
            Assert.Equal(0, d.CachedBytes);
            Assert.All(b.ToArray(), v => Assert.Equal(0f, v));
        }
        using (var c = Tensor.Empty(d, 999)) Assert.Equal(3996, d.BytesInUse); // other length: new buffer
        Assert.Equal(4000 + 3996, d.CachedBytes);
        d.EmptyCache();
        Assert.Equal(0, d.CachedBytes);
    }

    [Fact]
    public void Device_selection_errors_list_present_devices()
    {
        var e = Assert.Throws<DeviceSelectionException>(() => EdmDevice.Create("cuda:7"));
        Assert.Contains("cpu", e.Message);
        Assert.Contains("cuda:7", e.Message);
        Assert.Throws<DeviceSelectionException>(() => EdmDevice.ParseSpec("tpu"));
        Assert.Throws<DeviceSelectionException>(() => EdmDevice.ParseSpec("cuda:x"));
        Assert.Equal((DeviceKind.OpenCL, 2), EdmDevice.ParseSpec("opencl:2"));
        Assert.Equal((DeviceKind.Cpu, 0), EdmDevice.ParseSpec("CPU"));
        Assert.Equal((null, 0), EdmDevice.ParseSpec("auto"));
    }
}

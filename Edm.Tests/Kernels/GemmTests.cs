// Gemm and Linear against float64 references: the CPU fast path at odd sizes, the ILGPU kernels
// (tiled and naive) on the CPU accelerator at tiny sizes, backward pieces, finite differences on
// the reference path, and bad input.
using Edm.Verification;
using Edm.Kernels;
using Xunit;
using static Edm.Tests.TestData;

namespace Edm.Tests.Kernels;

public sealed class GemmTests(CpuDevice fx) : IClassFixture<CpuDevice>
{
    readonly EdmDevice _d = fx.Device;

    void WithPath(bool fast, Action body)
    {
        _d.CpuFastPaths = fast;
        try { body(); }
        finally { _d.CpuFastPaths = true; }
    }

    static int[] Shape(int batch, int r, int c) => batch == 0 ? [r, c] : [batch, r, c];

    void CheckMatMul(int batchA, int batchB, int m, int n, int k, bool ta, bool tb, int seed)
    {
        int ba = Math.Max(batchA, 1), bb = Math.Max(batchB, 1);
        var a = Rand(ba * m * k, seed);
        var b = Rand(bb * k * n, seed + 1);
        using var ta_ = T(_d, a, Shape(batchA, ta ? k : m, ta ? m : k));
        using var tb_ = T(_d, b, Shape(batchB, tb ? n : k, tb ? k : n));
        using var c = Ops.MatMul(ta_, tb_, ta, tb);
        var expected = GemmReference.MatMul(D(a), D(b), ba, bb, m, n, k, ta, tb);
        Assert.Equal(batchA == 0 && batchB == 0 ? new[] { m, n } : new[] { Math.Max(ba, bb), m, n }, c.Shape);
        Close($"MatMul {m}x{n}x{k} ta={ta} tb={tb}", c.ToArray(), expected, 1e-4 * Math.Sqrt(k), 1e-4);
    }

    [Theory]
    [InlineData(0, 0, 1, 1, 1, false, false)]
    [InlineData(0, 0, 37, 53, 29, false, false)]
    [InlineData(0, 0, 37, 53, 29, true, false)]
    [InlineData(0, 0, 37, 53, 29, false, true)]
    [InlineData(0, 0, 37, 53, 29, true, true)]
    [InlineData(0, 0, 131, 70, 300, false, false)]
    [InlineData(3, 3, 13, 17, 19, false, true)]
    [InlineData(3, 0, 13, 17, 19, true, false)]
    [InlineData(1, 4, 6, 33, 7, false, false)]
    [InlineData(0, 0, 301, 97, 517, false, false)]   // several row blocks and depth blocks, edge tiles on both sides
    [InlineData(2, 2, 157, 65, 260, true, true)]
    [InlineData(0, 0, 16, 70, 300, false, false)]    // 8-row micro-kernel on AVX-512 (12 does not divide 16)
    [InlineData(2, 2, 32, 33, 9, true, false)]
    [InlineData(0, 0, 3, 40, 20, false, true)]       // fewer rows than any kernel's
    public void MatMul_FastPath_MatchesReference(int batchA, int batchB, int m, int n, int k, bool ta, bool tb) =>
        WithPath(true, () => CheckMatMul(batchA, batchB, m, n, k, ta, tb, m * 7 + n));

    [Theory]
    [InlineData(0, 0, 1, 1, 1, false, false)]
    [InlineData(0, 0, 70, 9, 37, false, false)]
    [InlineData(0, 0, 5, 67, 18, true, true)]
    [InlineData(2, 1, 9, 13, 17, true, false)]
    [InlineData(0, 2, 9, 13, 17, false, true)]
    [InlineData(0, 0, 130, 129, 20, false, false)]   // Auto picks the 128x128 kernel: edge tiles in M and N
    [InlineData(2, 1, 131, 140, 9, true, true)]
    public void MatMul_TiledKernel_MatchesReference(int batchA, int batchB, int m, int n, int k, bool ta, bool tb) =>
        WithPath(false, () => CheckMatMul(batchA, batchB, m, n, k, ta, tb, m + 3 * n));

    // Variants 3 and 5 (128x128 tiles) forced, whatever Auto would pick: edge tiles in M, N and K,
    // every transpose (the load slots run along M/N or along K), broadcast batches.
    [Theory]
    [InlineData(GemmVariant.Tiled128, 0, 0, 130, 129, 20, false, false)]
    [InlineData(GemmVariant.Tiled128V, 0, 0, 130, 129, 20, false, false)]
    [InlineData(GemmVariant.Tiled128V, 0, 0, 129, 131, 9, true, false)]
    [InlineData(GemmVariant.Tiled128V, 0, 0, 5, 257, 33, false, true)]
    [InlineData(GemmVariant.Tiled128V, 2, 1, 131, 140, 9, true, true)]
    [InlineData(GemmVariant.Tiled128V, 1, 3, 200, 7, 1, false, false)]
    public void MatMul_128_tile_kernels_match_the_reference(GemmVariant v, int batchA, int batchB, int m, int n, int k, bool ta, bool tb) =>
        WithPath(false, () =>
        {
            int ba = Math.Max(batchA, 1), bb = Math.Max(batchB, 1);
            var a = Rand(ba * m * k, m + k);
            var b = Rand(bb * k * n, n + 2 * k);
            using var tA = T(_d, a, Shape(batchA, ta ? k : m, ta ? m : k));
            using var tB = T(_d, b, Shape(batchB, tb ? n : k, tb ? k : n));
            using var c = T(_d, Enumerable.Repeat(float.NaN, Math.Max(ba, bb) * m * n).ToArray(), batchA == 0 && batchB == 0 ? [m, n] : [Math.Max(ba, bb), m, n]);
            Ops.MatMulInto(tA, tB, c, ta, tb, variant: v);
            Close($"{v} {m}x{n}x{k} ta={ta} tb={tb}", c.ToArray(), GemmReference.MatMul(D(a), D(b), ba, bb, m, n, k, ta, tb), 1e-4 * Math.Sqrt(k), 1e-4);
        });

    [Fact]
    public void Grids_beyond_the_y_and_z_limits_launch_in_slices()
    {
        // CUDA caps grid y and z at 65,535 groups; at a cap of 2 the kernels run in row and batch
        // slices over offset views, which must give the same products (tiled 64 and 128, transposes,
        // broadcast batches, a batch reduction).
        int keep = GemmKernels.MaxGridYZ;
        GemmKernels.MaxGridYZ = 2;
        try
        {
            WithPath(false, () =>
            {
                CheckMatMul(0, 0, 300, 20, 9, false, false, 5);
                CheckMatMul(3, 1, 140, 17, 7, true, false, 6);
                CheckMatMul(5, 5, 70, 9, 5, false, true, 7);
                foreach (var v in new[] { GemmVariant.Tiled, GemmVariant.Tiled128, GemmVariant.Tiled128V })
                {
                    int bt = 3, m = 300, n = 11, k = 6;
                    var a = Rand(bt * m * k, 8);
                    var b = Rand(bt * k * n, 9);
                    using var ta = T(_d, a, bt, m, k);
                    using var tb = T(_d, b, bt, k, n);
                    using var c = Tensor.Empty(_d, m, n);
                    Ops.MatMulInto(ta, tb, c, variant: v);
                    var full = GemmReference.MatMul(D(a), D(b), bt, bt, m, n, k, false, false);
                    var expected = new double[m * n];
                    for (int i = 0; i < m * n; i++) for (int j = 0; j < bt; j++) expected[i] += full[j * m * n + i];
                    Close($"sliced reduce {v}", c.ToArray(), expected, 1e-4, 1e-4);
                }
            });
        }
        finally { GemmKernels.MaxGridYZ = keep; }
    }

    // Variant 4 (TF32 tensor cores) on the CPU accelerator: the mma and the rounding are emulated
    // (GemmKernels.MmaEmulated), so its tiling, fragment loads, load slots and epilogue are checked
    // here against the float64 product of the TF32-rounded inputs; the swapped A layout (the GPU
    // diagnostic) must fail; Auto never picks TF32 off CUDA, even where it is allowed.
    [Theory]
    [InlineData(0, 0, 129, 20, 9, false, false)]     // (the emulated mma is slow: small shapes)
    [InlineData(2, 1, 7, 131, 9, true, true)]
    public void Tf32_kernel_emulated_on_the_cpu_accelerator_matches_the_rounded_reference(int batchA, int batchB, int m, int n, int k, bool ta, bool tb)
    {
        int ba = Math.Max(batchA, 1), bb = Math.Max(batchB, 1);
        var a = Rand(ba * m * k, 3 * m + k);
        var b = Rand(bb * k * n, n + k);
        using var tA = T(_d, a, Shape(batchA, ta ? k : m, ta ? m : k));
        using var tB = T(_d, b, Shape(batchB, tb ? n : k, tb ? k : n));
        int[] cShape = batchA == 0 && batchB == 0 ? [m, n] : [Math.Max(ba, bb), m, n];
        using var c = T(_d, Enumerable.Repeat(float.NaN, cShape.Aggregate(1, (x, y) => x * y)).ToArray(), cShape);
        using var swapped = Tensor.Empty(_d, cShape);
        double[] Rounded(float[] x) => Array.ConvertAll(x, v => (double)GemmVerify.RoundTf32(v));
        var expected = GemmReference.MatMul(Rounded(a), Rounded(b), ba, bb, m, n, k, ta, tb);
        WithPath(false, () =>
        {
            Ops.MatMulInto(tA, tB, c, ta, tb, variant: GemmVariant.Tf32);
            Close($"tf32 {m}x{n}x{k} ta={ta} tb={tb}", c.ToArray(), expected, 1e-5 * Math.Sqrt(k), 1e-5);
            try
            {
                GemmKernels.Tf32SwapADiagnostic = true;
                Ops.MatMulInto(tA, tB, swapped, ta, tb, variant: GemmVariant.Tf32);
            }
            finally { GemmKernels.Tf32SwapADiagnostic = false; }
        });
        var sw = swapped.ToArray();
        Assert.True(Enumerable.Range(0, sw.Length).Max(i => Math.Abs(sw[i] - expected[i])) > 0.1, "the swapped A fragment layout must give wrong products");
        bool keep = _d.AllowTf32;
        _d.AllowTf32 = true;
        try
        {
            Assert.Equal(GemmVariant.Tiled128V, GemmKernels.Choose(_d, 130, 140));
            Assert.Equal(GemmVariant.Tiled, GemmKernels.Choose(_d, 127, 140));
        }
        finally { _d.AllowTf32 = keep; }
    }

    [Theory]
    [InlineData(1f, 1f)]
    [InlineData(1f + 1f / 4096, 1f)]                  // below half an ulp of TF32 (2^-10): down
    [InlineData(1f + 1f / 2048, 1f + 1f / 1024)]      // a tie: away from zero
    [InlineData(-(1f + 1f / 2048), -(1f + 1f / 1024))]
    [InlineData(1f + 3f / 2048, 1f + 2f / 1024)]      // above half: up
    public void RoundTf32_keeps_ten_mantissa_bits_rounding_ties_away(float x, float expected) =>
        Assert.Equal(expected, GemmVerify.RoundTf32(x));

    [Theory]
    [InlineData(true, GemmVariant.Tiled)]
    [InlineData(false, GemmVariant.Tiled)]
    [InlineData(false, GemmVariant.Naive)]
    [InlineData(false, GemmVariant.Tiled128)]
    [InlineData(false, GemmVariant.Tiled128V)]
    public void MatMulInto_AlphaBeta_And_BatchReduction(bool fast, GemmVariant variant) => WithPath(fast, () =>
    {
        int bt = 2, m = 11, n = 21, k = 7;
        var a = Rand(bt * k * m, 1);
        var b = Rand(bt * k * n, 2);
        var c0 = Rand(m * n, 3);
        using var ta = T(_d, a, bt, k, m);
        using var tb = T(_d, b, bt, k, n);
        // Reduction over the batch into a rank-2 C: C = 0.5 sum_b A_b^T B_b - 2 C.
        using var c = T(_d, c0, m, n);
        Ops.MatMulInto(ta, tb, c, transA: true, alpha: 0.5f, beta: -2f, variant: variant);
        var full = GemmReference.MatMul(D(a), D(b), bt, bt, m, n, k, true, false);
        var expected = new double[m * n];
        for (int i = 0; i < m * n; i++)
        {
            expected[i] = -2.0 * c0[i];
            for (int j = 0; j < bt; j++) expected[i] += 0.5 * full[j * m * n + i];
        }
        Close("MatMulInto reduce", c.ToArray(), expected, 1e-4, 1e-4);
        // Batched with beta 0 over NaN garbage: overwritten.
        using var cb = T(_d, Enumerable.Repeat(float.NaN, bt * m * n).ToArray(), bt, m, n);
        Ops.MatMulInto(ta, tb, cb, transA: true, variant: variant);
        Close("MatMulInto batched beta=0", cb.ToArray(), full, 1e-4, 1e-4);
        // Reduction with beta 0 over NaN garbage, 16 and 24 rows (both AVX-512 kernels), depth over
        // one block: only the first item's first block overwrites, the rest accumulate.
        foreach (int rows in new[] { 16, 24 })
        {
            int kk = 300;
            var a2 = Rand(bt * rows * kk, 4);
            var b2 = Rand(bt * kk * n, 5);
            using var ta2 = T(_d, a2, bt, rows, kk);
            using var tb2 = T(_d, b2, bt, kk, n);
            using var c2 = T(_d, Enumerable.Repeat(float.NaN, rows * n).ToArray(), rows, n);
            Ops.MatMulInto(ta2, tb2, c2, variant: variant);
            var full2 = GemmReference.MatMul(D(a2), D(b2), bt, bt, rows, n, kk, false, false);
            var sum2 = new double[rows * n];
            for (int i = 0; i < rows * n; i++) sum2[i] = full2[i] + full2[rows * n + i];
            Close($"MatMulInto reduce beta=0, {rows} rows", c2.ToArray(), sum2, 1e-4, 1e-4);
        }
    });

    [Theory]
    [InlineData(true)]
    [InlineData(false)]
    public void Linear_ForwardBackward_MatchReference(bool fast) => WithPath(fast, () =>
    {
        // Small: on the kernel path every GEMM group runs 256 managed threads with barriers.
        int n = 3, inF = fast ? 37 : 18, outF = fast ? 19 : 6;
        var x = Rand(n * inF, 11);
        var w = Rand(outF * inF, 12);
        var bias = Rand(outF, 13);
        var dy = Rand(n * outF, 14);
        using var tx = T(_d, x, n, inF);
        using var tw = T(_d, w, outF, inF);
        using var tbias = T(_d, bias, outF);
        using var tdy = T(_d, dy, n, outF);
        using var y = Ops.Linear(tx, tw, tbias);
        Close("Linear", y.ToArray(), GemmReference.Linear(D(x), D(w), D(bias), n, inF, outF));
        var (rdx, rdw, rdb) = GemmReference.LinearBackward(D(x), D(w), D(dy), n, inF, outF);
        using var dx = Ops.LinearBackwardData(tdy, tw);
        Close("Linear dx", dx.ToArray(), rdx);
        using var dw = Ops.LinearBackwardWeight(tdy, tx);
        Close("Linear dW", dw.ToArray(), rdw);
        using var db = Ops.LinearBackwardBias(tdy);
        Close("Linear db", db.ToArray(), rdb);
        // Parameter gradients accumulate in the Into forms.
        Ops.LinearBackwardWeightInto(tdy, tx, dw, accumulate: true);
        Close("Linear dW accumulated", dw.ToArray(), rdw.Select(v => 2 * v).ToArray());
        Ops.LinearBackwardBiasInto(tdy, db, accumulate: true);
        Close("Linear db accumulated", db.ToArray(), rdb.Select(v => 2 * v).ToArray());
    });

    [Fact]
    public void Linear_LeadingDimensionsAndNoBias()
    {
        var x = Rand(2 * 3 * 8, 21);
        var w = Rand(4 * 8, 22);
        using var tx = T(_d, x, 2, 3, 8);
        using var tw = T(_d, w, 4, 8);
        using var y = Ops.Linear(tx, tw);
        Assert.Equal(new[] { 2, 3, 4 }, y.Shape);
        Close("Linear rank 3", y.ToArray(), GemmReference.Linear(D(x), D(w), null, 6, 8, 4));
    }

    [Fact]
    public void LinearReferenceBackward_MatchesFiniteDifferences()
    {
        int n = 3, inF = 4, outF = 5;
        var x = D(Rand(n * inF, 31));
        var w = D(Rand(outF * inF, 32));
        var b = D(Rand(outF, 33));
        var r = D(Rand(n * outF, 34));
        var (dx, dw, db) = GemmReference.LinearBackward(x, w, r, n, inF, outF);
        FdMatches("dx", FiniteDiff(x, xv => Dot(r, GemmReference.Linear(xv, w, b, n, inF, outF)), 100, 1), dx);
        FdMatches("dW", FiniteDiff(w, wv => Dot(r, GemmReference.Linear(x, wv, b, n, inF, outF)), 100, 2), dw);
        FdMatches("db", FiniteDiff(b, bv => Dot(r, GemmReference.Linear(x, w, bv, n, inF, outF)), 100, 3), db);
    }

    [Fact]
    public void BadInput_ThrowsNamingOpAndShapes()
    {
        using var a = Tensor.Zeros(_d, 3, 4);
        using var b = Tensor.Zeros(_d, 5, 6);
        var e = Assert.Throws<ArgumentException>(() => Ops.MatMul(a, b));
        Assert.Contains("MatMul", e.Message);
        Assert.Contains("(3, 4)", e.Message);
        Assert.Contains("(5, 6)", e.Message);
        using var tall = Tensor.Zeros(_d, 50000, 1);
        using var wide = Tensor.Zeros(_d, 1, 50000);
        e = Assert.Throws<ArgumentException>(() => Ops.MatMul(tall, wide));
        Assert.Contains("MatMul", e.Message);
        Assert.Contains("32-bit", e.Message);
        using var w = Tensor.Zeros(_d, 7, 5);
        e = Assert.Throws<ArgumentException>(() => Ops.Linear(a, w));
        Assert.Contains("Linear", e.Message);
        using var c = Tensor.Zeros(_d, 3, 5);
        e = Assert.Throws<ArgumentException>(() => Ops.MatMulInto(a, Tensor.Zeros(_d, 4, 6), c));
        Assert.Contains("MatMulInto", e.Message);
    }
}

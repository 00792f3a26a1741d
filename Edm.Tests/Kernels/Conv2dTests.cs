// Conv2d forward, backward-data, backward-weight and bias gradient against the float64 reference:
// CPU fast path at odd sizes (channels not multiples of 32, 1x1 images, batch 1, 1x1 and 5x5
// kernels, explicit padding), the ILGPU kernels (im2col/col2im + tiled GEMM) at tiny sizes,
// finite differences on the reference, and bad input.
using Edm.Verification;
using Edm.Kernels;
using Xunit;
using static Edm.Tests.TestData;

namespace Edm.Tests.Kernels;

public sealed class Conv2dTests(CpuDevice fx) : IClassFixture<CpuDevice>
{
    readonly EdmDevice _d = fx.Device;

    void Check(bool fast, int b, int cin, int h, int w, int cout, int k, int padding, int seed)
    {
        _d.CpuFastPaths = fast;
        try
        {
            int pad = padding < 0 ? k / 2 : padding;
            int ho = h + 2 * pad - k + 1, wo = w + 2 * pad - k + 1;
            var x = Rand(b * cin * h * w, seed);
            var wt = Rand(cout * cin * k * k, seed + 1);
            var bias = Rand(cout, seed + 2);
            var dy = Rand(b * cout * ho * wo, seed + 3);
            using var tx = T(_d, x, b, cin, h, w);
            using var tw = T(_d, wt, cout, cin, k, k);
            using var tb = T(_d, bias, cout);
            using var tdy = T(_d, dy, b, cout, ho, wo);
            string name = $"conv B{b} {cin}->{cout} {h}x{w} k{k} pad{pad} fast={fast}";
            double tol = 1e-4 * Math.Sqrt(cin * k * k);

            using var y = Ops.Conv2d(tx, tw, tb, padding);
            Assert.Equal(new[] { b, cout, ho, wo }, y.Shape);
            Close(name + " y", y.ToArray(), Conv2dReference.Forward(D(x), D(wt), D(bias), b, cin, h, w, cout, k, pad), tol);

            var (rdx, rdw, rdb) = Conv2dReference.Backward(D(x), D(wt), D(dy), b, cin, h, w, cout, k, pad);
            using var dx = Ops.Conv2dBackwardData(tdy, tw, padding);
            Assert.Equal(tx.Shape, dx.Shape);
            Close(name + " dx", dx.ToArray(), rdx, 1e-4 * Math.Sqrt(cout * k * k));
            using var dw = Ops.Conv2dBackwardWeight(tx, tdy, k, padding);
            Close(name + " dW", dw.ToArray(), rdw, 1e-4 * Math.Sqrt(b * ho * wo));
            using var db = Ops.Conv2dBackwardBias(tdy);
            Close(name + " db", db.ToArray(), rdb, 1e-4 * Math.Sqrt(b * ho * wo));
            // Parameter gradients accumulate in the Into forms.
            Ops.Conv2dBackwardWeightInto(tx, tdy, dw, accumulate: true, padding);
            Close(name + " dW accumulated", dw.ToArray(), rdw.Select(v => 2 * v).ToArray(), 2e-4 * Math.Sqrt(b * ho * wo));
            Ops.Conv2dBackwardBiasInto(tdy, db, accumulate: true);
            Close(name + " db accumulated", db.ToArray(), rdb.Select(v => 2 * v).ToArray(), 2e-4 * Math.Sqrt(b * ho * wo));
        }
        finally { _d.CpuFastPaths = true; }
    }

    [Theory]
    [InlineData(2, 3, 7, 5, 5, 3, -1)]
    [InlineData(1, 33, 1, 1, 2, 3, -1)]   // 1x1 image, batch 1
    [InlineData(3, 4, 6, 6, 7, 1, -1)]    // pointwise: im2col skipped
    [InlineData(2, 2, 5, 4, 3, 5, -1)]
    [InlineData(1, 3, 6, 5, 4, 3, 0)]     // valid convolution
    [InlineData(2, 3, 4, 5, 2, 1, 1)]     // 1x1 kernel with padding (fused EDM down uses it)
    [InlineData(3, 37, 11, 9, 45, 3, -1)] // channels not multiples of 32, more than one GEMM tile
    [InlineData(2, 5, 12, 12, 16, 3, -1)] // 8-row micro-kernel (16 rows); B panels span image rows, the last one partial
    [InlineData(1, 4, 16, 16, 32, 3, -1)] // batch 1: the GEMM and its panel packing run in parallel
    [InlineData(2, 3, 9, 40, 8, 5, -1)]   // rows wider than a panel, k5 (two columns wrap per side)
    [InlineData(2, 30, 8, 8, 3, 3, -1)]   // depth 270: two depth blocks, the second accumulating onto the first
    [InlineData(2, 64, 7, 9, 70, 3, -1)]  // Winograd F(2x2, 3x3): odd sizes (partial tiles on both edges)
    [InlineData(1, 66, 1, 1, 64, 3, -1)]  // Winograd, one tile whose outputs are all but one outside
    [InlineData(3, 65, 16, 16, 72, 3, -1)] // Winograd, tile rows in two chunks; channels not multiples of the vector width
    public void FastPath_MatchesReference(int b, int cin, int h, int w, int cout, int k, int padding) =>
        Check(true, b, cin, h, w, cout, k, padding, b + cin * 3 + h);

    [Theory]
    [InlineData(2, 64, 7, 9, 70)]
    [InlineData(3, 65, 16, 16, 72)]
    [InlineData(4, 64, 32, 32, 64)]   // the weight gradient in two chunks of images (3 + 1)
    public void Winograd_AgreesWithDirectProduct(int b, int cin, int h, int w, int cout)
    {
        var x = Rand(b * cin * h * w, 5);
        var wt = Rand(cout * cin * 9, 6);
        var bias = Rand(cout, 7);
        var dy = Rand(b * cout * h * w, 8);
        float[] Run(bool winograd, out float[] dx, out float[] dw)
        {
            _d.AllowWinograd = winograd;
            try
            {
                using var tx = T(_d, x, b, cin, h, w);
                using var tw = T(_d, wt, cout, cin, 3, 3);
                using var tb = T(_d, bias, cout);
                using var tdy = T(_d, dy, b, cout, h, w);
                using var y = Ops.Conv2d(tx, tw, tb);
                using var tdx = Ops.Conv2dBackwardData(tdy, tw);
                dx = tdx.ToArray();
                using var tdw = Ops.Conv2dBackwardWeight(tx, tdy, 3);
                dw = tdw.ToArray();
                return y.ToArray();
            }
            finally { _d.AllowWinograd = true; }
        }
        var yw = Run(true, out var dxw, out var dww);
        var yd = Run(false, out var dxd, out var dwd);
        // Both are float32 sums of cin*9 products: they differ by rounding, not by a missing term.
        Close("winograd vs direct y", yw, Array.ConvertAll(yd, v => (double)v), 1e-4 * Math.Sqrt(cin * 9));
        Close("winograd vs direct dx", dxw, Array.ConvertAll(dxd, v => (double)v), 1e-4 * Math.Sqrt(cout * 9));
        Close("winograd vs direct dW", dww, Array.ConvertAll(dwd, v => (double)v), 1e-4 * Math.Sqrt(b * h * w));
        Assert.NotEqual(yw, yd);                                  // the two paths really ran (the roundings differ)
    }

    [Theory]
    [InlineData(2, 3, 5, 4, 5, 3, -1)]
    [InlineData(1, 5, 1, 1, 3, 3, 1)]
    [InlineData(2, 3, 3, 3, 2, 1, -1)]
    [InlineData(4, 3, 12, 12, 5, 3, -1)]     // 576 columns: weight gradient in 3 chunks that straddle images
    [InlineData(2, 2, 9, 8, 130, 3, -1)]     // 130 output channels: two tile rows
    public void KernelPath_MatchesReference(int b, int cin, int h, int w, int cout, int k, int padding) =>
        BothKernelAlgorithms(() => Check(false, b, cin, h, w, cout, k, padding, 7 * b + cin + h));

    // The kernel path's two algorithms (implicit GEMM, the default; im2col + GEMM), restored after.
    static void BothKernelAlgorithms(Action check)
    {
        bool keep = Ops.ImplicitConv;
        try
        {
            foreach (bool implicitGemm in new[] { true, false })
            {
                Ops.ImplicitConv = implicitGemm;
                check();
            }
        }
        finally { Ops.ImplicitConv = keep; }
    }

    // The TF32 implicit-GEMM convolutions (GEMM variant 4's warp tiles) on the CPU accelerator, the
    // mma emulated: against the float64 reference of the TF32-rounded operands (the bias is added
    // in float32, unrounded). Forward, backward-data (the flipped forward) and weight gradient.
    [Fact]
    public void Tf32_implicit_convolutions_match_the_rounded_reference()
    {
        bool keepEmulate = Ops.EmulateTf32Conv;
        _d.CpuFastPaths = false;
        Ops.EmulateTf32Conv = true;
        try
        {
            // verify's CUDA rows (tf32 family), here at a tiny shape on the emulation.
            var rows = Conv2dVerify.Tf32(_d, 2, 3, 5, 4, 5, 3).ToList();
            Assert.Equal(3, rows.Count);
            Assert.All(rows, r => Assert.True(r.Passed, $"{r.Name} {r.Shapes}: error {r.MaxAbsError} > {r.Tolerance} {r.Note}"));
            // And they really ran in TF32: the unrounded product is further away than float32 rounding.
            var x = Rand(2 * 3 * 20, 41);
            var wt = Rand(5 * 3 * 9, 42);
            using var tx = T(_d, x, 2, 3, 5, 4);
            using var tw = T(_d, wt, 5, 3, 3, 3);
            bool keep = _d.AllowTf32;
            _d.AllowTf32 = true;
            try
            {
                using var y = Ops.Conv2d(tx, tw);
                var got = y.ToArray();
                var exact = Conv2dReference.Forward(D(x), D(wt), new double[5], 2, 3, 5, 4, 5, 3, 1);
                Assert.True(Enumerable.Range(0, got.Length).Max(i => Math.Abs(got[i] - exact[i])) > 1e-4);
            }
            finally { _d.AllowTf32 = keep; }
        }
        finally
        {
            _d.CpuFastPaths = true;
            Ops.EmulateTf32Conv = keepEmulate;
        }
    }

    [Fact]
    public void Weight_gradient_split_depends_on_the_shape_alone_and_covers_every_pixel()
    {
        var s = new ConvShape(128, 128, 32, 32, 128, 3, 3, 1, 1, 1, 1, 32, 32);
        var (chunks, chunk) = Ops.WeightGradSplit(s);
        Assert.Equal(0, chunk % GemmKernels.Tile128K);
        Assert.True((long)chunks * chunk >= 128 * 1024 && (long)(chunks - 1) * chunk < 128 * 1024);
        Assert.True(chunks * 9 >= ConvImplicitKernels.WeightGradTargetGroups);   // 1 x 9 tiles of (128, 1152)
        var small = Ops.WeightGradSplit(s with { Batch = 1, H = 4, W = 4, Ho = 4, Wo = 4 });
        Assert.Equal((1, 16), small);                                             // 16 pixels: one chunk
    }

    void CheckGeneral(bool fast, int b, int cin, int h, int w, int cout, int kh, int kw, Conv2dParams p, int seed)
    {
        _d.CpuFastPaths = fast;
        try
        {
            var (ho, wo) = Conv2dReference.OutputSize(h, w, kh, kw, p);
            var x = Rand(b * cin * h * w, seed);
            var wt = Rand(cout * cin * kh * kw, seed + 1);
            var bias = Rand(cout, seed + 2);
            var dy = Rand(b * cout * ho * wo, seed + 3);
            using var tx = T(_d, x, b, cin, h, w);
            using var tw = T(_d, wt, cout, cin, kh, kw);
            using var tb = T(_d, bias, cout);
            using var tdy = T(_d, dy, b, cout, ho, wo);
            string name = $"conv B{b} {cin}->{cout} {h}x{w} k{kh}x{kw} {p} fast={fast}";
            using var y = Ops.Conv2d(tx, tw, tb, p);
            Assert.Equal(new[] { b, cout, ho, wo }, y.Shape);
            Close(name + " y", y.ToArray(), Conv2dReference.Forward(D(x), D(wt), D(bias), b, cin, h, w, cout, kh, kw, p), 1e-4 * Math.Sqrt(cin * kh * kw));
            var (rdx, rdw, rdb) = Conv2dReference.Backward(D(x), D(wt), D(dy), b, cin, h, w, cout, kh, kw, p);
            using var dx = Ops.Conv2dBackwardData(tdy, tw, h, w, p);
            Assert.Equal(tx.Shape, dx.Shape);
            Close(name + " dx", dx.ToArray(), rdx, 1e-4 * Math.Sqrt(cout * kh * kw));
            using var dw = Ops.Conv2dBackwardWeight(tx, tdy, kh, kw, p);
            Close(name + " dW", dw.ToArray(), rdw, 1e-4 * Math.Sqrt(b * ho * wo));
            using var db = Ops.Conv2dBackwardBias(tdy);
            Close(name + " db", db.ToArray(), rdb, 1e-4 * Math.Sqrt(b * ho * wo));
        }
        finally { _d.CpuFastPaths = true; }
    }

    // (b, cin, h, w, cout, kh, kw, sh, sw, pt, pb, pl, pr): Inception-v3's geometries and odd ones.
    [Theory]
    [InlineData(2, 3, 9, 8, 5, 1, 7, 1, 1, 0, 0, 3, 3)]   // 1x7 same
    [InlineData(2, 3, 9, 8, 5, 7, 1, 1, 1, 3, 3, 0, 0)]   // 7x1 same
    [InlineData(2, 3, 7, 6, 4, 1, 3, 1, 1, 0, 0, 1, 1)]   // 1x3 same
    [InlineData(2, 3, 7, 6, 4, 3, 1, 1, 1, 1, 1, 0, 0)]   // 3x1 same
    [InlineData(2, 5, 11, 9, 6, 3, 3, 2, 2, 0, 0, 0, 0)]  // 3x3 stride 2 valid (the grid reductions)
    [InlineData(2, 4, 7, 8, 3, 1, 1, 2, 2, 0, 0, 0, 0)]   // 1x1 stride 2
    [InlineData(1, 3, 6, 7, 4, 1, 1, 1, 1, 0, 0, 0, 0)]   // 1x1 pointwise through the general API
    [InlineData(2, 3, 8, 9, 4, 3, 3, 2, 1, 0, 1, 2, 0)]   // asymmetric padding, mixed strides
    [InlineData(1, 2, 6, 7, 3, 2, 4, 1, 3, 1, 0, 0, 2)]   // even kernel sides
    [InlineData(1, 2, 4, 4, 3, 3, 3, 1, 1, 0, 2, 2, 0)]   // stride 1, output the input's size, not centred
    [InlineData(2, 3, 5, 6, 4, 2, 4, 1, 1, 1, 0, 1, 2)]   // even "same" kernel (backward-data runs as the flipped forward)
    public void General_BothPaths_MatchReference(int b, int cin, int h, int w, int cout, int kh, int kw, int sh, int sw, int pt, int pb, int pl, int pr)
    {
        var p = new Conv2dParams(sh, sw, pt, pb, pl, pr);
        CheckGeneral(true, b, cin, h, w, cout, kh, kw, p, 3 * b + h);
        BothKernelAlgorithms(() => CheckGeneral(false, b, cin, h, w, cout, kh, kw, p, 5 * b + w));
    }

    /// <summary>
    /// The fast path's im2col panels zero the taps that wrap around a row edge with bit masks: an
    /// infinity or NaN in the last column must not reach the next row's first pixel (0 * inf = NaN
    /// would), and every output whose reference is finite stays finite and equal.
    /// </summary>
    [Fact]
    public void FastPath_NonFiniteInputsStayInTheirNeighbourhood()
    {
        int b = 1, cin = 2, h = 8, w = 8, cout = 16, k = 3;
        var x = Rand(b * cin * h * w, 91);
        x[3 * w + w - 1] = float.PositiveInfinity;            // channel 0, row 3, last column
        x[h * w + 5 * w] = float.NaN;                         // channel 1, row 5, first column
        var wt = Rand(cout * cin * k * k, 92);
        var bias = Rand(cout, 93);
        using var tx = T(_d, x, b, cin, h, w);
        using var tw = T(_d, wt, cout, cin, k, k);
        using var tb = T(_d, bias, cout);
        using var y = Ops.Conv2d(tx, tw, tb);
        var got = y.ToArray();
        var want = Conv2dReference.Forward(D(x), D(wt), D(bias), b, cin, h, w, cout, k, k / 2);
        int finite = MatchWhereFinite("output", got, want);
        Assert.True(finite > got.Length / 2, "most outputs are far from the non-finite inputs");

        // The weight gradient: a tap whose column shift never reaches the non-finite column (kx = 0 for
        // channel 0's last column, kx = 2 for channel 1's first) keeps a finite, exact gradient.
        var dy = Rand(b * cout * h * w, 94);
        using var tdy = T(_d, dy, b, cout, h, w);
        using var dw = Ops.Conv2dBackwardWeight(tx, tdy, k);
        var gotW = dw.ToArray();
        var (_, wantW, _) = Conv2dReference.Backward(D(x), D(wt), D(dy), b, cin, h, w, cout, k, k / 2);
        Assert.Equal(cout * 2 * k, MatchWhereFinite("dW", gotW, wantW));
    }

    /// <summary>Asserts got equals the reference wherever the reference is finite; returns how many such elements there are.</summary>
    static int MatchWhereFinite(string what, float[] got, double[] want)
    {
        int finite = 0;
        for (int i = 0; i < got.Length; i++)
        {
            if (!double.IsFinite(want[i])) continue;
            finite++;
            Assert.True(float.IsFinite(got[i]) && Math.Abs(got[i] - want[i]) <= 1e-4 * (1 + Math.Abs(want[i])),
                $"{what} {i}: got {got[i]}, reference {want[i]}");
        }
        return finite;
    }

    [Fact]
    public void VerifyRows_Pass()
    {
        // The `verify` rows (fast path, plus its own kernel-path rows), so a broken row is caught here.
        foreach (var r in new Conv2dVerify().Run(_d))
            Assert.True(r.Passed, $"{r.Name} {r.Shapes}: max abs {r.MaxAbsError:E3} > tol {r.Tolerance:E1}");
    }

    [Fact]
    public void GeneralReferenceBackward_MatchesFiniteDifferences()
    {
        int b = 2, cin = 2, h = 5, w = 6, cout = 2, kh = 3, kw = 2;
        var p = new Conv2dParams(2, 1, 1, 0, 0, 1);
        var (ho, wo) = Conv2dReference.OutputSize(h, w, kh, kw, p);
        var x = D(Rand(b * cin * h * w, 51));
        var wt = D(Rand(cout * cin * kh * kw, 52));
        var bias = D(Rand(cout, 53));
        var r = D(Rand(b * cout * ho * wo, 54));
        var (dx, dw, db) = Conv2dReference.Backward(x, wt, r, b, cin, h, w, cout, kh, kw, p);
        FdMatches("dx", FiniteDiff(x, v => Dot(r, Conv2dReference.Forward(v, wt, bias, b, cin, h, w, cout, kh, kw, p)), 1000, 1), dx);
        FdMatches("dW", FiniteDiff(wt, v => Dot(r, Conv2dReference.Forward(x, v, bias, b, cin, h, w, cout, kh, kw, p)), 1000, 2), dw);
        FdMatches("db", FiniteDiff(bias, v => Dot(r, Conv2dReference.Forward(x, wt, v, b, cin, h, w, cout, kh, kw, p)), 1000, 3), db);
    }

    [Fact]
    public void GeneralBadInput_ThrowsNamingWhatIsAllowed()
    {
        using var x = Tensor.Zeros(_d, 1, 3, 8, 8);
        using var w = Tensor.Zeros(_d, 4, 3, 3, 3);
        var e = Assert.Throws<ArgumentException>(() => Ops.Conv2d(x, w, null, new Conv2dParams(0, 1, 0, 0, 0, 0)));
        Assert.Contains("stride (0, 1)", e.Message);
        Assert.Contains(">= 1", e.Message);
        e = Assert.Throws<ArgumentException>(() => Ops.Conv2d(x, w, null, new Conv2dParams(1, 1, -1, 0, 0, 0)));
        Assert.Contains("padding must be >= 0", e.Message);
        using var wide = Tensor.Zeros(_d, 4, 3, 1, 9);
        e = Assert.Throws<ArgumentException>(() => Ops.Conv2d(x, wide, null, Conv2dParams.Symmetric(1, 1, 0, 0)));
        Assert.Contains("smaller than weight (4, 3, 1, 9)", e.Message);
        using var dy = Tensor.Zeros(_d, 1, 4, 4, 4);
        e = Assert.Throws<ArgumentException>(() => Ops.Conv2dBackwardData(dy, w, 8, 8, Conv2dParams.Symmetric(1, 1, 1, 1)));
        Assert.Contains("Conv2dBackwardData", e.Message);
        Assert.Contains("dy", e.Message);
    }

    [Fact]
    public void ReferenceBackward_MatchesFiniteDifferences()
    {
        int b = 2, cin = 2, h = 4, w = 3, cout = 3, k = 3, pad = 1;
        var x = D(Rand(b * cin * h * w, 41));
        var wt = D(Rand(cout * cin * k * k, 42));
        var bias = D(Rand(cout, 43));
        var r = D(Rand(b * cout * h * w, 44));
        var (dx, dw, db) = Conv2dReference.Backward(x, wt, r, b, cin, h, w, cout, k, pad);
        FdMatches("dx", FiniteDiff(x, v => Dot(r, Conv2dReference.Forward(v, wt, bias, b, cin, h, w, cout, k, pad)), 1000, 1), dx);
        FdMatches("dW", FiniteDiff(wt, v => Dot(r, Conv2dReference.Forward(x, v, bias, b, cin, h, w, cout, k, pad)), 1000, 2), dw);
        FdMatches("db", FiniteDiff(bias, v => Dot(r, Conv2dReference.Forward(x, wt, v, b, cin, h, w, cout, k, pad)), 1000, 3), db);
    }

    [Fact]
    public void BadInput_ThrowsNamingOpAndShapes()
    {
        using var x = Tensor.Zeros(_d, 1, 3, 8, 8);
        using var even = Tensor.Zeros(_d, 4, 3, 2, 2);
        var e = Assert.Throws<ArgumentException>(() => Ops.Conv2d(x, even));
        Assert.Contains("Conv2d", e.Message);
        Assert.Contains("odd", e.Message);
        Assert.Contains("(4, 3, 2, 2)", e.Message);
        using var wrongC = Tensor.Zeros(_d, 4, 5, 3, 3);
        e = Assert.Throws<ArgumentException>(() => Ops.Conv2d(x, wrongC));
        Assert.Contains("(1, 3, 8, 8)", e.Message);
        Assert.Contains("(4, 5, 3, 3)", e.Message);
        using var w = Tensor.Zeros(_d, 4, 3, 3, 3);
        using var bias = Tensor.Zeros(_d, 5);
        e = Assert.Throws<ArgumentException>(() => Ops.Conv2d(x, w, bias));
        Assert.Contains("bias", e.Message);
        using var dyWrong = Tensor.Zeros(_d, 1, 4, 7, 8);
        e = Assert.Throws<ArgumentException>(() => Ops.Conv2dBackwardWeight(x, dyWrong, 3));
        Assert.Contains("Conv2dBackwardWeight", e.Message);
        // im2col of a 2048x2048 image with a 1023x1023 kernel has ~4.4e12 elements: over 32-bit indexing.
        using var big = Tensor.Zeros(_d, 1, 1, 2048, 2048);
        using var huge = Tensor.Zeros(_d, 1, 1, 1023, 1023);
        e = Assert.Throws<ArgumentException>(() => Ops.Conv2d(big, huge));
        Assert.Contains("32-bit", e.Message);
        Assert.Contains("(1, 1, 2048, 2048)", e.Message);
    }
}

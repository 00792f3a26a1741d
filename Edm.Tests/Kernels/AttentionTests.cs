using Edm.Verification;
using Edm.Kernels;
using Xunit;

namespace Edm.Tests.Kernels;

public sealed class AttentionTests(CpuDevice fx) : IClassFixture<CpuDevice>
{
    readonly EdmDevice _device = fx.Device;

    void Check(int bh, int nq, int nk, int d, double logitScale, int seed)
    {
        var q = TestData.Random(bh * nq * d, seed, -logitScale, logitScale);
        var k = TestData.Random(bh * nk * d, seed + 1);
        var v = TestData.Random(bh * nk * d, seed + 2);
        var g = TestData.Random(bh * nq * d, seed + 3);
        using var tq = Tensor.FromArray(_device, q, bh, nq, d);
        using var tk = Tensor.FromArray(_device, k, bh, nk, d);
        using var tv = Tensor.FromArray(_device, v, bh, nk, d);
        using var tg = Tensor.FromArray(_device, g, bh, nq, d);
        var o = Ops.AttentionForward(tq, tk, tv);
        var grads = Ops.AttentionBackward(tq, tk, tv, o.O, o.Lse, tg);
        try
        {
            double scale = 1 / Math.Sqrt(d);
            var (oRef, lseRef) = AttentionReference.Forward(TestData.D(q), TestData.D(k), TestData.D(v), bh, nq, nk, d, scale);
            TestData.Close("attention o", o.O.ToArray(), oRef, 1e-5, 1e-4);
            TestData.Close("attention lse", o.Lse.ToArray(), lseRef, 1e-5, 1e-5);
            var (dq, dk, dv) = AttentionReference.Backward(TestData.D(q), TestData.D(k), TestData.D(v), TestData.D(g), bh, nq, nk, d, scale);
            double tol = 1e-4 * Math.Max(1, logitScale);
            TestData.Close("attention dq", grads.DQ.ToArray(), dq, tol, 1e-3);
            TestData.Close("attention dk", grads.DK.ToArray(), dk, tol, 1e-3);
            TestData.Close("attention dv", grads.DV.ToArray(), dv, 1e-5, 1e-4);
        }
        finally
        {
            o.O.Dispose(); o.Lse.Dispose();
            grads.DQ.Dispose(); grads.DK.Dispose(); grads.DV.Dispose();
        }
    }

    [Theory]
    [InlineData(2, 5, 7, 3)]
    [InlineData(1, 1, 1, 1)]
    [InlineData(3, 33, 17, 16)]
    public void FastPathMatchesReference(int bh, int nq, int nk, int d)
    {
        _device.CpuFastPaths = true;
        Check(bh, nq, nk, d, 1, 10);
    }

    [Theory]
    [InlineData(2, 5, 7, 3)]        // one tile, partial
    [InlineData(1, 1, 1, 1)]
    [InlineData(1, 70, 41, 4)]      // several query and key tiles, last ones partial (br 64, bc 32; backward 64/16)
    [InlineData(1, 19, 18, 100)]    // d not a power of two: padded tiles of 32 (backward 16) rows
    public void KernelPathMatchesReference(int bh, int nq, int nk, int d)
    {
        _device.CpuFastPaths = false;
        Check(bh, nq, nk, d, 1, 20);
    }

    [Theory]
    [InlineData(2, 5, 7, 3, 1.0)]
    [InlineData(1, 1, 1, 1, 1.0)]
    [InlineData(3, 70, 41, 4, 1.0)]    // heads batched in the GEMMs, edge tiles
    [InlineData(1, 9, 40, 8, 200.0)]   // large logits: the row max is subtracted
    public void GemmPathMatchesReference(int bh, int nq, int nk, int d, double logitScale)
    {
        // The GPU's attention path (batched GEMMs + row softmax kernels), run on the CPU accelerator.
        _device.CpuFastPaths = false;
        Ops.AttentionViaGemms = true;
        try { Check(bh, nq, nk, d, logitScale, 40); }
        finally
        {
            Ops.AttentionViaGemms = null;
            _device.CpuFastPaths = true;
        }
    }

    [Theory]
    [InlineData(true)]
    [InlineData(false)]
    public void LargeLogitsAreStable(bool fastPath)
    {
        // Scores around +-200 * sqrt(8): exp overflows float32 unless the running max is subtracted.
        _device.CpuFastPaths = fastPath;
        Check(1, 9, 40, 8, 200, 30);
    }

    [Fact]
    public void FourDimensionalHeadsAreFlattened()
    {
        _device.CpuFastPaths = true;
        var q = TestData.Random(2 * 3 * 5 * 4, 1);
        using var tq = Tensor.FromArray(_device, q, 2, 3, 5, 4);
        using var o = Ops.Attention(tq, tq, tq);
        Assert.Equal(new[] { 2, 3, 5, 4 }, o.Shape);
        var (oRef, _) = AttentionReference.Forward(TestData.D(q), TestData.D(q), TestData.D(q), 6, 5, 5, 4, 0.5);
        TestData.Close("attention 4-d", o.ToArray(), oRef, 1e-5, 1e-4);
    }

    [Fact]
    public void ReferenceBackwardMatchesFiniteDifferences()
    {
        int bh = 2, nq = 3, nk = 4, d = 2;
        double scale = 0.7;
        var q = TestData.D(TestData.Random(bh * nq * d, 1, -2, 2));
        var k = TestData.D(TestData.Random(bh * nk * d, 2, -2, 2));
        var v = TestData.D(TestData.Random(bh * nk * d, 3));
        var r = TestData.D(TestData.Random(bh * nq * d, 4));
        var (dq, dk, dv) = AttentionReference.Backward(q, k, v, r, bh, nq, nk, d, scale);
        TestData.FiniteDifference("attention q", q, x => AttentionReference.Forward(x, k, v, bh, nq, nk, d, scale).O, r, dq);
        TestData.FiniteDifference("attention k", k, x => AttentionReference.Forward(q, x, v, bh, nq, nk, d, scale).O, r, dk);
        TestData.FiniteDifference("attention v", v, x => AttentionReference.Forward(q, k, x, bh, nq, nk, d, scale).O, r, dv);
    }

    [Fact]
    public void MismatchedShapesAreRejected()
    {
        using var q = Tensor.FromArray(_device, TestData.Random(2 * 5 * 4, 1), 2, 5, 4);
        using var k = Tensor.FromArray(_device, TestData.Random(2 * 6 * 3, 1), 2, 6, 3);
        using var k4 = Tensor.FromArray(_device, TestData.Random(2 * 6 * 4, 1), 2, 6, 4);
        using var v = Tensor.FromArray(_device, TestData.Random(2 * 7 * 4, 1), 2, 7, 4);
        var e = Assert.Throws<ArgumentException>(() => Ops.Attention(q, k, k));
        Assert.Contains("Attention", e.Message);
        Assert.Contains("(2, 6, 3)", e.Message);
        Assert.Contains("(2, 5, 4)", e.Message);
        e = Assert.Throws<ArgumentException>(() => Ops.Attention(q, k4, v));
        Assert.Contains("v has shape (2, 7, 4), expected (2, 6, 4)", e.Message);
        using var big = Tensor.FromArray(_device, TestData.Random(257, 1), 1, 1, 257);
        e = Assert.Throws<ArgumentException>(() => Ops.Attention(big, big, big));
        Assert.Contains("1..256", e.Message);
    }
    void CheckQkv(int bh, int d, int n, double logitScale, int seed)
    {
        var x = TestData.Random(bh * d * 3 * n, seed, -logitScale, logitScale);
        var g = TestData.Random(bh * d * n, seed + 1);
        using var tx = Tensor.FromArray(_device, x, bh, d, 3, n);
        using var tg = Tensor.FromArray(_device, g, bh, d, n);
        var o = Ops.QkvAttentionForward(tx);
        using var dx = Ops.QkvAttentionBackward(tx, o.O, o.Lse, tg);
        try
        {
            double scale = 1 / Math.Sqrt(d);
            Assert.Equal(new[] { bh, d, n }, o.O.Shape);
            Assert.Equal(new[] { bh, d, 3, n }, dx.Shape);
            var (oRef, lseRef) = AttentionReference.QkvForward(TestData.D(x), bh, d, n, scale);
            TestData.Close("qkv attention o", o.O.ToArray(), oRef, 1e-5 * logitScale, 1e-4);
            TestData.Close("qkv attention lse", o.Lse.ToArray(), lseRef, 1e-5 * logitScale, 1e-5);
            var dRef = AttentionReference.QkvBackward(TestData.D(x), TestData.D(g), bh, d, n, scale);
            TestData.Close("qkv attention dqkv", dx.ToArray(), dRef, 1e-4 * logitScale * logitScale, 1e-3);
        }
        finally { o.O.Dispose(); o.Lse.Dispose(); }
    }

    [Theory]
    [InlineData(true, 2, 3, 5)]
    [InlineData(true, 1, 1, 1)]
    [InlineData(true, 3, 16, 33)]      // edge tiles of the GEMM micro-kernel along both sides
    [InlineData(false, 2, 3, 5)]
    [InlineData(false, 1, 4, 70)]      // the kernel path: several tiles, the last one partial
    public void QkvLayoutMatchesReference(bool fastPath, int bh, int d, int n)
    {
        _device.CpuFastPaths = fastPath;
        try { CheckQkv(bh, d, n, 1, 50); }
        finally { _device.CpuFastPaths = true; }
    }

    [Fact]
    public void QkvLayoutLargeLogitsAreStable()
    {
        _device.CpuFastPaths = true;
        CheckQkv(2, 8, 40, 20, 60);       // scores around +-20^2 * sqrt(8): the column max is subtracted
    }

    [Fact]
    public void QkvLayoutBadShapesAreRejected()
    {
        using var x = Tensor.FromArray(_device, TestData.Random(2 * 4 * 2 * 5, 1), 2, 4, 2, 5);
        var e = Assert.Throws<ArgumentException>(() => Ops.QkvAttentionForward(x));
        Assert.Contains("QkvAttention: qkv has shape (2, 4, 2, 5); expected (BH, d, 3, N)", e.Message);
        using var ok = Tensor.FromArray(_device, TestData.Random(2 * 4 * 3 * 5, 1), 2, 4, 3, 5);
        var o = Ops.QkvAttentionForward(ok);
        using var wrong = Tensor.FromArray(_device, TestData.Random(2 * 5 * 4, 1), 2, 5, 4);
        e = Assert.Throws<ArgumentException>(() => Ops.QkvAttentionBackward(ok, o.O, o.Lse, wrong));
        Assert.Contains("dO", e.Message);
        o.O.Dispose(); o.Lse.Dispose();
    }
}

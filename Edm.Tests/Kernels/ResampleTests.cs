// EDM FIR resampling (networks.py Conv2d up/down) against float64 references written from the
// PyTorch definitions (grouped conv2d gather for down, conv_transpose2d scatter for up): forward
// and backward on both paths, filters [1, 1] and [1, 3, 3, 1], odd sizes, the composite layer
// (sequential and fused, 3x3 / 1x1 / no kernel) with finite differences, and bad input.
using Edm.Verification;
using Edm.Kernels;
using Xunit;
using static Edm.Tests.TestData;

namespace Edm.Tests.Kernels;

public sealed class ResampleTests(CpuDevice fx) : IClassFixture<CpuDevice>
{
    readonly EdmDevice _d = fx.Device;
    static readonly float[] Box = [1, 1];
    static readonly float[] Smooth = [1, 3, 3, 1];

    static float[] Filter(int taps) => taps == 2 ? Box : taps == 4 ? Smooth : [1, 2, 1];

    [Theory]
    [InlineData(true, 2, 2, 3, 8, 6, -1)]
    [InlineData(true, 4, 2, 3, 8, 6, -1)]
    [InlineData(true, 2, 1, 5, 7, 5, -1)]  // odd sizes: floor
    [InlineData(true, 4, 1, 5, 7, 5, -1)]
    [InlineData(true, 4, 1, 1, 2, 2, -1)]
    [InlineData(true, 3, 1, 2, 5, 6, 0)]   // odd-length filter, explicit padding
    [InlineData(false, 2, 2, 3, 7, 6, -1)]
    [InlineData(false, 4, 1, 2, 5, 7, -1)]
    public void Down_ForwardBackward_MatchReference(bool fast, int taps, int n, int c, int h, int w, int padding)
    {
        _d.CpuFastPaths = fast;
        try
        {
            var f = Filter(taps);
            int p = padding < 0 ? (taps - 1) / 2 : padding;
            int ho = ResampleReference.DownSize(h, taps, p), wo = ResampleReference.DownSize(w, taps, p);
            var x = Rand(n * c * h * w, h * 31 + taps);
            var dy = Rand(n * c * ho * wo, h * 37 + taps);
            using var tx = T(_d, x, n, c, h, w);
            using var y = Ops.FirDownsample2d(tx, f, padding);
            Assert.Equal(new[] { n, c, ho, wo }, y.Shape);
            Close("down", y.ToArray(), ResampleReference.Down(D(x), n * c, h, w, f, p), 1e-5);
            using var tdy = T(_d, dy, n, c, ho, wo);
            using var dx = Ops.FirDownsample2dBackward(tdy, f, h, w, padding);
            Close("down backward", dx.ToArray(), ResampleReference.DownBackward(D(dy), n * c, h, w, f, p), 1e-5);
        }
        finally { _d.CpuFastPaths = true; }
    }

    [Theory]
    [InlineData(true, 2, 2, 3, 4, 3, -1)]
    [InlineData(true, 4, 2, 3, 4, 3, -1)]
    [InlineData(true, 2, 1, 2, 1, 1, -1)]  // 1x1 image
    [InlineData(true, 4, 1, 2, 1, 1, -1)]
    [InlineData(true, 4, 1, 2, 3, 5, 2)]   // fused-up padding k/2 + (L-1)/2
    [InlineData(true, 3, 1, 2, 3, 2, 1)]
    [InlineData(false, 2, 2, 3, 3, 4, -1)]
    [InlineData(false, 4, 1, 2, 3, 2, -1)]
    public void Up_ForwardBackward_MatchReference(bool fast, int taps, int n, int c, int h, int w, int padding)
    {
        _d.CpuFastPaths = fast;
        try
        {
            var f = Filter(taps);
            int p = padding < 0 ? (taps - 1) / 2 : padding;
            int ho = ResampleReference.UpSize(h, taps, p), wo = ResampleReference.UpSize(w, taps, p);
            var x = Rand(n * c * h * w, h * 41 + taps);
            var dy = Rand(n * c * ho * wo, h * 43 + taps);
            using var tx = T(_d, x, n, c, h, w);
            using var y = Ops.FirUpsample2d(tx, f, padding);
            Assert.Equal(new[] { n, c, ho, wo }, y.Shape);
            if (padding < 0) Assert.Equal(new[] { 2 * h, 2 * w }, y.Shape[2..]);
            Close("up", y.ToArray(), ResampleReference.Up(D(x), n * c, h, w, f, p), 1e-5);
            using var tdy = T(_d, dy, n, c, ho, wo);
            using var dx = Ops.FirUpsample2dBackward(tdy, f, h, w, padding);
            Close("up backward", dx.ToArray(), ResampleReference.UpBackward(D(dy), n * c, h, w, f, p), 1e-5);
        }
        finally { _d.CpuFastPaths = true; }
    }

    [Fact]
    public void KnownValues_BoxFilter()
    {
        // [1, 1]: down is the 2x2 mean; up repeats each pixel into a 2x2 block (4 * 1/4).
        using var x = T(_d, [1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16], 1, 1, 4, 4);
        using var down = Ops.FirDownsample2d(x, Box);
        Assert.Equal(new float[] { 3.5f, 5.5f, 11.5f, 13.5f }, down.ToArray());
        using var up = Ops.FirUpsample2d(down, Box);
        Assert.Equal(new float[] { 3.5f, 3.5f, 5.5f, 5.5f }, up.ToArray()[..4]);
        Assert.Equal(new float[] { 11.5f, 11.5f, 13.5f, 13.5f }, up.ToArray()[8..12]);
    }

    [Theory]
    [InlineData(2)]
    [InlineData(4)]
    public void ReferenceBackward_MatchesFiniteDifferences(int taps)
    {
        var f = Filter(taps);
        int p = (taps - 1) / 2, planes = 2, h = 5, w = 4;
        var x = D(Rand(planes * h * w, 51));
        int dh = ResampleReference.DownSize(h, taps, p), dw = ResampleReference.DownSize(w, taps, p);
        var r = D(Rand(planes * dh * dw, 52));
        FdMatches("down dx", FiniteDiff(x, v => Dot(r, ResampleReference.Down(v, planes, h, w, f, p)), 1000, 1),
            ResampleReference.DownBackward(r, planes, h, w, f, p));
        var ru = D(Rand(planes * 4 * h * w, 53));
        FdMatches("up dx", FiniteDiff(x, v => Dot(ru, ResampleReference.Up(v, planes, h, w, f, p)), 1000, 2),
            ResampleReference.UpBackward(ru, planes, h, w, f, p));
    }

    [Theory]
    [InlineData("down", false, 3, 4)]
    [InlineData("down", true, 3, 4)]   // NCSN++ residual encoder: fused, 3x3, [1, 3, 3, 1]
    [InlineData("down", false, 1, 2)]  // DDPM++ skip: 1x1, [1, 1]
    [InlineData("down", true, 1, 4)]
    [InlineData("up", false, 3, 2)]
    [InlineData("up", false, 1, 4)]
    [InlineData("up", true, 1, 2)]
    [InlineData("up", true, 3, 4)]     // shape-shrinking in networks.py too (2H-4); kept faithful
    [InlineData("down", false, 0, 4)]  // kernel=0: resampling only (aux_down)
    [InlineData("up", false, 0, 2)]
    [InlineData("none", false, 3, 2)]
    public void ResampleConv2d_MatchesReference_AndFiniteDifferences(string mode, bool fused, int k, int taps)
    {
        var f = Filter(taps);
        var s = new ResampleReference.Img(2, 3, 6, 6);
        int cout = k == 0 ? s.C : 5;
        var x = Rand(s.N * s.C * s.H * s.W, 61 + k);
        var wt = k == 0 ? null : Rand(cout * s.C * k * k, 62);
        var bias = k == 0 ? null : Rand(cout, 63);
        var (yRef, ys) = ResampleReference.Conv(D(x), s, wt is null ? null : D(wt), cout, k, bias is null ? null : D(bias), mode, f, fused);
        var m = mode == "up" ? Resample.Up : mode == "down" ? Resample.Down : Resample.None;
        using var tx = T(_d, x, s.N, s.C, s.H, s.W);
        using var tw = wt is null ? null : T(_d, wt, cout, s.C, k, k);
        using var tb = bias is null ? null : T(_d, bias, cout);
        using var y = Ops.ResampleConv2d(tx, tw, tb, m, f, fused);
        Assert.Equal(new[] { ys.N, ys.C, ys.H, ys.W }, y.Shape);
        Close($"{mode} fused={fused} k={k}", y.ToArray(), yRef, 1e-4);

        // Backward against central differences of the float64 reference (exact up to rounding: linear).
        var r = Rand(yRef.Length, 64);
        using var tdy = T(_d, r, y.Shape);
        var g = Ops.ResampleConv2dBackward(tx, tw, bias is not null, tdy, m, f, fused);
        using var gdx = g.Dx;
        using var gdw = g.Dw;
        using var gdb = g.Db;
        var rd = D(r);
        double[] xd = D(x), wd = wt is null ? [] : D(wt), bd = bias is null ? [] : D(bias);
        double Loss(double[] xv, double[]? wv, double[]? bv) => Dot(rd, ResampleReference.Conv(xv, s, wv, cout, k, bv, mode, f, fused).Y);
        var fdx = FiniteDiff(xd, v => Loss(v, wt is null ? null : wd, bias is null ? null : bd), 40, 1);
        var dxGot = gdx.ToArray();
        foreach (var (i, num) in fdx) Assert.True(Math.Abs(num - dxGot[i]) <= 1e-4 * (1 + Math.Abs(num)), $"dx[{i}] {dxGot[i]} vs fd {num}");
        if (wt is not null)
        {
            Assert.NotNull(gdw);
            var dwGot = gdw!.ToArray();
            foreach (var (i, num) in FiniteDiff(wd, v => Loss(xd, v, bd), 40, 2))
                Assert.True(Math.Abs(num - dwGot[i]) <= 1e-4 * (1 + Math.Abs(num)), $"dW[{i}] {dwGot[i]} vs fd {num}");
            var dbGot = gdb!.ToArray();
            foreach (var (i, num) in FiniteDiff(bd, v => Loss(xd, wd, v), 40, 3))
                Assert.True(Math.Abs(num - dbGot[i]) <= 1e-4 * (1 + Math.Abs(num)), $"db[{i}] {dbGot[i]} vs fd {num}");
        }
        else Assert.Null(gdw);
    }

    [Fact]
    public void BadInput_Throws()
    {
        using var x = Tensor.Zeros(_d, 1, 2, 1, 1);
        var e = Assert.Throws<ArgumentException>(() => Ops.FirDownsample2d(x, Box));
        Assert.Contains("FirDownsample2d", e.Message);
        using var x4 = Tensor.Zeros(_d, 1, 2, 4, 4);
        e = Assert.Throws<ArgumentException>(() => Ops.FirUpsample2d(x4, [1, -1]));
        Assert.Contains("sums to 0", e.Message);
        using var dyWrong = Tensor.Zeros(_d, 1, 2, 3, 2);
        e = Assert.Throws<ArgumentException>(() => Ops.FirDownsample2dBackward(dyWrong, Box, 4, 4));
        Assert.Contains("(1, 2, 2, 2)", e.Message);
        using var w = Tensor.Zeros(_d, 3, 5, 3, 3);
        e = Assert.Throws<ArgumentException>(() => Ops.ResampleConv2d(x4, w, null, Resample.Down, Box));
        Assert.Contains("Conv2d", e.Message);
        Assert.Contains("(3, 5, 3, 3)", e.Message);
    }
}

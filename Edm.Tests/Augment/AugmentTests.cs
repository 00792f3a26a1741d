// Tests of EDM's augmentation: the affine resampler (Edm.Kernels/Augment.cs) on both CPU paths
// against the float64 reference, and AugmentPipe (Edm.Model/Augment.cs): identity at p = 0, each
// transform alone rebuilt from its labels alone (so the labels describe the transform), the full
// EDM composition, inverses, determinism.
using Edm.Verification;
using Edm.Kernels;
using Edm.Model;
using Xunit;
using R = Edm.Verification.AugmentReference;

namespace Edm.Tests.Augment;

public sealed class AugmentTests(CpuDevice fx) : IClassFixture<CpuDevice>
{
    readonly EdmDevice _device = fx.Device;

    static float[] Rand(int n, int seed)
    {
        var rng = new Random(seed);
        var a = new float[n];
        for (int i = 0; i < n; i++) a[i] = (float)(rng.NextDouble() * 2 - 1);
        return a;
    }

    static double[] D(float[] a) => Array.ConvertAll(a, v => (double)v);

    static void Close(string what, float[] got, double[] reference, double atol)
    {
        Assert.Equal(reference.Length, got.Length);
        var bad = new List<string>();
        for (int i = 0; i < got.Length; i++)
            if (!(Math.Abs(got[i] - reference[i]) <= atol) && bad.Count < 5) bad.Add($"[{i}] got {got[i]} ref {reference[i]}");
        Assert.True(bad.Count == 0, $"{what}: mismatches {string.Join("; ", bad)}");
    }

    static void Exact(string what, float[] got, double[] reference)
    {
        Assert.Equal(reference.Length, got.Length);
        for (int i = 0; i < got.Length; i++)
            Assert.True(got[i] == reference[i], $"{what}: [{i}] got {got[i]}, expected exactly {reference[i]}");
    }

    /// <summary>A pipe with p = 1 and only the named transform enabled (multiplier 1).</summary>
    static AugmentPipe Only(string t, double anisoRotateProb = 0.5) => new(1)
    {
        XFlip = t == "xflip" ? 1 : 0, YFlip = t == "yflip" ? 1 : 0, RotateInt = t == "rotate_int" ? 1 : 0,
        TranslateInt = t == "translate_int" ? 1 : 0, Scale = t == "scale" ? 1 : 0, RotateFrac = t == "rotate_frac" ? 1 : 0,
        Aniso = t == "aniso" ? 1 : 0, TranslateFrac = t == "translate_frac" ? 1 : 0, AnisoRotateProb = anisoRotateProb,
    };

    [Theory]
    [InlineData(true, 2, 3, 5, 7)]
    [InlineData(true, 3, 2, 8, 8)]
    [InlineData(true, 1, 1, 1, 1)]
    [InlineData(true, 2, 1, 1, 4)]
    [InlineData(false, 2, 3, 5, 7)]
    [InlineData(false, 1, 1, 1, 1)]
    [InlineData(false, 2, 1, 1, 4)]
    public void AffineResampleMatchesReference(bool fastPath, int b, int c, int h, int w)
    {
        _device.CpuFastPaths = fastPath;
        try
        {
            var x = Rand(b * c * h * w, 1);
            var rng = new Random(2);
            var m = new double[6 * b];
            for (int s = 0; s < b; s++)
            {
                // Rotation, anisotropic scale and a shift of up to 1.5 image sizes: reflect padding
                // is exercised beyond one period.
                double th = rng.NextDouble() * 2 * Math.PI, sx = 0.5 + rng.NextDouble(), sy = 0.5 + rng.NextDouble();
                double tx = (rng.NextDouble() * 3 - 1.5) * w, ty = (rng.NextDouble() * 3 - 1.5) * h;
                var pm = R.CentredToPixel(Math.Cos(th) * sx, -Math.Sin(th) * sy, Math.Sin(th) * sx, Math.Cos(th) * sy, tx, ty, h, w);
                pm.CopyTo(m, 6 * s);
            }
            var mf = Array.ConvertAll(m, v => (float)v);
            using var tx0 = Tensor.FromArray(_device, x, b, c, h, w);
            using var y = Ops.AffineResample(tx0, mf);
            Assert.Equal(new[] { b, c, h, w }, y.Shape);
            Close("affine", y.ToArray(), R.AffineBicubic(D(x), b, c, h, w, Array.ConvertAll(mf, v => (double)v)), 1e-4);
        }
        finally { _device.CpuFastPaths = true; }
    }

    [Theory]
    [InlineData(true)]
    [InlineData(false)]
    public void FlipsAndIntegerTranslationsAreExactAndRotation90IsExactUpToRounding(bool fastPath)
    {
        _device.CpuFastPaths = fastPath;
        try
        {
            int b = 4, c = 2, h = 5, w = 6;
            var x = Rand(b * c * h * w, 3);
            using var tx = Tensor.FromArray(_device, x, b, c, h, w);
            // Per sample: identity, x-flip, y-flip + shift (-7, 3), x-flip + shift (13, -9) (beyond one period).
            int[] xf = [0, 1, 0, 1], yf = [0, 0, 1, 0], sx = [0, 0, -7, 13], sy = [0, 0, 3, -9];
            var m = new float[6 * b];
            for (int s = 0; s < b; s++)
            {
                // Lookup: translation first (x - tx, y + ty), then the flips.
                float a = xf[s] == 1 ? -1 : 1, e = yf[s] == 1 ? -1 : 1;
                float cx = xf[s] == 1 ? w - 1 + sx[s] : -sx[s], cy = yf[s] == 1 ? h - 1 - sy[s] : sy[s];
                float[] row = [a, 0, cx, 0, e, cy];
                row.CopyTo(m, 6 * s);
            }
            using var y = Ops.AffineResample(tx, m);
            Exact("blit", y.ToArray(), R.Blit(D(x), b, c, h, w, xf, yf, sx, sy));

            // Rotation by 90 degrees about the centre of a square image: y[i, j] = x[j, n-1-i].
            int n = 6;
            var xs = Rand(2 * n * n, 4);
            using var txs = Tensor.FromArray(_device, xs, 1, 2, n, n);
            var rot = Array.ConvertAll(R.CentredToPixel(Math.Cos(Math.PI / 2), -Math.Sin(Math.PI / 2), Math.Sin(Math.PI / 2), Math.Cos(Math.PI / 2), 0, 0, n, n), v => (float)v);
            using var yr = Ops.AffineResample(txs, rot);
            var expected = new double[xs.Length];
            for (int p = 0; p < 2; p++)
                for (int i = 0; i < n; i++)
                    for (int j = 0; j < n; j++) expected[(p * n + i) * n + j] = xs[(p * n + j) * n + n - 1 - i];
            Close("rot90", yr.ToArray(), expected, 1e-6);
        }
        finally { _device.CpuFastPaths = true; }
    }

    [Fact]
    public void ZeroProbabilityIsAnExactCopyWithZeroLabels()
    {
        var pipe = new AugmentPipe(0);
        Assert.Equal(9, pipe.LabelDim);
        var x = Rand(5 * 3 * 8 * 8, 5);
        using var tx = Tensor.FromArray(_device, x, 5, 3, 8, 8);
        var (images, labels) = pipe.Apply(tx, 7, 1);
        using (images)
        using (labels)
        {
            Assert.Equal(x, images.ToArray());
            Assert.Equal(new[] { 5, 9 }, labels.Shape);
            Assert.All(labels.ToArray(), v => Assert.Equal(0f, v));
        }
        using var zeros = pipe.SamplingLabels(_device, 3);
        Assert.Equal(new[] { 3, 9 }, zeros.Shape);
        Assert.All(zeros.ToArray(), v => Assert.Equal(0f, v));
    }

    [Theory]
    [InlineData("xflip")]
    [InlineData("yflip")]
    [InlineData("translate_int")]
    [InlineData("rotate_int")]
    public void PixelBlitsAloneMatchTheirLabelsExactly(string t)
    {
        int b = 16, c = 2, h = 8, w = t == "rotate_int" ? 8 : 7;
        var pipe = Only(t);
        var x = Rand(b * c * h * w, 6);
        using var tx = Tensor.FromArray(_device, x, b, c, h, w);
        var (images, labels) = pipe.Apply(tx, 11, 2);
        using (images)
        using (labels)
        {
            var l = labels.ToArray();
            int dim = pipe.LabelDim;
            Assert.Equal(t is "xflip" or "yflip" ? 1 : 2, dim);
            double[] expected;
            if (t == "rotate_int")
            {
                // Labels (a, b): x-flip when a, y-flip when b, transpose when a != b (w = 1 or 3).
                expected = new double[x.Length];
                for (int s = 0; s < b; s++)
                {
                    bool fx = l[2 * s] == 1, fy = l[2 * s + 1] == 1, tr = fx != fy;
                    for (int ch = 0; ch < c; ch++)
                        for (int oy = 0; oy < h; oy++)
                            for (int ox = 0; ox < w; ox++)
                            {
                                int qx = tr ? oy : ox, qy = tr ? ox : oy;
                                if (fy) qy = h - 1 - qy;
                                if (fx) qx = w - 1 - qx;
                                expected[((s * c + ch) * h + oy) * w + ox] = x[((s * c + ch) * h + qy) * w + qx];
                            }
                }
                Assert.Equal(4, Enumerable.Range(0, b).Select(s => (l[2 * s], l[2 * s + 1])).Distinct().Count());
            }
            else
            {
                int[] xf = new int[b], yf = new int[b], sx = new int[b], sy = new int[b];
                for (int s = 0; s < b; s++)
                {
                    if (t == "xflip") xf[s] = (int)l[s];
                    if (t == "yflip") yf[s] = (int)l[s];
                    if (t == "translate_int")
                    {
                        // Labels are t / (size * 0.125): whole pixels back.
                        double px = l[2 * s] * w * 0.125, py = l[2 * s + 1] * h * 0.125;
                        sx[s] = (int)Math.Round(px);
                        sy[s] = (int)Math.Round(py);
                        Assert.True(Math.Abs(px - sx[s]) < 1e-5 && Math.Abs(py - sy[s]) < 1e-5, $"label {l[2 * s]} is not a whole pixel");
                    }
                }
                expected = R.Blit(D(x), b, c, h, w, xf, yf, sx, sy);
                if (t is "xflip" or "yflip") Assert.True(l.Contains(0f) && l.Contains(1f), "both outcomes of the coin among 16 samples");
                else Assert.Contains(sx.Concat(sy), v => v != 0);
            }
            Exact(t, images.ToArray(), expected);
        }
    }

    /// <summary>The centred 3x3 map a sample's labels describe (EDM layout, or one transform alone).</summary>
    static double[,] FromLabels(string t, float[] l, int h, int w)
    {
        double[,] m = Identity();
        switch (t)
        {
            case "scale":
                m = Diag(Math.Pow(2, -0.2 * l[0]), Math.Pow(2, -0.2 * l[0]));
                break;
            case "rotate_frac":
                m = Rot(Math.Atan2(l[1], l[0] + 1.0));
                break;
            case "aniso": // frame angle 0 (AnisoRotateProb = 0): labels (w, 0)
                Assert.Equal(0f, l[1]);
                m = Diag(Math.Pow(2, -0.2 * l[0]), Math.Pow(2, 0.2 * l[0]));
                break;
            case "translate_frac":
                m[0, 2] = -l[0] * w * 0.125;
                m[1, 2] = -l[1] * h * 0.125;
                break;
            case "edm": // [xflip, yflip, scale, cos-1, sin, aniso w cos r, w sin r, tx, ty] with r = 0
                m = Mul(Diag(l[0] == 1 ? -1 : 1, l[1] == 1 ? -1 : 1), FromLabels("scale", [l[2]], h, w));
                m = Mul(m, FromLabels("rotate_frac", [l[3], l[4]], h, w));
                m = Mul(m, FromLabels("aniso", [l[5], l[6]], h, w));
                m = Mul(m, FromLabels("translate_frac", [l[7], l[8]], h, w));
                break;
        }
        return m;
    }

    static double[,] Identity() => Diag(1, 1);
    static double[,] Diag(double a, double e) => new double[,] { { a, 0, 0 }, { 0, e, 0 }, { 0, 0, 1 } };
    static double[,] Rot(double th) => new double[,] { { Math.Cos(th), -Math.Sin(th), 0 }, { Math.Sin(th), Math.Cos(th), 0 }, { 0, 0, 1 } };
    static double[,] Mul(double[,] p, double[,] q)
    {
        var r = new double[3, 3];
        for (int i = 0; i < 3; i++)
            for (int j = 0; j < 3; j++)
                for (int k = 0; k < 3; k++) r[i, j] += p[i, k] * q[k, j];
        return r;
    }

    static double[] Pixel(double[,] m, int h, int w) => R.CentredToPixel(m[0, 0], m[0, 1], m[1, 0], m[1, 1], m[0, 2], m[1, 2], h, w);

    [Theory]
    [InlineData("scale", true)]
    [InlineData("rotate_frac", true)]
    [InlineData("aniso", true)]
    [InlineData("translate_frac", true)]
    [InlineData("edm", true)]
    [InlineData("edm", false)]
    public void GeometricTransformsMatchTheReferenceRebuiltFromLabels(string t, bool fastPath)
    {
        _device.CpuFastPaths = fastPath;
        try
        {
            int b = fastPath ? 8 : 2, c = 2, h = 6, w = 7;
            var pipe = t == "edm" ? new AugmentPipe(1) { AnisoRotateProb = 0 } : Only(t, anisoRotateProb: 0);
            var x = Rand(b * c * h * w, 8);
            using var tx = Tensor.FromArray(_device, x, b, c, h, w);
            var (images, labels) = pipe.Apply(tx, 13, 3);
            using (images)
            using (labels)
            {
                int dim = pipe.LabelDim;
                Assert.Equal(t == "edm" ? 9 : t == "scale" ? 1 : 2, dim);
                var l = labels.ToArray();
                var m = new double[6 * b];
                for (int s = 0; s < b; s++)
                {
                    var ls = l.AsSpan(s * dim, dim).ToArray();
                    Assert.Contains(ls, v => v != 0); // p = 1: every transform is applied
                    Pixel(FromLabels(t, ls, h, w), h, w).CopyTo(m, 6 * s);
                }
                Close(t, images.ToArray(), R.AffineBicubic(D(x), b, c, h, w, m), 2e-4);
            }
        }
        finally { _device.CpuFastPaths = true; }
    }

    [Fact]
    public void AnisoInARotatedFrameMatchesItsDrawsAndLabels()
    {
        int b = 8, c = 1, h = 7, w = 6;
        var pipe = Only("aniso", anisoRotateProb: 1);
        var x = Rand(b * c * h * w, 9);
        using var tx = Tensor.FromArray(_device, x, b, c, h, w);
        var draws = pipe.Draw(b, h, w, 17, 4);
        var (images, labels) = pipe.Apply(tx, 17, 4);
        using (images)
        using (labels)
        {
            var l = labels.ToArray();
            var m = new double[6 * b];
            for (int s = 0; s < b; s++)
            {
                var d = draws[s];
                Assert.NotEqual(0, d.AnisoR);
                Assert.True(Math.Abs(d.AnisoW * Math.Cos(d.AnisoR) - l[2 * s]) < 1e-5, $"label {l[2 * s]}");
                Assert.True(Math.Abs(d.AnisoW * Math.Sin(d.AnisoR) - l[2 * s + 1]) < 1e-5, $"label {l[2 * s + 1]}");
                double sa = Math.Pow(2, 0.2 * d.AnisoW);
                Pixel(Mul(Mul(Rot(-d.AnisoR), Diag(1 / sa, sa)), Rot(d.AnisoR)), h, w).CopyTo(m, 6 * s);
            }
            Close("aniso rotated", images.ToArray(), R.AffineBicubic(D(x), b, c, h, w, m), 2e-4);
        }
    }

    [Fact]
    public void InversesRecoverTheImage()
    {
        // x-flip: flipping the flipped samples back is exact.
        int b = 8, c = 3, h = 5, w = 6;
        var x = Rand(b * c * h * w, 10);
        using var tx = Tensor.FromArray(_device, x, b, c, h, w);
        var (flipped, fl) = Only("xflip").Apply(tx, 19, 5);
        using (flipped)
        using (fl)
        {
            var l = fl.ToArray();
            var inv = new float[6 * b];
            for (int s = 0; s < b; s++)
            {
                float[] row = l[s] == 1 ? [-1, 0, w - 1, 0, 1, 0] : [1, 0, 0, 0, 1, 0];
                row.CopyTo(inv, 6 * s);
            }
            using var back = Ops.AffineResample(flipped, inv);
            Assert.Equal(x, back.ToArray());
        }

        // Rotation: rotating back by the angle in the labels recovers a smooth image in the centre
        // (the region whose rotated footprint stays inside the image), up to interpolation error.
        int n = 24;
        var smooth = new float[2 * c * n * n];
        for (int i = 0; i < smooth.Length; i++)
        {
            int px = i % n, py = i / n % n, ch = i / (n * n);
            smooth[i] = (float)(0.8 * Math.Sin(0.25 * px + 0.15 * py + ch));
        }
        using var ts = Tensor.FromArray(_device, smooth, 2, c, n, n);
        var (rotated, rl) = Only("rotate_frac").Apply(ts, 23, 6);
        using (rotated)
        using (rl)
        {
            var l = rl.ToArray();
            var inv = new float[12];
            for (int s = 0; s < 2; s++)
                Array.ConvertAll(Pixel(Rot(-Math.Atan2(l[2 * s + 1], l[2 * s] + 1.0)), n, n), v => (float)v).CopyTo(inv, 6 * s);
            using var back = Ops.AffineResample(rotated, inv);
            var got = back.ToArray();
            double maxErr = 0;
            for (int i = 0; i < got.Length; i++)
            {
                int px = i % n, py = i / n % n;
                if (Math.Abs(px - 11.5) < 6 && Math.Abs(py - 11.5) < 6) maxErr = Math.Max(maxErr, Math.Abs(got[i] - smooth[i]));
            }
            Assert.True(maxErr < 0.02, $"rotation round trip error {maxErr}");
            Assert.Contains(l, v => Math.Abs(v) > 0.1); // a real rotation happened
        }
    }

    [Fact]
    public void DrawsAreDeterministicPerSeedStreamAndSample()
    {
        var pipe = new AugmentPipe(0.5);
        int b = 6, c = 3, h = 8, w = 8;
        var x = Rand(b * c * h * w, 12);
        using var tx = Tensor.FromArray(_device, x, b, c, h, w);
        using var head = tx.Narrow0(0, 2);
        var (i1, l1) = pipe.Apply(tx, 29, 7);
        var (i2, l2) = pipe.Apply(tx, 29, 7);
        var (i3, l3) = pipe.Apply(tx, 29, 8);
        var (i4, l4) = pipe.Apply(head, 29, 7);
        using (i1) using (l1) using (i2) using (l2) using (i3) using (l3) using (i4) using (l4)
        {
            Assert.Equal(i1.ToArray(), i2.ToArray());
            Assert.Equal(l1.ToArray(), l2.ToArray());
            Assert.NotEqual(l1.ToArray(), l3.ToArray());
            // A sample's draws depend on its index, not on the batch it is in.
            Assert.Equal(l1.ToArray().AsSpan(0, 2 * 9).ToArray(), l4.ToArray());
            Assert.Equal(i1.ToArray().AsSpan(0, 2 * c * h * w).ToArray(), i4.ToArray());
        }
    }

    [Fact]
    public void InvalidArgumentsAreRejected()
    {
        using var x = Tensor.FromArray(_device, Rand(2 * 3 * 4, 13), 2, 3, 4);
        Assert.Throws<ArgumentException>(() => Ops.AffineResample(x, new float[12]));
        using var x4 = Tensor.FromArray(_device, Rand(2 * 1 * 4 * 5, 14), 2, 1, 4, 5);
        Assert.Throws<ArgumentException>(() => Ops.AffineResample(x4, new float[6]));
        Assert.Throws<ArgumentException>(() => Ops.AffineResample(x4, [1, 0, float.NaN, 0, 1, 0, 1, 0, 0, 0, 1, 0]));
        Assert.Throws<ArgumentException>(() => new AugmentPipe(-0.1));
        Assert.Throws<ArgumentException>(() => Only("rotate_int").Apply(x4, 1, 0));
    }
}

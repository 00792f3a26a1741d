// Float64 references for the augmentation resampler (Edm.Kernels/Augment.cs) and the exact pixel
// blits of NVlabs/edm training/augment.py. The sampler is written from the definitions (Keys 1981
// cubic convolution kernel with a = -1/2 evaluated at each tap distance; reflect padding in
// augment.py's form n - 1 - |n - 1 - (i mod (2n - 2))|), not from the kernel's factored weights.
namespace Edm.Verification;

/// <summary>Float64 affine resampling and exact flips/translations; images are (B, C, H, W) row-major.</summary>
public static class AugmentReference
{
    /// <summary>Keys cubic convolution kernel with a = -1/2 at distance d.</summary>
    public static double Keys(double d)
    {
        d = Math.Abs(d);
        if (d <= 1) return 1.5 * d * d * d - 2.5 * d * d + 1;
        if (d < 2) return -0.5 * d * d * d + 2.5 * d * d - 4 * d + 2;
        return 0;
    }

    /// <summary>augment.py's reflect index: n - 1 - |n - 1 - (i mod (2n - 2))| (0 when n = 1).</summary>
    public static int ReflectIndex(long i, int n)
    {
        if (n == 1) return 0;
        long period = 2L * n - 2;
        long r = ((i % period) + period) % period;
        return (int)(n - 1 - Math.Abs(n - 1 - r));
    }

    /// <summary>
    /// y (B, C, H, W)[b, c, oy, ox] = sum over the 4x4 taps around (sx, sy) = M_b (ox, oy, 1) of
    /// Keys(sx - i) Keys(sy - j) x[b, c, refl(j), refl(i)]; m (B, 6) = [a, b, c, d, e, f] per sample.
    /// </summary>
    public static double[] AffineBicubic(double[] x, int batch, int channels, int h, int w, double[] m)
    {
        var y = new double[x.Length];
        for (int b = 0; b < batch; b++)
            for (int c = 0; c < channels; c++)
                for (int oy = 0; oy < h; oy++)
                    for (int ox = 0; ox < w; ox++)
                    {
                        double sx = m[6 * b] * ox + m[6 * b + 1] * oy + m[6 * b + 2];
                        double sy = m[6 * b + 3] * ox + m[6 * b + 4] * oy + m[6 * b + 5];
                        long ix = (long)Math.Floor(sx), iy = (long)Math.Floor(sy);
                        double acc = 0;
                        for (long j = iy - 1; j <= iy + 2; j++)
                            for (long i = ix - 1; i <= ix + 2; i++)
                                acc += Keys(sx - i) * Keys(sy - j) * x[((b * channels + c) * h + ReflectIndex(j, h)) * w + ReflectIndex(i, w)];
                        y[((b * channels + c) * h + oy) * w + ox] = acc;
                    }
        return y;
    }

    /// <summary>
    /// The pixel-coordinate matrix [a, b, c, d, e, f] of a map given in centred coordinates
    /// (origin at ctr = ((W-1)/2, (H-1)/2)): input = ctr + L (output - ctr) + t.
    /// </summary>
    public static double[] CentredToPixel(double l00, double l01, double l10, double l11, double tx, double ty, int h, int w)
    {
        double cx = (w - 1) / 2.0, cy = (h - 1) / 2.0;
        return [l00, l01, cx + tx - l00 * cx - l01 * cy, l10, l11, cy + ty - l10 * cx - l11 * cy];
    }

    /// <summary>
    /// augment.py's pixel blits for one sample: optional x-flip, y-flip, then integer translation
    /// out[y, x] = in[refl(y + ty), refl(x - tx)]; x (C, H, W) of sample b is read from the batch.
    /// </summary>
    public static double[] Blit(double[] x, int batch, int channels, int h, int w, int[] xflip, int[] yflip, int[] tx, int[] ty)
    {
        var y = new double[x.Length];
        for (int b = 0; b < batch; b++)
            for (int c = 0; c < channels; c++)
                for (int oy = 0; oy < h; oy++)
                    for (int ox = 0; ox < w; ox++)
                    {
                        // Translation reads the flipped image, the flips read x.
                        int py = ReflectIndex(oy + ty[b], h), px = ReflectIndex(ox - tx[b], w);
                        int sy = yflip[b] == 1 ? h - 1 - py : py, sx = xflip[b] == 1 ? w - 1 - px : px;
                        y[((b * channels + c) * h + oy) * w + ox] = x[((b * channels + c) * h + sy) * w + sx];
                    }
        return y;
    }

    /// <summary>Transposes H and W of every plane (square images): y[.., i, j] = x[.., j, i].</summary>
    public static double[] Transpose(double[] x, int planes, int n)
    {
        var y = new double[x.Length];
        for (int p = 0; p < planes; p++)
            for (int i = 0; i < n; i++)
                for (int j = 0; j < n; j++) y[(p * n + i) * n + j] = x[(p * n + j) * n + i];
        return y;
    }
}

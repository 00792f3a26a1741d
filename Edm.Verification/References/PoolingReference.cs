// float64 reference for nearest upsampling x2 and 2x2 average pooling (Edm.Kernels/Pooling.cs).
// Images are (P, H, W) planes (P = N*C).
namespace Edm.Verification;

/// <summary>Resampling by 2 in double precision.</summary>
public static class PoolingReference
{
    /// <summary>y (P, 2H, 2W)[p, i, j] = x (P, H, W)[p, i/2, j/2].</summary>
    public static double[] UpsampleNearest2x(double[] x, int planes, int h, int w)
    {
        var y = new double[planes * 4 * h * w];
        for (int p = 0; p < planes; p++)
            for (int i = 0; i < 2 * h; i++)
                for (int j = 0; j < 2 * w; j++)
                    y[(p * 2 * h + i) * 2 * w + j] = x[(p * h + i / 2) * w + j / 2];
        return y;
    }

    /// <summary>dx (P, H, W) = 2x2 block sums of gy (P, 2H, 2W).</summary>
    public static double[] UpsampleNearest2xBackward(double[] gy, int planes, int h, int w)
    {
        var dx = new double[planes * h * w];
        for (int p = 0; p < planes; p++)
            for (int i = 0; i < 2 * h; i++)
                for (int j = 0; j < 2 * w; j++)
                    dx[(p * h + i / 2) * w + j / 2] += gy[(p * 2 * h + i) * 2 * w + j];
        return dx;
    }

    /// <summary>y (P, H/2, W/2) = 2x2 block means of x (P, H, W); H, W even.</summary>
    public static double[] AvgPool2x(double[] x, int planes, int h, int w)
    {
        int ho = h / 2, wo = w / 2;
        var y = new double[planes * ho * wo];
        for (int p = 0; p < planes; p++)
            for (int i = 0; i < h; i++)
                for (int j = 0; j < w; j++)
                    y[(p * ho + i / 2) * wo + j / 2] += 0.25 * x[(p * h + i) * w + j];
        return y;
    }

    /// <summary>dx (P, H, W) = gy (P, H/2, W/2)[p, i/2, j/2] / 4.</summary>
    public static double[] AvgPool2xBackward(double[] gy, int planes, int h, int w)
    {
        int ho = h / 2, wo = w / 2;
        var dx = new double[planes * h * w];
        for (int p = 0; p < planes; p++)
            for (int i = 0; i < h; i++)
                for (int j = 0; j < w; j++)
                    dx[(p * h + i) * w + j] = 0.25 * gy[(p * ho + i / 2) * wo + j / 2];
        return dx;
    }
}

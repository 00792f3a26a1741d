// float64 reference for group normalisation (Edm.Kernels/GroupNorm.cs), plain loops.
// x (N, C, HW) with C = G * Cg; weight, bias (C) or null; mean, rstd (N, G).
namespace Edm.Verification;

/// <summary>Group norm forward and backward in double precision.</summary>
public static class GroupNormReference
{
    /// <summary>y (N, C, HW), mean and rstd (N, G): two-pass mean and biased variance per group.</summary>
    public static (double[] Y, double[] Mean, double[] Rstd) Forward(double[] x, int n, int c, int hw, int g,
        double[]? weight, double[]? bias, double eps)
    {
        int cg = c / g, len = cg * hw;
        var y = new double[n * c * hw];
        var mean = new double[n * g];
        var rstd = new double[n * g];
        for (int b = 0; b < n * g; b++)
        {
            double mu = 0;
            for (int j = 0; j < len; j++) mu += x[b * len + j];
            mu /= len;
            double v = 0;
            for (int j = 0; j < len; j++) v += (x[b * len + j] - mu) * (x[b * len + j] - mu);
            double r = 1 / Math.Sqrt(v / len + eps);
            mean[b] = mu;
            rstd[b] = r;
            for (int j = 0; j < len; j++)
            {
                int ch = (b % g) * cg + j / hw;
                double xhat = (x[b * len + j] - mu) * r;
                y[b * len + j] = weight is null ? xhat : xhat * weight[ch] + bias![ch];
            }
        }
        return (y, mean, rstd);
    }

    /// <summary>
    /// dx (N, C, HW), dweight and dbias (C) for upstream gradient gy (N, C, HW), with the statistics
    /// recomputed in double: dx = rstd (dyhat - avg dyhat - xhat avg(dyhat xhat)), dyhat = gy * weight.
    /// </summary>
    public static (double[] Dx, double[] DWeight, double[] DBias) Backward(double[] x, double[] gy, int n, int c, int hw, int g,
        double[]? weight, double eps)
    {
        int cg = c / g, len = cg * hw;
        var (_, mean, rstd) = Forward(x, n, c, hw, g, null, null, eps);
        var dx = new double[n * c * hw];
        var dw = new double[c];
        var db = new double[c];
        for (int b = 0; b < n * g; b++)
        {
            double mu = mean[b], r = rstd[b], s1 = 0, s2 = 0;
            for (int j = 0; j < len; j++)
            {
                int ch = (b % g) * cg + j / hw;
                double xhat = (x[b * len + j] - mu) * r;
                double dyhat = gy[b * len + j] * (weight?[ch] ?? 1.0);
                s1 += dyhat;
                s2 += dyhat * xhat;
                dw[ch] += gy[b * len + j] * xhat;
                db[ch] += gy[b * len + j];
            }
            for (int j = 0; j < len; j++)
            {
                int ch = (b % g) * cg + j / hw;
                double xhat = (x[b * len + j] - mu) * r;
                double dyhat = gy[b * len + j] * (weight?[ch] ?? 1.0);
                dx[b * len + j] = r * (dyhat - s1 / len - xhat * s2 / len);
            }
        }
        return (dx, dw, db);
    }
    /// <summary>
    /// SiLU(GroupNorm(x + e) * w + b) with e (n, c) added to every element of its channel, and its
    /// backward for gy: (y, dx, dweight, dbias, de), de[n, c] the sum of dx over the channel.
    /// </summary>
    public static (double[] Y, double[] Dx, double[] DWeight, double[] DBias, double[] DAddend) SiluAddend(double[] x, double[] e, double[] gy,
        int n, int c, int hw, int g, double[] w, double[] b, double eps)
    {
        var xe = new double[x.Length];
        for (int i = 0; i < x.Length; i++) xe[i] = x[i] + e[i / hw];
        var u = Forward(xe, n, c, hw, g, w, b, eps).Y;
        var y = new double[u.Length];
        var gu = new double[u.Length];
        for (int i = 0; i < u.Length; i++)
        {
            double sg = 1 / (1 + Math.Exp(-u[i]));
            y[i] = u[i] * sg;
            gu[i] = gy[i] * sg * (1 + u[i] * (1 - sg));
        }
        var (dx, dw, db) = Backward(xe, gu, n, c, hw, g, w, eps);
        var de = new double[n * c];
        for (int i = 0; i < dx.Length; i++) de[i / hw] += dx[i];
        return (y, dx, dw, db, de);
    }
}

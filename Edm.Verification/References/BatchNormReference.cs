// Float64 reference for batch norm (Edm.Kernels/BatchNorm.cs), PyTorch BatchNorm2d semantics.
// x (N, C, HW) flattened; weight, bias, running statistics (C).
namespace Edm.Verification;

/// <summary>Batch norm in double precision.</summary>
public static class BatchNormReference
{
    /// <summary>
    /// y = (x - mean_c) / sqrt(var_c + eps) * w_c + b_c. Training: mean and biased variance of
    /// x[:, c] over N and HW, and (rm, rv) returned updated with momentum (rv with the unbiased
    /// variance); inference: mean = rm, var = rv, and rm, rv returned unchanged.
    /// </summary>
    public static (double[] Y, double[] RunningMean, double[] RunningVar) Forward(double[] x, double[]? w, double[]? b,
        double[] rm, double[] rv, int n, int c, int hw, bool training, double momentum, double eps)
    {
        int m = n * hw;
        var mean = new double[c];
        var var = new double[c];
        var nrm = (double[])rm.Clone();
        var nrv = (double[])rv.Clone();
        for (int ch = 0; ch < c; ch++)
        {
            if (training)
            {
                double s = 0;
                for (int i = 0; i < n; i++) for (int j = 0; j < hw; j++) s += x[(i * c + ch) * hw + j];
                double mu = s / m, q = 0;
                for (int i = 0; i < n; i++) for (int j = 0; j < hw; j++) { double d = x[(i * c + ch) * hw + j] - mu; q += d * d; }
                mean[ch] = mu;
                var[ch] = q / m;
                nrm[ch] = (1 - momentum) * rm[ch] + momentum * mu;
                nrv[ch] = (1 - momentum) * rv[ch] + momentum * q / (m - 1);
            }
            else { mean[ch] = rm[ch]; var[ch] = rv[ch]; }
        }
        var y = new double[x.Length];
        for (int i = 0; i < n; i++)
            for (int ch = 0; ch < c; ch++)
            {
                double r = 1 / Math.Sqrt(var[ch] + eps);
                for (int j = 0; j < hw; j++)
                {
                    int k = (i * c + ch) * hw + j;
                    double v = (x[k] - mean[ch]) * r;
                    y[k] = w is null ? v : v * w[ch] + b![ch];
                }
            }
        return (y, nrm, nrv);
    }

    /// <summary>
    /// Gradients for dy (N, C, HW): db = sum dy, dw = sum dy xhat; dx = w r (dy - db/M - xhat dw/M)
    /// in training, w r dy in inference (running statistics rm, rv are constants).
    /// </summary>
    public static (double[] Dx, double[] Dw, double[] Db) Backward(double[] x, double[]? w, double[] dy,
        double[] rm, double[] rv, int n, int c, int hw, bool training, double eps)
    {
        int m = n * hw;
        var dx = new double[x.Length];
        var dw = new double[c];
        var db = new double[c];
        for (int ch = 0; ch < c; ch++)
        {
            double mu = rm[ch], v = rv[ch];
            if (training)
            {
                double s = 0, q = 0;
                for (int i = 0; i < n; i++) for (int j = 0; j < hw; j++) s += x[(i * c + ch) * hw + j];
                mu = s / m;
                for (int i = 0; i < n; i++) for (int j = 0; j < hw; j++) { double d = x[(i * c + ch) * hw + j] - mu; q += d * d; }
                v = q / m;
            }
            double r = 1 / Math.Sqrt(v + eps);
            for (int i = 0; i < n; i++)
                for (int j = 0; j < hw; j++)
                {
                    int k = (i * c + ch) * hw + j;
                    db[ch] += dy[k];
                    dw[ch] += dy[k] * (x[k] - mu) * r;
                }
            double g = w is null ? 1 : w[ch];
            for (int i = 0; i < n; i++)
                for (int j = 0; j < hw; j++)
                {
                    int k = (i * c + ch) * hw + j;
                    double xhat = (x[k] - mu) * r;
                    dx[k] = g * r * (training ? dy[k] - db[ch] / m - xhat * dw[ch] / m : dy[k]);
                }
        }
        return (dx, dw, db);
    }
}

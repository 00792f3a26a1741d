// float64 reference for softmax along the last axis (Edm.Kernels/Softmax.cs), plain loops.
namespace Edm.Verification;

/// <summary>Softmax forward and backward in double precision.</summary>
public static class SoftmaxReference
{
    /// <summary>y (rows, cols) = exp(x - rowmax) / rowsum; x (rows, cols).</summary>
    public static double[] Forward(double[] x, int rows, int cols)
    {
        var y = new double[rows * cols];
        for (int r = 0; r < rows; r++)
        {
            double m = double.NegativeInfinity;
            for (int j = 0; j < cols; j++) m = Math.Max(m, x[r * cols + j]);
            double sum = 0;
            for (int j = 0; j < cols; j++) sum += y[r * cols + j] = Math.Exp(x[r * cols + j] - m);
            for (int j = 0; j < cols; j++) y[r * cols + j] /= sum;
        }
        return y;
    }

    /// <summary>dx (rows, cols) = y * (gy - rowsum(gy * y)); y, gy (rows, cols).</summary>
    public static double[] Backward(double[] y, double[] gy, int rows, int cols)
    {
        var dx = new double[rows * cols];
        for (int r = 0; r < rows; r++)
        {
            double dot = 0;
            for (int j = 0; j < cols; j++) dot += gy[r * cols + j] * y[r * cols + j];
            for (int j = 0; j < cols; j++) dx[r * cols + j] = y[r * cols + j] * (gy[r * cols + j] - dot);
        }
        return dx;
    }
}

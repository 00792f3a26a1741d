// Float64 references for Gemm and Linear: plain loops, shapes in comments (llm.c style).
namespace Edm.Verification;

/// <summary>Float64 GEMM and Linear references.</summary>
public static class GemmReference
{
    /// <summary>
    /// c (batch, M, N) = op(a[b]) op(b[b]) with a (batchA, M, K) or (batchA, K, M) when transA,
    /// b (batchB, K, N) or (batchB, N, K) when transB; a batch of 1 broadcasts.
    /// </summary>
    public static double[] MatMul(double[] a, double[] b, int batchA, int batchB, int m, int n, int k, bool transA, bool transB)
    {
        int batch = Math.Max(batchA, batchB);
        var c = new double[batch * m * n];
        for (int bt = 0; bt < batch; bt++)
        {
            int ao = (batchA == 1 ? 0 : bt) * m * k, bo = (batchB == 1 ? 0 : bt) * k * n;
            for (int i = 0; i < m; i++)
                for (int j = 0; j < n; j++)
                {
                    double s = 0;
                    for (int p = 0; p < k; p++)
                    {
                        double av = transA ? a[ao + p * m + i] : a[ao + i * k + p];
                        double bv = transB ? b[bo + j * k + p] : b[bo + p * n + j];
                        s += av * bv;
                    }
                    c[(bt * m + i) * n + j] = s;
                }
        }
        return c;
    }

    /// <summary>y (N, out) = x (N, in) W^T (W: (out, in)) + bias (out).</summary>
    public static double[] Linear(double[] x, double[] w, double[]? bias, int n, int inF, int outF)
    {
        var y = new double[n * outF];
        for (int r = 0; r < n; r++)
            for (int o = 0; o < outF; o++)
            {
                double s = bias?[o] ?? 0;
                for (int i = 0; i < inF; i++) s += x[r * inF + i] * w[o * inF + i];
                y[r * outF + o] = s;
            }
        return y;
    }

    /// <summary>Linear backward: dx (N, in) = dy W, dW (out, in) = dy^T x, db (out) = sum_rows dy.</summary>
    public static (double[] Dx, double[] Dw, double[] Db) LinearBackward(double[] x, double[] w, double[] dy, int n, int inF, int outF)
    {
        var dx = new double[n * inF];
        var dw = new double[outF * inF];
        var db = new double[outF];
        for (int r = 0; r < n; r++)
            for (int o = 0; o < outF; o++)
            {
                double g = dy[r * outF + o];
                db[o] += g;
                for (int i = 0; i < inF; i++)
                {
                    dx[r * inF + i] += g * w[o * inF + i];
                    dw[o * inF + i] += g * x[r * inF + i];
                }
            }
        return (dx, dw, db);
    }
}

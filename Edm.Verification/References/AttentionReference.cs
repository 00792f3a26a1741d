// float64 reference for scaled dot-product attention (Edm.Kernels/Attention.cs), plain loops that
// materialise the full score matrix of each head.
// q (BH, Nq, d), k and v (BH, Nk, d), o (BH, Nq, d), lse (BH, Nq).
namespace Edm.Verification;

/// <summary>Attention forward and backward in double precision.</summary>
public static class AttentionReference
{
    /// <summary>o = softmax(scale q k^T) v per head and lse = log sum_j exp(scale q_i . k_j).</summary>
    public static (double[] O, double[] Lse) Forward(double[] q, double[] k, double[] v, int bh, int nq, int nk, int d, double scale)
    {
        var o = new double[bh * nq * d];
        var lse = new double[bh * nq];
        var p = new double[nk];
        for (int h = 0; h < bh; h++)
            for (int i = 0; i < nq; i++)
            {
                double m = double.NegativeInfinity;
                for (int j = 0; j < nk; j++)
                {
                    double sij = 0;
                    for (int c = 0; c < d; c++) sij += q[(h * nq + i) * d + c] * k[(h * nk + j) * d + c];
                    p[j] = scale * sij;
                    m = Math.Max(m, p[j]);
                }
                double l = 0;
                for (int j = 0; j < nk; j++) l += p[j] = Math.Exp(p[j] - m);
                for (int j = 0; j < nk; j++)
                    for (int c = 0; c < d; c++) o[(h * nq + i) * d + c] += p[j] / l * v[(h * nk + j) * d + c];
                lse[h * nq + i] = m + Math.Log(l);
            }
        return (o, lse);
    }

    /// <summary>
    /// dq, dk, dv for upstream gradient dO (BH, Nq, d): P = softmax(S), dV = P^T dO, dP = dO V^T,
    /// dS = P (dP - rowsum(dP P)), dQ = scale dS K, dK = scale dS^T Q.
    /// </summary>
    public static (double[] Dq, double[] Dk, double[] Dv) Backward(double[] q, double[] k, double[] v, double[] dO,
        int bh, int nq, int nk, int d, double scale)
    {
        var dq = new double[bh * nq * d];
        var dk = new double[bh * nk * d];
        var dv = new double[bh * nk * d];
        var p = new double[nk];
        var dp = new double[nk];
        for (int h = 0; h < bh; h++)
            for (int i = 0; i < nq; i++)
            {
                double m = double.NegativeInfinity;
                for (int j = 0; j < nk; j++)
                {
                    double sij = 0;
                    for (int c = 0; c < d; c++) sij += q[(h * nq + i) * d + c] * k[(h * nk + j) * d + c];
                    p[j] = scale * sij;
                    m = Math.Max(m, p[j]);
                }
                double l = 0;
                for (int j = 0; j < nk; j++) l += p[j] = Math.Exp(p[j] - m);
                double rowDot = 0;
                for (int j = 0; j < nk; j++)
                {
                    p[j] /= l;
                    double g = 0;
                    for (int c = 0; c < d; c++) g += dO[(h * nq + i) * d + c] * v[(h * nk + j) * d + c];
                    dp[j] = g;
                    rowDot += p[j] * g;
                }
                for (int j = 0; j < nk; j++)
                {
                    double ds = p[j] * (dp[j] - rowDot);
                    for (int c = 0; c < d; c++)
                    {
                        dv[(h * nk + j) * d + c] += p[j] * dO[(h * nq + i) * d + c];
                        dq[(h * nq + i) * d + c] += scale * ds * k[(h * nk + j) * d + c];
                        dk[(h * nk + j) * d + c] += scale * ds * q[(h * nq + i) * d + c];
                    }
                }
            }
        return (dq, dk, dv);
    }
    /// <summary>
    /// The packed layout of Ops.QkvAttentionForward: qkv (bh, d, 3, n) -> O (bh, d, n) and lse (bh, n),
    /// by taking q, k, v (bh, n, d) out of it and running <see cref="Forward"/>.
    /// </summary>
    public static (double[] O, double[] Lse) QkvForward(double[] qkv, int bh, int d, int n, double scale)
    {
        var (q, k, v) = Unpack(qkv, bh, d, n);
        var (o, lse) = Forward(q, k, v, bh, n, n, d, scale);
        return (Transpose(o, bh, n, d), lse);
    }

    /// <summary>Gradient of qkv (bh, d, 3, n) for the packed layout, dO (bh, d, n); via <see cref="Backward"/>.</summary>
    public static double[] QkvBackward(double[] qkv, double[] dO, int bh, int d, int n, double scale)
    {
        var (q, k, v) = Unpack(qkv, bh, d, n);
        var (dq, dk, dv) = Backward(q, k, v, Transpose(dO, bh, d, n), bh, n, n, d, scale);
        var g = new double[qkv.Length];
        for (int h = 0; h < bh; h++)
            for (int c = 0; c < d; c++)
                for (int i = 0; i < n; i++)
                {
                    long src = ((long)h * n + i) * d + c, dst = (((long)h * d + c) * 3) * n + i;
                    g[dst] = dq[src];
                    g[dst + n] = dk[src];
                    g[dst + 2 * n] = dv[src];
                }
        return g;
    }

    static (double[] Q, double[] K, double[] V) Unpack(double[] qkv, int bh, int d, int n)
    {
        var q = new double[bh * n * d];
        var k = new double[q.Length];
        var v = new double[q.Length];
        for (int h = 0; h < bh; h++)
            for (int c = 0; c < d; c++)
                for (int i = 0; i < n; i++)
                {
                    long src = (((long)h * d + c) * 3) * n + i, dst = ((long)h * n + i) * d + c;
                    q[dst] = qkv[src];
                    k[dst] = qkv[src + n];
                    v[dst] = qkv[src + 2 * n];
                }
        return (q, k, v);
    }

    /// <summary>(bh, rows, cols) -> (bh, cols, rows).</summary>
    static double[] Transpose(double[] x, int bh, int rows, int cols)
    {
        var y = new double[x.Length];
        for (int h = 0; h < bh; h++)
            for (int r = 0; r < rows; r++)
                for (int c = 0; c < cols; c++)
                    y[((long)h * cols + c) * rows + r] = x[((long)h * rows + r) * cols + c];
        return y;
    }
}

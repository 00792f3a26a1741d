// Float64 references for Conv2d (stride 1, zero padding, NCHW): direct loops from the defining sums.
namespace Edm.Verification;

/// <summary>Float64 Conv2d references; shapes x (B, Cin, H, W), w (Cout, Cin, k, k), y (B, Cout, Ho, Wo).</summary>
public static class Conv2dReference
{
    /// <summary>y[b,co,oy,ox] = bias[co] + sum_{ci,ky,kx} w[co,ci,ky,kx] x[b,ci,oy+ky-pad,ox+kx-pad]; Ho = H+2pad-k+1.</summary>
    public static double[] Forward(double[] x, double[] w, double[]? bias, int batch, int cin, int h, int wd, int cout, int k, int pad)
    {
        int ho = h + 2 * pad - k + 1, wo = wd + 2 * pad - k + 1;
        var y = new double[batch * cout * ho * wo];
        for (int b = 0; b < batch; b++)
            for (int co = 0; co < cout; co++)
                for (int oy = 0; oy < ho; oy++)
                    for (int ox = 0; ox < wo; ox++)
                    {
                        double s = bias?[co] ?? 0;
                        for (int ci = 0; ci < cin; ci++)
                            for (int ky = 0; ky < k; ky++)
                                for (int kx = 0; kx < k; kx++)
                                {
                                    int iy = oy + ky - pad, ix = ox + kx - pad;
                                    if (iy < 0 || iy >= h || ix < 0 || ix >= wd) continue;
                                    s += w[((co * cin + ci) * k + ky) * k + kx] * x[((b * cin + ci) * h + iy) * wd + ix];
                                }
                        y[((b * cout + co) * ho + oy) * wo + ox] = s;
                    }
        return y;
    }

    /// <summary>Backward of <see cref="Forward"/> for output gradient dy (B, Cout, Ho, Wo): dx, dW and db by scattering each term.</summary>
    public static (double[] Dx, double[] Dw, double[] Db) Backward(double[] x, double[] w, double[] dy, int batch, int cin, int h, int wd, int cout, int k, int pad)
    {
        int ho = h + 2 * pad - k + 1, wo = wd + 2 * pad - k + 1;
        var dx = new double[x.Length];
        var dw = new double[w.Length];
        var db = new double[cout];
        for (int b = 0; b < batch; b++)
            for (int co = 0; co < cout; co++)
                for (int oy = 0; oy < ho; oy++)
                    for (int ox = 0; ox < wo; ox++)
                    {
                        double g = dy[((b * cout + co) * ho + oy) * wo + ox];
                        db[co] += g;
                        for (int ci = 0; ci < cin; ci++)
                            for (int ky = 0; ky < k; ky++)
                                for (int kx = 0; kx < k; kx++)
                                {
                                    int iy = oy + ky - pad, ix = ox + kx - pad;
                                    if (iy < 0 || iy >= h || ix < 0 || ix >= wd) continue;
                                    int wi = ((co * cin + ci) * k + ky) * k + kx, xi = ((b * cin + ci) * h + iy) * wd + ix;
                                    dx[xi] += g * w[wi];
                                    dw[wi] += g * x[xi];
                                }
                    }
        return (dx, dw, db);
    }
}

// Float64 references for Conv2d (NCHW, zero padding): direct loops from the defining sums. The
// general form takes kernel kh x kw, stride (sh, sw) and padding per side (top, bottom, left, right);
// the square stride-1 form is its special case.
using Edm.Kernels;

namespace Edm.Verification;

/// <summary>Float64 Conv2d references; shapes x (B, Cin, H, W), w (Cout, Cin, kh, kw), y (B, Cout, Ho, Wo).</summary>
public static class Conv2dReference
{
    /// <summary>Stride 1, square k, padding pad on every side; Ho = H+2pad-k+1.</summary>
    public static double[] Forward(double[] x, double[] w, double[]? bias, int batch, int cin, int h, int wd, int cout, int k, int pad) =>
        Forward(x, w, bias, batch, cin, h, wd, cout, k, k, Conv2dParams.Pad(pad));

    /// <summary>Backward of the stride-1 square form.</summary>
    public static (double[] Dx, double[] Dw, double[] Db) Backward(double[] x, double[] w, double[] dy, int batch, int cin, int h, int wd, int cout, int k, int pad) =>
        Backward(x, w, dy, batch, cin, h, wd, cout, k, k, Conv2dParams.Pad(pad));

    /// <summary>Output size (Ho, Wo) = ((H + pt + pb - kh) / sh + 1, (W + pl + pr - kw) / sw + 1), floor division.</summary>
    public static (int Ho, int Wo) OutputSize(int h, int wd, int kh, int kw, Conv2dParams p) =>
        ((h + p.PadTop + p.PadBottom - kh) / p.StrideH + 1, (wd + p.PadLeft + p.PadRight - kw) / p.StrideW + 1);

    /// <summary>y[b,co,oy,ox] = bias[co] + sum_{ci,ky,kx} w[co,ci,ky,kx] x[b,ci,oy sh+ky-pt,ox sw+kx-pl] (zero outside x).</summary>
    public static double[] Forward(double[] x, double[] w, double[]? bias, int batch, int cin, int h, int wd, int cout, int kh, int kw, Conv2dParams p)
    {
        var (ho, wo) = OutputSize(h, wd, kh, kw, p);
        var y = new double[batch * cout * ho * wo];
        for (int b = 0; b < batch; b++)
            for (int co = 0; co < cout; co++)
                for (int oy = 0; oy < ho; oy++)
                    for (int ox = 0; ox < wo; ox++)
                    {
                        double s = bias?[co] ?? 0;
                        for (int ci = 0; ci < cin; ci++)
                            for (int ky = 0; ky < kh; ky++)
                                for (int kx = 0; kx < kw; kx++)
                                {
                                    int iy = oy * p.StrideH + ky - p.PadTop, ix = ox * p.StrideW + kx - p.PadLeft;
                                    if (iy < 0 || iy >= h || ix < 0 || ix >= wd) continue;
                                    s += w[((co * cin + ci) * kh + ky) * kw + kx] * x[((b * cin + ci) * h + iy) * wd + ix];
                                }
                        y[((b * cout + co) * ho + oy) * wo + ox] = s;
                    }
        return y;
    }

    /// <summary>Backward of the general <see cref="Forward(double[], double[], double[], int, int, int, int, int, int, int, Conv2dParams)"/> for dy (B, Cout, Ho, Wo): dx, dW and db by scattering each term.</summary>
    public static (double[] Dx, double[] Dw, double[] Db) Backward(double[] x, double[] w, double[] dy, int batch, int cin, int h, int wd, int cout, int kh, int kw, Conv2dParams p)
    {
        var (ho, wo) = OutputSize(h, wd, kh, kw, p);
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
                            for (int ky = 0; ky < kh; ky++)
                                for (int kx = 0; kx < kw; kx++)
                                {
                                    int iy = oy * p.StrideH + ky - p.PadTop, ix = ox * p.StrideW + kx - p.PadLeft;
                                    if (iy < 0 || iy >= h || ix < 0 || ix >= wd) continue;
                                    int wi = ((co * cin + ci) * kh + ky) * kw + kx, xi = ((b * cin + ci) * h + iy) * wd + ix;
                                    dx[xi] += g * w[wi];
                                    dw[wi] += g * x[xi];
                                }
                    }
        return (dx, dw, db);
    }
}

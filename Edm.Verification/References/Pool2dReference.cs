// Float64 reference for windowed max / average pooling and adaptive average pooling
// (Edm.Kernels/Pool2d.cs), planes (P, H, W), written from PyTorch's definitions (ceil_mode=False).
using Edm.Kernels;

namespace Edm.Verification;

/// <summary>Pooling in double precision.</summary>
public static class Pool2dReference
{
    /// <summary>Output size ((H + pt + pb - kh) / sh + 1, (W + pl + pr - kw) / sw + 1).</summary>
    public static (int Ho, int Wo) OutputSize(int h, int w, int kh, int kw, Conv2dParams p) =>
        ((h + p.PadTop + p.PadBottom - kh) / p.StrideH + 1, (w + p.PadLeft + p.PadRight - kw) / p.StrideW + 1);

    /// <summary>
    /// Max (max = true) or average pooling of x (P, H, W). Max: the first maximum in window order.
    /// Average: sum of the taps inside the image / (kh kw if countIncludePad, else their number).
    /// Returns y (P, Ho, Wo) and, for max, the argmax (plane index) of every output.
    /// </summary>
    public static (double[] Y, int[] ArgMax) Forward(double[] x, int planes, int h, int w, int kh, int kw, Conv2dParams p, bool max, bool countIncludePad)
    {
        var (ho, wo) = OutputSize(h, w, kh, kw, p);
        var y = new double[planes * ho * wo];
        var arg = new int[y.Length];
        for (int q = 0; q < planes; q++)
            for (int oy = 0; oy < ho; oy++)
                for (int ox = 0; ox < wo; ox++)
                {
                    double best = double.NegativeInfinity, sum = 0;
                    int bi = -1, valid = 0;
                    for (int ky = 0; ky < kh; ky++)
                        for (int kx = 0; kx < kw; kx++)
                        {
                            int iy = oy * p.StrideH - p.PadTop + ky, ix = ox * p.StrideW - p.PadLeft + kx;
                            if (iy < 0 || iy >= h || ix < 0 || ix >= w) continue;
                            double v = x[(q * h + iy) * w + ix];
                            valid++;
                            sum += v;
                            if (bi < 0 || v > best) { best = v; bi = iy * w + ix; }
                        }
                    int o = (q * ho + oy) * wo + ox;
                    y[o] = max ? best : sum / (countIncludePad ? kh * kw : valid);
                    arg[o] = bi;
                }
        return (y, arg);
    }

    /// <summary>dx (P, H, W) for dy (P, Ho, Wo): max routes dy to each window's argmax; average spreads dy / count over the window's taps.</summary>
    public static double[] Backward(double[] x, double[] dy, int planes, int h, int w, int kh, int kw, Conv2dParams p, bool max, bool countIncludePad)
    {
        var (ho, wo) = OutputSize(h, w, kh, kw, p);
        var (_, arg) = Forward(x, planes, h, w, kh, kw, p, max, countIncludePad);
        var dx = new double[planes * h * w];
        for (int q = 0; q < planes; q++)
            for (int oy = 0; oy < ho; oy++)
                for (int ox = 0; ox < wo; ox++)
                {
                    int o = (q * ho + oy) * wo + ox;
                    if (max) { dx[q * h * w + arg[o]] += dy[o]; continue; }
                    int valid = 0;
                    for (int pass = 0; pass < 2; pass++)
                        for (int ky = 0; ky < kh; ky++)
                            for (int kx = 0; kx < kw; kx++)
                            {
                                int iy = oy * p.StrideH - p.PadTop + ky, ix = ox * p.StrideW - p.PadLeft + kx;
                                if (iy < 0 || iy >= h || ix < 0 || ix >= w) continue;
                                if (pass == 0) valid++;
                                else dx[(q * h + iy) * w + ix] += dy[o] / (countIncludePad ? kh * kw : valid);
                            }
                }
        return dx;
    }

    /// <summary>Adaptive average pooling of x (P, H, W) to (P, oh, ow): window rows floor(i H / oh) .. ceil((i+1) H / oh) - 1.</summary>
    public static double[] Adaptive(double[] x, int planes, int h, int w, int oh, int ow)
    {
        var y = new double[planes * oh * ow];
        for (int q = 0; q < planes; q++)
            for (int oy = 0; oy < oh; oy++)
                for (int ox = 0; ox < ow; ox++)
                {
                    int y0 = (int)Math.Floor((double)oy * h / oh), y1 = (int)Math.Ceiling((double)(oy + 1) * h / oh);
                    int x0 = (int)Math.Floor((double)ox * w / ow), x1 = (int)Math.Ceiling((double)(ox + 1) * w / ow);
                    double s = 0;
                    for (int iy = y0; iy < y1; iy++) for (int ix = x0; ix < x1; ix++) s += x[(q * h + iy) * w + ix];
                    y[(q * oh + oy) * ow + ox] = s / ((y1 - y0) * (x1 - x0));
                }
        return y;
    }

    /// <summary>Backward of <see cref="Adaptive"/>: each dy spread evenly over its window.</summary>
    public static double[] AdaptiveBackward(double[] dy, int planes, int h, int w, int oh, int ow)
    {
        var dx = new double[planes * h * w];
        for (int q = 0; q < planes; q++)
            for (int oy = 0; oy < oh; oy++)
                for (int ox = 0; ox < ow; ox++)
                {
                    int y0 = (int)Math.Floor((double)oy * h / oh), y1 = (int)Math.Ceiling((double)(oy + 1) * h / oh);
                    int x0 = (int)Math.Floor((double)ox * w / ow), x1 = (int)Math.Ceiling((double)(ox + 1) * w / ow);
                    double g = dy[(q * oh + oy) * ow + ox] / ((y1 - y0) * (x1 - x0));
                    for (int iy = y0; iy < y1; iy++) for (int ix = x0; ix < x1; ix++) dx[(q * h + iy) * w + ix] += g;
                }
        return dx;
    }
}

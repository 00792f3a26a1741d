// Float64 reference for bilinear resizing with align_corners=False (Edm.Kernels/Interpolate.cs),
// written from PyTorch's definition of F.interpolate(mode="bilinear"). Planes (P, H, W).
namespace Edm.Verification;

/// <summary>Bilinear resize in double precision.</summary>
public static class InterpolateReference
{
    /// <summary>Taps of output o on an axis of size n resized to m: src = max(0, (o + 0.5) n / m - 0.5).</summary>
    static (int I0, int I1, double L1) Tap(int o, int n, int m)
    {
        double src = Math.Max(0, (o + 0.5) * n / m - 0.5);
        int i0 = Math.Min((int)Math.Floor(src), n - 1);
        return (i0, Math.Min(i0 + 1, n - 1), src - i0);
    }

    /// <summary>y (P, oh, ow) = bilinear resize of x (P, H, W).</summary>
    public static double[] Forward(double[] x, int planes, int h, int w, int oh, int ow)
    {
        var y = new double[planes * oh * ow];
        for (int p = 0; p < planes; p++)
            for (int oy = 0; oy < oh; oy++)
                for (int ox = 0; ox < ow; ox++)
                {
                    var (y0, y1, ly) = Tap(oy, h, oh);
                    var (x0, x1, lx) = Tap(ox, w, ow);
                    double X(int iy, int ix) => x[(p * h + iy) * w + ix];
                    y[(p * oh + oy) * ow + ox] = (1 - ly) * ((1 - lx) * X(y0, x0) + lx * X(y0, x1)) + ly * ((1 - lx) * X(y1, x0) + lx * X(y1, x1));
                }
        return y;
    }

    /// <summary>dx (P, H, W) for dy (P, oh, ow): each output's four weights scattered back.</summary>
    public static double[] Backward(double[] dy, int planes, int h, int w, int oh, int ow)
    {
        var dx = new double[planes * h * w];
        for (int p = 0; p < planes; p++)
            for (int oy = 0; oy < oh; oy++)
                for (int ox = 0; ox < ow; ox++)
                {
                    var (y0, y1, ly) = Tap(oy, h, oh);
                    var (x0, x1, lx) = Tap(ox, w, ow);
                    double g = dy[(p * oh + oy) * ow + ox];
                    dx[(p * h + y0) * w + x0] += (1 - ly) * (1 - lx) * g;
                    dx[(p * h + y0) * w + x1] += (1 - ly) * lx * g;
                    dx[(p * h + y1) * w + x0] += ly * (1 - lx) * g;
                    dx[(p * h + y1) * w + x1] += ly * lx * g;
                }
        return dx;
    }
}

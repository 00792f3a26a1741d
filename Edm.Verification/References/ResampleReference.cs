// Float64 references for EDM's FIR resampling (networks.py Conv2d up/down), written from the
// PyTorch definitions: down = grouped conv2d (stride 2) as a gather; up = conv_transpose2d as a
// scatter of every input pixel times the kernel, cropped by the padding. Backward passes are the
// scatter/gather adjoints of those loops, independent of the kernels' formulation.
namespace Edm.Verification;

/// <summary>Float64 FIR resampling and EDM Conv2d (with up/down) references; planes are (N*C, H, W).</summary>
public static class ResampleReference
{
    /// <summary>The 2-D filter f f^T / (sum f)^2 (networks.py), (L, L).</summary>
    public static double[,] Filter2d(float[] f)
    {
        double sum = f.Sum(v => (double)v);
        var k = new double[f.Length, f.Length];
        for (int a = 0; a < f.Length; a++)
            for (int b = 0; b < f.Length; b++) k[a, b] = f[a] * (double)f[b] / (sum * sum);
        return k;
    }

    /// <summary>Output size of down: floor((H + 2p - L)/2) + 1.</summary>
    public static int DownSize(int h, int l, int p) => (h + 2 * p - l) / 2 + 1;
    /// <summary>Output size of up: 2(H-1) - 2p + L.</summary>
    public static int UpSize(int h, int l, int p) => 2 * (h - 1) - 2 * p + l;

    /// <summary>y (P, Ho, Wo)[oy,ox] = sum_{a,b} F[a,b] x[2oy+a-p, 2ox+b-p] (conv2d, groups = C, stride 2).</summary>
    public static double[] Down(double[] x, int planes, int h, int w, float[] f, int p)
    {
        var k = Filter2d(f);
        int l = f.Length, ho = DownSize(h, l, p), wo = DownSize(w, l, p);
        var y = new double[planes * ho * wo];
        for (int pl = 0; pl < planes; pl++)
            for (int oy = 0; oy < ho; oy++)
                for (int ox = 0; ox < wo; ox++)
                {
                    double s = 0;
                    for (int a = 0; a < l; a++)
                        for (int b = 0; b < l; b++)
                        {
                            int iy = 2 * oy + a - p, ix = 2 * ox + b - p;
                            if (iy >= 0 && iy < h && ix >= 0 && ix < w) s += k[a, b] * x[(pl * h + iy) * w + ix];
                        }
                    y[(pl * ho + oy) * wo + ox] = s;
                }
        return y;
    }

    /// <summary>Adjoint of <see cref="Down"/>: dx (P, H, W) from dy (P, Ho, Wo), by scattering.</summary>
    public static double[] DownBackward(double[] dy, int planes, int h, int w, float[] f, int p)
    {
        var k = Filter2d(f);
        int l = f.Length, ho = DownSize(h, l, p), wo = DownSize(w, l, p);
        var dx = new double[planes * h * w];
        for (int pl = 0; pl < planes; pl++)
            for (int oy = 0; oy < ho; oy++)
                for (int ox = 0; ox < wo; ox++)
                    for (int a = 0; a < l; a++)
                        for (int b = 0; b < l; b++)
                        {
                            int iy = 2 * oy + a - p, ix = 2 * ox + b - p;
                            if (iy >= 0 && iy < h && ix >= 0 && ix < w) dx[(pl * h + iy) * w + ix] += k[a, b] * dy[(pl * ho + oy) * wo + ox];
                        }
        return dx;
    }

    /// <summary>
    /// conv_transpose2d with kernel 4 F, stride 2, padding p, groups = C: every x[i, j] adds
    /// 4 F[a, b] x[i, j] at full-output position (2i+a, 2j+b), which is (2i+a-p, 2j+b-p) after cropping.
    /// </summary>
    public static double[] Up(double[] x, int planes, int h, int w, float[] f, int p)
    {
        var k = Filter2d(f);
        int l = f.Length, ho = UpSize(h, l, p), wo = UpSize(w, l, p);
        var y = new double[planes * ho * wo];
        for (int pl = 0; pl < planes; pl++)
            for (int i = 0; i < h; i++)
                for (int j = 0; j < w; j++)
                    for (int a = 0; a < l; a++)
                        for (int b = 0; b < l; b++)
                        {
                            int oy = 2 * i + a - p, ox = 2 * j + b - p;
                            if (oy >= 0 && oy < ho && ox >= 0 && ox < wo) y[(pl * ho + oy) * wo + ox] += 4 * k[a, b] * x[(pl * h + i) * w + j];
                        }
        return y;
    }

    /// <summary>Adjoint of <see cref="Up"/>: dx (P, H, W)[i,j] = sum 4 F[a,b] dy[2i+a-p, 2j+b-p].</summary>
    public static double[] UpBackward(double[] dy, int planes, int h, int w, float[] f, int p)
    {
        var k = Filter2d(f);
        int l = f.Length, ho = UpSize(h, l, p), wo = UpSize(w, l, p);
        var dx = new double[planes * h * w];
        for (int pl = 0; pl < planes; pl++)
            for (int i = 0; i < h; i++)
                for (int j = 0; j < w; j++)
                {
                    double s = 0;
                    for (int a = 0; a < l; a++)
                        for (int b = 0; b < l; b++)
                        {
                            int oy = 2 * i + a - p, ox = 2 * j + b - p;
                            if (oy >= 0 && oy < ho && ox >= 0 && ox < wo) s += 4 * k[a, b] * dy[(pl * ho + oy) * wo + ox];
                        }
                    dx[(pl * h + i) * w + j] = s;
                }
        return dx;
    }

    /// <summary>Shape of an image batch for the composite reference.</summary>
    public readonly record struct Img(int N, int C, int H, int W)
    {
        /// <summary>Planes N*C.</summary>
        public int Planes => N * C;
    }

    /// <summary>
    /// networks.py Conv2d.forward in float64: mode "up" | "down" | "none", w (Cout, Cin, k, k) or null,
    /// fused or sequential; returns y and its shape.
    /// </summary>
    public static (double[] Y, Img Shape) Conv(double[] x, Img s, double[]? w, int cout, int k, double[]? bias, string mode, float[] f, bool fused)
    {
        int fPad = (f.Length - 1) / 2, wPad = k / 2;
        double[] t = x;
        Img ts = s;
        if (w is not null && fused && mode == "up")
        {
            t = Up(x, s.Planes, s.H, s.W, f, wPad + fPad);
            ts = s with { H = UpSize(s.H, f.Length, wPad + fPad), W = UpSize(s.W, f.Length, wPad + fPad) };
            var y = Conv2dReference.Forward(t, w, bias, s.N, s.C, ts.H, ts.W, cout, k, 0);
            return (y, new Img(s.N, cout, ts.H - k + 1, ts.W - k + 1));
        }
        if (w is not null && fused && mode == "down")
        {
            int p = wPad + fPad;
            var c = Conv2dReference.Forward(x, w, null, s.N, s.C, s.H, s.W, cout, k, p);
            var cs = new Img(s.N, cout, s.H + 2 * p - k + 1, s.W + 2 * p - k + 1);
            var y = Down(c, cs.Planes, cs.H, cs.W, f, 0);
            var ys = cs with { H = DownSize(cs.H, f.Length, 0), W = DownSize(cs.W, f.Length, 0) };
            if (bias is not null) AddBias(y, bias, ys);
            return (y, ys);
        }
        if (mode == "up")
        {
            t = Up(x, s.Planes, s.H, s.W, f, fPad);
            ts = s with { H = UpSize(s.H, f.Length, fPad), W = UpSize(s.W, f.Length, fPad) };
        }
        else if (mode == "down")
        {
            t = Down(x, s.Planes, s.H, s.W, f, fPad);
            ts = s with { H = DownSize(s.H, f.Length, fPad), W = DownSize(s.W, f.Length, fPad) };
        }
        if (w is null) return (t, ts);
        var yy = Conv2dReference.Forward(t, w, bias, s.N, s.C, ts.H, ts.W, cout, k, wPad);
        return (yy, new Img(s.N, cout, ts.H, ts.W));
    }

    static void AddBias(double[] y, double[] bias, Img s)
    {
        for (int n = 0; n < s.N; n++)
            for (int c = 0; c < s.C; c++)
                for (int i = 0; i < s.H * s.W; i++) y[(n * s.C + c) * s.H * s.W + i] += bias[c];
    }
}

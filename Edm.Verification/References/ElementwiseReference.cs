// Float64 references for the foundation kernels: broadcasting binary ops, activations and their
// derivatives, reductions over axis sets, concat/slice. Plain loops over coordinates, written
// independently of the kernels' index arithmetic.
using MathNet.Numerics;

namespace Edm.Verification;

/// <summary>Float64 reference implementations (shapes in comments).</summary>
public static class ElementwiseReference
{
    /// <summary>NumPy broadcast shape.</summary>
    public static int[] BroadcastShape(int[] a, int[] b)
    {
        int r = Math.Max(a.Length, b.Length);
        var o = new int[r];
        for (int i = 0; i < r; i++)
        {
            int da = i - (r - a.Length) >= 0 ? a[i - (r - a.Length)] : 1;
            int db = i - (r - b.Length) >= 0 ? b[i - (r - b.Length)] : 1;
            o[i] = Math.Max(da, db);
        }
        return o;
    }

    static int[] Coords(long linear, int[] shape)
    {
        var c = new int[shape.Length];
        for (int i = shape.Length - 1; i >= 0; i--) { c[i] = (int)(linear % shape[i]); linear /= shape[i]; }
        return c;
    }

    // Element of x (shape xs) at output coordinates c (rank >= xs.Length), broadcasting.
    static double At(double[] x, int[] xs, int[] c)
    {
        long off = 0;
        int pad = c.Length - xs.Length;
        for (int i = 0; i < xs.Length; i++) off = off * xs[i] + (xs[i] == 1 ? 0 : c[pad + i]);
        return x[off];
    }

    /// <summary>out = f(a, b) broadcast; a (shape sa), b (shape sb).</summary>
    public static double[] Binary(double[] a, int[] sa, double[] b, int[] sb, Func<double, double, double> f)
    {
        var shape = BroadcastShape(sa, sb);
        long n = shape.Aggregate(1L, (p, d) => p * d);
        var y = new double[n];
        for (long i = 0; i < n; i++) { var c = Coords(i, shape); y[i] = f(At(a, sa, c), At(b, sb, c)); }
        return y;
    }

    /// <summary>out = c != 0 ? a : b, broadcast.</summary>
    public static double[] Where(double[] cnd, int[] sc, double[] a, int[] sa, double[] b, int[] sb)
    {
        var shape = BroadcastShape(BroadcastShape(sc, sa), sb);
        long n = shape.Aggregate(1L, (p, d) => p * d);
        var y = new double[n];
        for (long i = 0; i < n; i++) { var c = Coords(i, shape); y[i] = At(cnd, sc, c) != 0 ? At(a, sa, c) : At(b, sb, c); }
        return y;
    }

    /// <summary>Reduction of x (shape) over axes; kind: sum, mean, max, sumsq. Output in kept-axis row-major order.</summary>
    public static double[] Reduce(double[] x, int[] shape, int[] axes, string kind)
    {
        var red = new bool[shape.Length];
        if (axes.Length == 0) Array.Fill(red, true);
        foreach (var a in axes) red[a < 0 ? a + shape.Length : a] = true;
        var keptShape = shape.Where((_, i) => !red[i]).ToArray();
        long outputs = keptShape.Aggregate(1L, (p, d) => p * d);
        var acc = new double[outputs];
        var count = new long[outputs];
        Array.Fill(acc, kind == "max" ? double.NegativeInfinity : 0.0);
        for (long i = 0; i < x.Length; i++)
        {
            var c = Coords(i, shape);
            long o = 0;
            for (int k = 0; k < shape.Length; k++) if (!red[k]) o = o * shape[k] + c[k];
            double v = x[i];
            acc[o] = kind switch
            {
                "max" => Math.Max(acc[o], v),
                "sumsq" => acc[o] + v * v,
                _ => acc[o] + v,
            };
            count[o]++;
        }
        if (kind == "mean") for (long o = 0; o < outputs; o++) acc[o] /= count[o];
        return acc;
    }

    /// <summary>Concatenation along axis of row-major arrays.</summary>
    public static double[] Concat(int axis, (double[] Data, int[] Shape)[] xs)
    {
        int outer = 1, inner = 1;
        var s0 = xs[0].Shape;
        for (int i = 0; i < axis; i++) outer *= s0[i];
        for (int i = axis + 1; i < s0.Length; i++) inner *= s0[i];
        var y = new List<double>();
        for (int o = 0; o < outer; o++)
            foreach (var (d, s) in xs)
                for (int a = 0; a < s[axis]; a++)
                    for (int i = 0; i < inner; i++) y.Add(d[(o * s[axis] + a) * inner + i]);
        return y.ToArray();
    }

    /// <summary>x[..., start:start+len, ...] along axis.</summary>
    public static double[] Slice(double[] x, int[] shape, int axis, int start, int len)
    {
        int outer = 1, inner = 1;
        for (int i = 0; i < axis; i++) outer *= shape[i];
        for (int i = axis + 1; i < shape.Length; i++) inner *= shape[i];
        var y = new List<double>();
        for (int o = 0; o < outer; o++)
            for (int a = start; a < start + len; a++)
                for (int i = 0; i < inner; i++) y.Add(x[(o * shape[axis] + a) * inner + i]);
        return y.ToArray();
    }

    /// <summary>y = x.permute(perm) (torch semantics), row-major.</summary>
    public static double[] Permute(double[] x, int[] shape, int[] perm)
    {
        var outShape = perm.Select(p => shape[p]).ToArray();
        var y = new double[x.Length];
        for (long i = 0; i < x.Length; i++)
        {
            var c = Coords(i, outShape);
            var src = new int[shape.Length];
            for (int k = 0; k < perm.Length; k++) src[perm[k]] = c[k];
            long off = 0;
            for (int k = 0; k < shape.Length; k++) off = off * shape[k] + src[k];
            y[i] = x[off];
        }
        return y;
    }

    /// <summary>GELU, erf form.</summary>
    public static double Gelu(double x) => 0.5 * x * (1 + SpecialFunctions.Erf(x / Math.Sqrt(2)));
    /// <summary>d/dx GELU.</summary>
    public static double GeluGrad(double x) => 0.5 * (1 + SpecialFunctions.Erf(x / Math.Sqrt(2))) + x * Math.Exp(-0.5 * x * x) / Math.Sqrt(2 * Math.PI);
    /// <summary>GELU, tanh approximation.</summary>
    public static double GeluTanh(double x) => 0.5 * x * (1 + Math.Tanh(Math.Sqrt(2 / Math.PI) * (x + 0.044715 * x * x * x)));
    /// <summary>d/dx GELU (tanh form).</summary>
    public static double GeluTanhGrad(double x)
    {
        double k = Math.Sqrt(2 / Math.PI), t = Math.Tanh(k * (x + 0.044715 * x * x * x));
        return 0.5 * (1 + t) + 0.5 * x * (1 - t * t) * k * (1 + 3 * 0.044715 * x * x);
    }
    /// <summary>SiLU.</summary>
    public static double Silu(double x) => x / (1 + Math.Exp(-x));
    /// <summary>d/dx SiLU.</summary>
    public static double SiluGrad(double x) { double s = 1 / (1 + Math.Exp(-x)); return s * (1 + x * (1 - s)); }

    /// <summary>Widens a float array.</summary>
    public static double[] D(float[] x) => x.Select(v => (double)v).ToArray();
}

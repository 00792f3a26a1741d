// Float64 references of the optimizer kernels (Edm.Kernels/Optimizers.cs): plain loops, the
// textbook formulas, shared by tests and `verify`.
namespace Edm.Verification;

/// <summary>Float64 references of Adam, EMA, nan_to_num and the global norm.</summary>
public static class OptimizerReference
{
    /// <summary>
    /// One Adam step in place (Kingma &amp; Ba 2015, Algorithm 1): p, g, m, v all (n).
    /// mHat = m/(1-beta1^t), vHat = v/(1-beta2^t), p -= lr mHat/(sqrt(vHat)+eps).
    /// </summary>
    public static void AdamStep(double[] p, ReadOnlySpan<float> g, double[] m, double[] v,
        double lr, double beta1, double beta2, double eps, long t)
    {
        for (int i = 0; i < p.Length; i++)
        {
            m[i] = beta1 * m[i] + (1 - beta1) * g[i];
            v[i] = beta2 * v[i] + (1 - beta2) * g[i] * (double)g[i];
            double mHat = m[i] / (1 - Math.Pow(beta1, t));
            double vHat = v[i] / (1 - Math.Pow(beta2, t));
            p[i] -= lr * mHat / (Math.Sqrt(vHat) + eps);
        }
    }

    /// <summary>ema = beta ema + (1-beta) p, all (n).</summary>
    public static void Ema(double[] ema, ReadOnlySpan<float> p, double beta)
    {
        for (int i = 0; i < ema.Length; i++) ema[i] = beta * ema[i] + (1 - beta) * p[i];
    }

    /// <summary>nan -> nan, +inf -> posInf, -inf -> negInf, else x.</summary>
    public static double[] NanToNum(ReadOnlySpan<float> x, double nan = 0, double posInf = 1e5, double negInf = -1e5)
    {
        var y = new double[x.Length];
        for (int i = 0; i < x.Length; i++)
            y[i] = float.IsNaN(x[i]) ? nan : float.IsPositiveInfinity(x[i]) ? posInf : float.IsNegativeInfinity(x[i]) ? negInf : x[i];
        return y;
    }

    /// <summary>sqrt(sum over every tensor of x^2).</summary>
    public static double GlobalNorm(IEnumerable<float[]> xs)
    {
        double s = 0;
        foreach (var x in xs)
            foreach (float f in x) s += (double)f * f;
        return Math.Sqrt(s);
    }
}

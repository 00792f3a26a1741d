// Shared helpers for the NN kernel tests (group norm, softmax, attention, dropout, pooling):
// float/double conversion, llm.c-style closeness checks that print
// the first mismatches, and central finite differences on float64 reference functions.
using Xunit;

namespace Edm.Tests.Kernels;

internal static class Nn
{
    public static float[] Random(int n, int seed, double lo = -1, double hi = 1) => Edm.Verification.Compare.Random(n, seed, lo, hi);

    public static double[] D(float[] a) => Array.ConvertAll(a, v => (double)v);

    /// <summary>Asserts |got - want| &lt;= atol + rtol |want| elementwise, listing the first mismatches.</summary>
    public static void Close(string what, float[] got, double[] want, double atol, double rtol)
    {
        Assert.Equal(want.Length, got.Length);
        var bad = new List<string>();
        int count = 0;
        for (int i = 0; i < got.Length; i++)
        {
            double e = Math.Abs(got[i] - want[i]);
            if (!(e <= atol + rtol * Math.Abs(want[i])))
            {
                count++;
                if (bad.Count < 5) bad.Add($"[{i}] got {got[i]:G9} want {want[i]:G9}");
            }
        }
        Assert.True(count == 0, $"{what}: {count} of {got.Length} elements differ: {string.Join("; ", bad)}");
    }

    /// <summary>
    /// Central finite differences of L(x) = sum_i f(x)_i r_i at every index of x (float64), compared
    /// with the analytic gradient grad (dL/dx).
    /// </summary>
    public static void FiniteDifference(string what, double[] x, Func<double[], double[]> f, double[] r, double[] grad, double h = 1e-6, double tol = 1e-6)
    {
        for (int i = 0; i < x.Length; i++)
        {
            double keep = x[i];
            x[i] = keep + h;
            double lp = Dot(f(x), r);
            x[i] = keep - h;
            double lm = Dot(f(x), r);
            x[i] = keep;
            double num = (lp - lm) / (2 * h);
            Assert.True(Math.Abs(num - grad[i]) <= tol * (1 + Math.Abs(num)), $"{what}: d/dx[{i}] numeric {num:G10} vs analytic {grad[i]:G10}");
        }
    }

    public static double Dot(double[] a, double[] b)
    {
        double s = 0;
        for (int i = 0; i < a.Length; i++) s += a[i] * b[i];
        return s;
    }
}

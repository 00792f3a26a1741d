// Helpers shared by the NN kernel tests (Gemm, Conv2d, Resample; device fixture: CpuDevice): random
// data, tensor <-> double conversion, the llm.c-style closeness assertion and a float64
// finite-difference gradient of a scalar function.
using Edm.Kernels;
using Xunit;

namespace Edm.Tests.Kernels;

internal static class NnTestUtil
{
    /// <summary>Random floats in [-1, 1) (never all zeros).</summary>
    public static float[] Rand(int n, int seed)
    {
        var rng = new Random(seed);
        var a = new float[n];
        for (int i = 0; i < n; i++) a[i] = (float)(rng.NextDouble() * 2 - 1);
        return a;
    }

    public static double[] D(float[] a) => Array.ConvertAll(a, v => (double)v);

    public static Tensor T(EdmDevice d, float[] data, params int[] shape) => Tensor.FromArray(d, data, shape);

    /// <summary>Asserts |got - ref| &lt;= atol + rtol |ref| elementwise, printing the first mismatches.</summary>
    public static void Close(string what, float[] got, double[] reference, double atol = 1e-4, double rtol = 1e-4)
    {
        Assert.Equal(reference.Length, got.Length);
        var bad = new List<string>();
        for (int i = 0; i < got.Length; i++)
        {
            double e = Math.Abs(got[i] - reference[i]);
            if (!(e <= atol + rtol * Math.Abs(reference[i])) && bad.Count < 5) bad.Add($"[{i}] got {got[i]} ref {reference[i]}");
        }
        Assert.True(bad.Count == 0, $"{what}: mismatches {string.Join("; ", bad)}");
    }

    /// <summary>Central differences of f at a few indices of x (float64); returns (index, numeric derivative).</summary>
    public static List<(int Index, double Grad)> FiniteDiff(double[] x, Func<double[], double> f, int samples, int seed, double eps = 1e-3)
    {
        var rng = new Random(seed);
        var result = new List<(int, double)>();
        for (int s = 0; s < Math.Min(samples, x.Length); s++)
        {
            int i = samples >= x.Length ? s : rng.Next(x.Length);
            double keep = x[i];
            x[i] = keep + eps;
            double up = f(x);
            x[i] = keep - eps;
            double down = f(x);
            x[i] = keep;
            result.Add((i, (up - down) / (2 * eps)));
        }
        return result;
    }

    /// <summary>sum_i r[i] y[i]: the scalar whose gradient with respect to y is r.</summary>
    public static double Dot(double[] r, double[] y)
    {
        double s = 0;
        for (int i = 0; i < y.Length; i++) s += r[i] * y[i];
        return s;
    }

    /// <summary>Asserts every finite difference matches the analytic gradient.</summary>
    public static void FdMatches(string what, List<(int Index, double Grad)> fd, double[] analytic, double tol = 1e-6)
    {
        foreach (var (i, g) in fd)
            Assert.True(Math.Abs(g - analytic[i]) <= tol * (1 + Math.Abs(g)), $"{what}[{i}]: finite difference {g} vs analytic {analytic[i]}");
    }
}

// Helpers shared by the kernel and model tests (device fixture: CpuDevice): random data, tensor and
// float64 conversion, the llm.c-style closeness assertion that prints the first mismatches, and
// central finite differences on float64 reference functions.
using Edm.Kernels;
using Xunit;

namespace Edm.Tests;

internal static class TestData
{
    /// <summary>A path relative to the repository root (the folder holding EdmKernels.sln above the test assembly).</summary>
    public static string Repo(string relative)
    {
        for (var d = new DirectoryInfo(AppContext.BaseDirectory); d is not null; d = d.Parent)
            if (File.Exists(Path.Combine(d.FullName, "EdmKernels.sln"))) return Path.Combine(d.FullName, relative);
        throw new InvalidOperationException("EdmKernels.sln not found above the test assembly");
    }

    /// <summary>Deterministic random floats in [lo, hi) (never all zeros).</summary>
    public static float[] Random(int n, int seed, double lo = -1, double hi = 1) => Edm.Verification.Compare.Random(n, seed, lo, hi);

    /// <summary>Random floats in [-1, 1).</summary>
    public static float[] Rand(int n, int seed) => Random(n, seed);

    public static double[] D(float[] a) => Array.ConvertAll(a, v => (double)v);

    public static Tensor T(EdmDevice d, float[] data, params int[] shape) => Tensor.FromArray(d, data, shape);

    /// <summary>Asserts |got - want| &lt;= atol + rtol |want| elementwise, listing the first mismatches.</summary>
    public static void Close(string what, float[] got, double[] want, double atol = 1e-4, double rtol = 1e-4)
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

    /// <summary>Central differences of a scalar f at a few indices of x (float64); returns (index, numeric derivative).</summary>
    public static List<(int Index, double Grad)> FiniteDiff(double[] x, Func<double[], double> f, int samples, int seed, double eps = 1e-3)
    {
        var rng = new System.Random(seed);
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

    /// <summary>Asserts every finite difference matches the analytic gradient.</summary>
    public static void FdMatches(string what, List<(int Index, double Grad)> fd, double[] analytic, double tol = 1e-6)
    {
        foreach (var (i, g) in fd)
            Assert.True(Math.Abs(g - analytic[i]) <= tol * (1 + Math.Abs(g)), $"{what}[{i}]: finite difference {g} vs analytic {analytic[i]}");
    }

    /// <summary>sum_i a[i] b[i] (the scalar whose gradient with respect to b is a).</summary>
    public static double Dot(double[] a, double[] b)
    {
        double s = 0;
        for (int i = 0; i < a.Length; i++) s += a[i] * b[i];
        return s;
    }
}

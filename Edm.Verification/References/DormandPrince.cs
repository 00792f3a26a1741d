// Adaptive Dormand-Prince 5(4) ODE integrator in double (Dormand & Prince 1980; the tableau and
// the error controller as in Hairer, Norsett & Wanner, "Solving ODEs I", Sec. II.4-II.5): the
// fifth-order solution is propagated (local extrapolation), the embedded fourth-order one
// estimates the error, steps are accepted when the RMS of err_i / (atol + rtol max(|y_i|, |y'_i|))
// is <= 1, and the step size follows h *= clamp(0.9 err^(-1/5), 0.2, 5). Used for the reference
// trajectories of the mixture and point-set datasets.
using Edm.Sampling;

namespace Edm.Verification;

/// <summary>Right-hand side dy/du = f(u, y), written into dy.</summary>
public delegate void OdeRhs(double u, ReadOnlySpan<double> y, Span<double> dy);

/// <summary>Statistics of one integration.</summary>
public readonly record struct OdeStats(int Accepted, int Rejected, int Evaluations);

/// <summary>Dormand-Prince 5(4) with step-size control.</summary>
public static class DormandPrince
{
    // Butcher tableau (c, a, b5, b5 - b4).
    static readonly double[] C = [0, 1.0 / 5, 3.0 / 10, 4.0 / 5, 8.0 / 9, 1, 1];
    static readonly double[][] A =
    [
        [],
        [1.0 / 5],
        [3.0 / 40, 9.0 / 40],
        [44.0 / 45, -56.0 / 15, 32.0 / 9],
        [19372.0 / 6561, -25360.0 / 2187, 64448.0 / 6561, -212.0 / 729],
        [9017.0 / 3168, -355.0 / 33, 46732.0 / 5247, 49.0 / 176, -5103.0 / 18656],
        [35.0 / 384, 0, 500.0 / 1113, 125.0 / 192, -2187.0 / 6784, 11.0 / 84],
    ];
    static readonly double[] B5 = [35.0 / 384, 0, 500.0 / 1113, 125.0 / 192, -2187.0 / 6784, 11.0 / 84, 0];
    static readonly double[] B4 = [5179.0 / 57600, 0, 7571.0 / 16695, 393.0 / 640, -92097.0 / 339200, 187.0 / 2100, 1.0 / 40];

    /// <summary>
    /// Integrates y from u0 to u1 (either direction) in place. Throws if the step size underflows
    /// or more than <paramref name="maxSteps"/> steps are needed.
    /// </summary>
    public static OdeStats Integrate(OdeRhs f, Span<double> y, double u0, double u1, double rtol = 1e-10, double atol = 1e-12, int maxSteps = 1_000_000)
    {
        int n = y.Length;
        if (u0 == u1) return new OdeStats(0, 0, 0);
        double dir = Math.Sign(u1 - u0);
        var k = new double[7][];
        for (int s = 0; s < 7; s++) k[s] = new double[n];
        var yStage = new double[n];
        var yNew = new double[n];
        int evals = 0, accepted = 0, rejected = 0;

        double u = u0;
        f(u, y, k[0]); evals++;
        double h = InitialStep(f, y, u, dir, k[0], rtol, atol, ref evals);
        bool lastRejected = false;
        while (dir * (u1 - u) > 0)
        {
            if (accepted + rejected > maxSteps) throw new InvalidOperationException($"DormandPrince: more than {maxSteps} steps between {u0} and {u1}");
            if (dir * (u + h - u1) > 0) h = u1 - u;
            for (int s = 1; s < 7; s++)
            {
                for (int i = 0; i < n; i++)
                {
                    double acc = y[i];
                    for (int j = 0; j < s; j++) acc += h * A[s][j] * k[j][i];
                    yStage[i] = acc;
                }
                f(u + C[s] * h, yStage, k[s]); evals++;
            }
            // Stage 7 is evaluated at the fifth-order solution (FSAL): yStage now holds yNew.
            double errSq = 0;
            for (int i = 0; i < n; i++)
            {
                yNew[i] = yStage[i];
                double e = 0;
                for (int s = 0; s < 7; s++) e += (B5[s] - B4[s]) * k[s][i];
                e *= h;
                double sc = atol + rtol * Math.Max(Math.Abs(y[i]), Math.Abs(yNew[i]));
                errSq += (e / sc) * (e / sc);
            }
            double err = Math.Sqrt(errSq / n);
            if (double.IsNaN(err)) throw new InvalidOperationException($"DormandPrince: non-finite error estimate at u = {u}");
            if (err <= 1)
            {
                u = dir * (u + h - u1) >= 0 ? u1 : u + h;
                yNew.CopyTo(y);
                Array.Copy(k[6], k[0], n);
                accepted++;
                double factor = err == 0 ? 5 : Math.Clamp(0.9 * Math.Pow(err, -0.2), 0.2, 5);
                if (lastRejected) factor = Math.Min(factor, 1);
                h *= factor;
                lastRejected = false;
            }
            else
            {
                rejected++;
                h *= Math.Max(0.2, 0.9 * Math.Pow(err, -0.2));
                lastRejected = true;
            }
            if (Math.Abs(h) < 1e-14 * Math.Max(1, Math.Abs(u)))
                throw new InvalidOperationException($"DormandPrince: step size underflow at u = {u}");
        }
        return new OdeStats(accepted, rejected, evals);
    }

    // Hairer's starting step: h0 from the sizes of y and f, refined by one Euler probe.
    static double InitialStep(OdeRhs f, ReadOnlySpan<double> y, double u, double dir, double[] f0, double rtol, double atol, ref int evals)
    {
        int n = y.Length;
        double d0 = 0, d1 = 0;
        for (int i = 0; i < n; i++)
        {
            double sc = atol + rtol * Math.Abs(y[i]);
            d0 += (y[i] / sc) * (y[i] / sc);
            d1 += (f0[i] / sc) * (f0[i] / sc);
        }
        d0 = Math.Sqrt(d0 / n); d1 = Math.Sqrt(d1 / n);
        double h0 = d0 < 1e-5 || d1 < 1e-5 ? 1e-6 : 0.01 * d0 / d1;
        var y1 = new double[n];
        var f1 = new double[n];
        for (int i = 0; i < n; i++) y1[i] = y[i] + dir * h0 * f0[i];
        f(u + dir * h0, y1, f1); evals++;
        double d2 = 0;
        for (int i = 0; i < n; i++)
        {
            double sc = atol + rtol * Math.Abs(y[i]);
            d2 += ((f1[i] - f0[i]) / sc) * ((f1[i] - f0[i]) / sc);
        }
        d2 = Math.Sqrt(d2 / n) / h0;
        double h1 = Math.Max(d1, d2) <= 1e-15 ? Math.Max(1e-6, h0 * 1e-3) : Math.Pow(0.01 / Math.Max(d1, d2), 0.2);
        return dir * Math.Min(100 * h0, h1);
    }
}

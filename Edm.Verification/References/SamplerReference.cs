// Float64 host reference of every sampler, one sample at a time, in plain loops. It shares only
// the time grid (SamplingPlan, double) with the device samplers in Samplers.cs: the step
// arithmetic, the denoisers and the multistep coefficients are written separately here, so the
// reference truncation-error curves test the device code rather than repeat it.
using Edm.Sampling;

namespace Edm.Verification;

/// <summary>Float64 reference samplers (docs/formulas.md sections 3-5; k-diffusion's samplers).</summary>
public static class SamplerReference
{
    /// <summary>
    /// Runs the plan's sampler on one sample from unit-normal <paramref name="latent"/> (x_0 =
    /// latent sigma(t_0) s(t_0)). <paramref name="noise"/>(step, element) supplies the churn
    /// (euler, RK2, dpm_2) and ancestral noise (null: zero noise). Returns x_N and the number of denoiser calls.
    /// </summary>
    public static double[] Sample(SamplingPlan plan, IHostDenoiser den, ReadOnlySpan<double> latent, out int nfe,
        Func<int, int, double>? noise = null)
    {
        var f = plan.Formulation;
        int dim = den.Dim;
        var x = new double[dim];
        double scale0 = f.Sigma(plan.T[0]) * f.S(plan.T[0]);
        for (int e = 0; e < dim; e++) x[e] = latent[e] * scale0;
        noise ??= static (_, _) => 0;
        nfe = plan.Settings.Solver switch
        {
            Solver.EulerAncestral => EulerAncestral(plan, den, x, noise),
            Solver.Dpm2 => Dpm2(plan, den, x, noise),
            Solver.DpmPP2M => DpmPP2M(plan, den, x),
            Solver.Lms => Lms(plan, den, x),
            _ => RungeKutta(plan, den, x, noise),
        };
        return x;
    }

    // Algorithm 1/2 generalized (docs/formulas.md sections 3-5), with NVlabs/edm's churn scaling.
    static int RungeKutta(SamplingPlan plan, IHostDenoiser den, double[] x, Func<int, int, double> noise)
    {
        var f = plan.Formulation;
        var s = plan.Settings;
        int n = plan.Steps, dim = x.Length, nfe = 0;
        bool secondOrder = s.Solver.IsSecondOrderRk();
        double alpha = s.EffectiveAlpha;
        var xHat = new double[dim];
        var dCur = new double[dim];
        var xPrime = new double[dim];
        var dPrime = new double[dim];
        for (int i = 0; i < n; i++)
        {
            double tCur = plan.T[i], tNext = plan.T[i + 1];
            double tHat = plan.THat(i, den.RoundSigma);  // the churn step rounds sigma as the device sampler does
            double sigmaCur = f.Sigma(tCur), sigmaHat = f.Sigma(tHat);
            double noiseScale = Math.Sqrt(Math.Max(sigmaHat * sigmaHat - sigmaCur * sigmaCur, 0)) * f.S(tHat) * s.SNoise;
            double rescale = f.S(tHat) / f.S(tCur);
            for (int e = 0; e < dim; e++) xHat[e] = rescale * x[e] + (noiseScale == 0 ? 0 : noiseScale * noise(i, e));
            double h = tNext - tHat;
            Velocity(f, den, tHat, xHat, dCur); nfe++;
            if (!secondOrder || i == n - 1)
            {
                for (int e = 0; e < dim; e++) x[e] = xHat[e] + h * dCur[e];
                continue;
            }
            double tPrime = tHat + alpha * h;
            for (int e = 0; e < dim; e++) xPrime[e] = xHat[e] + alpha * h * dCur[e];
            Velocity(f, den, tPrime, xPrime, dPrime); nfe++;
            double wCur = 1 - 1 / (2 * alpha), wPrime = 1 / (2 * alpha);
            for (int e = 0; e < dim; e++) x[e] = xHat[e] + h * (wCur * dCur[e] + wPrime * dPrime[e]);
        }
        return nfe;
    }

    /// <summary>
    /// Algorithm 1 line 4: d = (sigma'/sigma + s'/s) x - sigma' s / sigma D(x / s; sigma).
    /// </summary>
    public static void Velocity(Formulation f, IHostDenoiser den, double t, ReadOnlySpan<double> x, Span<double> d)
    {
        double sigma = f.Sigma(t), dSigma = f.SigmaDeriv(t), s = f.S(t), dS = f.SDeriv(t);
        int dim = x.Length;
        var xs = new double[dim];
        for (int e = 0; e < dim; e++) xs[e] = x[e] / s;
        var denoised = new double[dim];
        den.Denoise(xs, sigma, denoised);
        for (int e = 0; e < dim; e++) d[e] = (dSigma / sigma + dS / s) * x[e] - dSigma * s / sigma * denoised[e];
    }

    /// <summary>
    /// One deterministic step of Euler (alpha = null) or the RK2 family from (t_i, x_i) to t_{i+1}
    /// in a formulation (for local truncation errors); a step to sigma = 0 is Euler.
    /// </summary>
    public static double[] RkStep(Formulation f, IHostDenoiser den, double tCur, double tNext, ReadOnlySpan<double> x, double? alpha)
    {
        int dim = x.Length;
        var dCur = new double[dim];
        Velocity(f, den, tCur, x, dCur);
        double h = tNext - tCur;
        var result = new double[dim];
        if (alpha is null || f.Sigma(tNext) == 0)
        {
            for (int e = 0; e < dim; e++) result[e] = x[e] + h * dCur[e];
            return result;
        }
        double a = alpha.Value;
        var xPrime = new double[dim];
        for (int e = 0; e < dim; e++) xPrime[e] = x[e] + a * h * dCur[e];
        var dPrime = new double[dim];
        Velocity(f, den, tCur + a * h, xPrime, dPrime);
        for (int e = 0; e < dim; e++) result[e] = x[e] + h * ((1 - 1 / (2 * a)) * dCur[e] + 1 / (2 * a) * dPrime[e]);
        return result;
    }

    // k-diffusion euler_ancestral: step to sigma_down by Euler, then add sigma_up noise, with
    // sigma_up = min(sigma_next, eta sqrt(sigma_next^2 (sigma^2 - sigma_next^2) / sigma^2)).
    static int EulerAncestral(SamplingPlan plan, IHostDenoiser den, double[] x, Func<int, int, double> noise)
    {
        var sig = plan.Sigma;
        double eta = plan.Settings.Eta;
        int dim = x.Length;
        var dn = new double[dim];
        for (int i = 0; i < plan.Steps; i++)
        {
            double sc = sig[i], sn = sig[i + 1];
            den.Denoise(x, sc, dn);
            double up = Math.Min(sn, eta * Math.Sqrt(sn * sn * (sc * sc - sn * sn) / (sc * sc)));
            double down = Math.Sqrt(sn * sn - up * up);
            for (int e = 0; e < dim; e++)
            {
                double d = (x[e] - dn[e]) / sc;
                x[e] += d * (down - sc);
                if (sn > 0 && up > 0) x[e] += up * plan.Settings.SNoise * noise(i, e);  // k-diffusion's s_noise
            }
        }
        return plan.Steps;
    }

    // k-diffusion dpm_2 (sample_dpm_2): churn first, sigma_hat = sigma (1 + gamma) and
    // x += S_noise sqrt(sigma_hat^2 - sigma^2) eps; then Euler to the geometric mid-level
    // sqrt(sigma_hat sigma_next), whose derivative carries the full step from sigma_hat; Euler on
    // the last step to 0.
    static int Dpm2(SamplingPlan plan, IHostDenoiser den, double[] x, Func<int, int, double> noise)
    {
        var sig = plan.Sigma;
        int dim = x.Length, nfe = 0;
        var dn = new double[dim];
        var d = new double[dim];
        var x2 = new double[dim];
        for (int i = 0; i < plan.Steps; i++)
        {
            double sc = sig[i], sn = sig[i + 1];
            double sh = plan.Formulation.Sigma(plan.THat(i, den.RoundSigma));
            double noiseScale = Math.Sqrt(Math.Max(sh * sh - sc * sc, 0)) * plan.Settings.SNoise;
            if (noiseScale > 0)
                for (int e = 0; e < dim; e++) x[e] += noiseScale * noise(i, e);
            den.Denoise(x, sh, dn); nfe++;
            for (int e = 0; e < dim; e++) d[e] = (x[e] - dn[e]) / sh;
            if (sn == 0)
            {
                for (int e = 0; e < dim; e++) x[e] += d[e] * (sn - sh);
                continue;
            }
            double sMid = Math.Sqrt(sh * sn);
            for (int e = 0; e < dim; e++) x2[e] = x[e] + d[e] * (sMid - sh);
            den.Denoise(x2, sMid, dn); nfe++;
            for (int e = 0; e < dim; e++) x[e] += (x2[e] - dn[e]) / sMid * (sn - sh);
        }
        return nfe;
    }

    // DPM-Solver++(2M) (Lu et al. 2022, as in k-diffusion) in lambda = -ln sigma:
    // x_next = (sigma_next / sigma) x + (1 - exp(-h)) D_hat, with D_hat the second-order
    // extrapolation (1 + 1/(2r)) D_i - 1/(2r) D_{i-1}, r = h_{i-1} / h_i; first step and the
    // step to sigma = 0 use D_i alone (the step to 0 returns D_i, i.e. Euler).
    static int DpmPP2M(SamplingPlan plan, IHostDenoiser den, double[] x)
    {
        var sig = plan.Sigma;
        int dim = x.Length;
        var dn = new double[dim];
        var dnOld = new double[dim];
        for (int i = 0; i < plan.Steps; i++)
        {
            double sc = sig[i], sn = sig[i + 1];
            den.Denoise(x, sc, dn);
            if (sn == 0)
            {
                Array.Copy(dn, x, dim);
                continue;
            }
            double h = Math.Log(sc) - Math.Log(sn);
            double ratio = sn / sc, w = -MathD.ExpM1(-h);
            if (i == 0)
            {
                for (int e = 0; e < dim; e++) x[e] = ratio * x[e] + w * dn[e];
            }
            else
            {
                double hLast = Math.Log(sig[i - 1]) - Math.Log(sc);
                double r = hLast / h;
                double a = 1 + 1 / (2 * r), b = 1 / (2 * r);
                for (int e = 0; e < dim; e++) x[e] = ratio * x[e] + w * (a * dn[e] - b * dnOld[e]);
            }
            Array.Copy(dn, dnOld, dim);
        }
        return plan.Steps;
    }

    // k-diffusion lms: x_{i+1} = x_i + sum_j c_ij d_{i-j}, c_ij the integral over [sigma_i, sigma_{i+1}]
    // of the Lagrange basis polynomial of node sigma_{i-j} (order min(i+1, LmsOrder)).
    static int Lms(SamplingPlan plan, IHostDenoiser den, double[] x)
    {
        var sig = plan.Sigma;
        int dim = x.Length, order = plan.Settings.LmsOrder;
        var history = new List<double[]>();
        var dn = new double[dim];
        for (int i = 0; i < plan.Steps; i++)
        {
            den.Denoise(x, sig[i], dn);
            var d = new double[dim];
            for (int e = 0; e < dim; e++) d[e] = (x[e] - dn[e]) / sig[i];
            history.Insert(0, d);                       // history[j] = d_{i-j}
            if (history.Count > order) history.RemoveAt(history.Count - 1);
            int cur = history.Count;
            for (int j = 0; j < cur; j++)
            {
                double c = LagrangeIntegral(sig, i, j, cur);
                for (int e = 0; e < dim; e++) x[e] += c * history[j][e];
            }
        }
        return plan.Steps;
    }

    /// <summary>
    /// Integral over [t_i, t_{i+1}] of prod_{k != j, k &lt; order} (tau - t_{i-k}) / (t_{i-j} - t_{i-k}),
    /// computed exactly by expanding the polynomial (monomial coefficients, then the antiderivative).
    /// </summary>
    public static double LagrangeIntegral(double[] t, int i, int j, int order)
    {
        var poly = new double[order];        // coefficients of tau^0..tau^(order-1)
        poly[0] = 1;
        int deg = 0;
        double denom = 1;
        for (int k = 0; k < order; k++)
        {
            if (k == j) continue;
            double root = t[i - k];
            // poly *= (tau - root)
            for (int p = deg + 1; p >= 1; p--) poly[p] = poly[p - 1] - root * poly[p];
            poly[0] *= -root;
            deg++;
            denom *= t[i - j] - root;
        }
        double Anti(double tau)
        {
            double acc = 0;
            for (int p = deg; p >= 0; p--) acc = acc * tau + poly[p] / (p + 1);
            return acc * tau;
        }
        return (Anti(t[i + 1]) - Anti(t[i])) / denom;
    }
}

/// <summary>
/// Reference solutions of the probability-flow ODE in sigma (sigma(t) = t, s = 1): exact for the
/// Gaussian, otherwise Dormand-Prince 5(4) on dx/d(ln sigma) = x - D(x; sigma), the same ODE with
/// ln sigma as the variable (smooth over 0.002..80 and down to 0).
/// </summary>
public static class ReferenceOde
{
    /// <summary>Where the integration toward sigma = 0 stops: x(1e-12) and x(0) differ by O(1e-12) (points) or O(1e-24) (Gaussian components).</summary>
    public const double SigmaEnd = 1e-12;

    /// <summary>Relative tolerance of the reference solver.</summary>
    public const double RelativeTolerance = 1e-10;

    /// <summary>Moves x from sigma0 to sigma1 along the ODE (sigma1 = 0 allowed). Returns solver statistics.</summary>
    public static OdeStats Solve(IHostDenoiser den, Span<double> x, double sigma0, double sigma1, double rtol = RelativeTolerance)
    {
        if (den is HostGaussianDenoiser g)
        {
            var x0 = x.ToArray();
            g.Exact(x0, sigma0, sigma1, x);
            return default;
        }
        double end = Math.Max(sigma1, SigmaEnd);
        if (sigma0 == end) return default;
        int dim = den.Dim;
        var dn = new double[dim];
        double scale = 0;
        foreach (double v in x) scale = Math.Max(scale, Math.Abs(v));
        return DormandPrince.Integrate((u, y, dy) =>
        {
            den.Denoise(y, Math.Exp(u), dn);
            for (int e = 0; e < dim; e++) dy[e] = y[e] - dn[e];
        }, x, Math.Log(sigma0), Math.Log(end), rtol, atol: rtol * 1e-2 * Math.Max(1e-3, scale / Math.Max(1, sigma0)));
    }
}

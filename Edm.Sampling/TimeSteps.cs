// Time step discretizations (Table 1, "time steps" row; docs/formulas.md section 2) and the
// noise-level steps of NVlabs/edm's generalized sampler. All in double.
//
// Two views of the same thing:
// - the Table 1 time steps t_i of each formulation in its own time variable (VpTable, VeTable,
//   IddpmTable, EdmTable), each ending with t_N = 0;
// - the generalized sampler's noise levels sigma_i for discretization vp | ve | iddpm | edm over a
//   chosen range [sigma_min, sigma_max] (SigmaSteps), which a formulation then maps back to time
//   with t_i = sigma^-1(sigma_i).
namespace Edm.Sampling;

/// <summary>The time step discretizations of Table 1.</summary>
public enum Discretization
{
    /// <summary>Uniform in VP time t from 1 to eps_s.</summary>
    Vp,
    /// <summary>Geometric in sigma^2 (uniform in ln sigma).</summary>
    Ve,
    /// <summary>A subsequence of the iDDPM noise levels u_j.</summary>
    Iddpm,
    /// <summary>EDM's rho-warped steps (Eq. 5).</summary>
    Edm,
}

/// <summary>Time steps and noise-level steps (Table 1; NVlabs/edm generalized sampler).</summary>
public static class TimeSteps
{
    /// <summary>VP eps_s: the last VP time step (Table 1).</summary>
    public const double VpEpsilonS = 1e-3;
    /// <summary>iDDPM/VP number of training noise levels M.</summary>
    public const int DefaultM = 1000;
    /// <summary>iDDPM C1 (clip of the alpha_bar ratio).</summary>
    public const double IddpmC1 = 0.001;
    /// <summary>iDDPM C2 (cosine schedule offset).</summary>
    public const double IddpmC2 = 0.008;
    /// <summary>EDM default rho.</summary>
    public const double DefaultRho = 7;

    /// <summary>Names of the discretizations as the CLI spells them.</summary>
    public static readonly string[] DiscretizationNames = ["vp", "ve", "iddpm", "edm"];

    /// <summary>Lower-case name of a discretization.</summary>
    public static string Name(this Discretization d) => DiscretizationNames[(int)d];

    /// <summary>Parses "vp" | "ve" | "iddpm" | "edm"; throws <see cref="ArgumentException"/> listing them.</summary>
    public static Discretization ParseDiscretization(string name) =>
        Array.IndexOf(DiscretizationNames, name.Trim().ToLowerInvariant()) is int i and >= 0
            ? (Discretization)i
            : throw new ArgumentException($"unknown discretization '{name}'; allowed: {string.Join(", ", DiscretizationNames)}");

    /// <summary>
    /// NVlabs/edm's default noise range per discretization (docs/formulas.md section 2):
    /// vp [sigma_VP(1e-3), sigma_VP(1)] = [0.0105, 152.2], ve [0.02, 100], iddpm [0.002, 81], edm [0.002, 80].
    /// </summary>
    public static (double SigmaMin, double SigmaMax) DefaultSigmaRange(Discretization d)
    {
        var vp = new VpSchedule();
        return d switch
        {
            Discretization.Vp => (vp.Sigma(VpEpsilonS), vp.Sigma(1)),
            Discretization.Ve => (0.02, 100),
            Discretization.Iddpm => (0.002, 81),
            _ => (0.002, 80),
        };
    }

    /// <summary>i / (N - 1), taken as 0 when N = 1 (a single step from sigma_max straight to 0).</summary>
    static double Fraction(int i, int n) => n == 1 ? 0 : (double)i / (n - 1);

    /// <summary>Validates the common arguments; messages name the allowed range.</summary>
    public static void Validate(int n, double sigmaMin, double sigmaMax, double rho = DefaultRho)
    {
        if (n < 1) throw new ArgumentException($"number of steps N = {n} is invalid; allowed: N >= 1");
        if (!(sigmaMin > 0) || double.IsInfinity(sigmaMin)) throw new ArgumentException($"sigma_min = {sigmaMin} is invalid; allowed: 0 < sigma_min < sigma_max");
        if (!(sigmaMin < sigmaMax) || double.IsInfinity(sigmaMax)) throw new ArgumentException($"sigma_min = {sigmaMin} must be below sigma_max = {sigmaMax}; allowed: 0 < sigma_min < sigma_max < infinity");
        if (!(rho > 0) || double.IsInfinity(rho)) throw new ArgumentException($"rho = {rho} is invalid; allowed: rho > 0");
    }

    /// <summary>
    /// The iDDPM noise levels u_0..u_M (Table 1 footnote): u_M = 0,
    /// u_{j-1} = sqrt((u_j^2 + 1) / max(alpha_bar_{j-1} / alpha_bar_j, C1) - 1),
    /// alpha_bar_j = sin^2(pi/2 j / (M (C2 + 1))). Descending: u_0 is the largest.
    /// </summary>
    public static double[] IddpmU(int m = DefaultM, double c1 = IddpmC1, double c2 = IddpmC2)
    {
        if (m < 1) throw new ArgumentException($"M = {m} is invalid; allowed: M >= 1");
        var u = new double[m + 1];
        for (int j = m; j >= 1; j--)
        {
            double ratio = AlphaBar(j - 1, m, c2) / AlphaBar(j, m, c2);
            u[j - 1] = Math.Sqrt((u[j] * u[j] + 1) / Math.Max(ratio, c1) - 1);
        }
        return u;
    }

    static double AlphaBar(int j, int m, double c2)
    {
        double s = Math.Sin(0.5 * Math.PI * j / (m * (c2 + 1)));
        return s * s;
    }

    /// <summary>
    /// The u_j table as NVlabs/edm's iDDPMPrecond computes it (its <c>u</c> buffer, hence the
    /// network's sigma_min = u_(M-1), sigma_max = u_0, round_sigma and c_noise): the same recursion
    /// as <see cref="IddpmU"/> with every operation in float32, torch's default dtype, returned
    /// widened to double. alpha_bar(j) = sin(float(pi/2) j / M / float(C2 + 1))^2 and
    /// u_(j-1) = sqrt((u_j^2 + 1) / max(alpha_bar(j-1) / alpha_bar(j), float(C1)) - 1), each product,
    /// quotient and root rounded to float; the sine is the float rounding of the double sine.
    /// It differs from the float64 table by at most 32 float32 ulps where u_j &gt;= 1 (j &lt;= M/2),
    /// growing towards the small end, where 1/ratio - 1 cancels: 4.8e-4 relative (6,600 ulps) at
    /// u_999 = 0.0064223 vs 0.0064254. NVlabs/edm's sampler computes its iddpm discretization in
    /// float64 (<see cref="IddpmU"/>, which <see cref="SigmaSteps"/> uses).
    /// </summary>
    public static double[] IddpmUFloat32(int m = DefaultM, double c1 = IddpmC1, double c2 = IddpmC2)
    {
        if (m < 1) throw new ArgumentException($"M = {m} is invalid; allowed: M >= 1");
        var u = new float[m + 1];
        float c1f = (float)c1;
        for (int j = m; j >= 1; j--)
        {
            float ratio = (float)(AlphaBarFloat32(j - 1, m, c2) / AlphaBarFloat32(j, m, c2));
            float num = (float)((float)(u[j] * u[j]) + 1f);
            u[j - 1] = MathF.Sqrt((float)((float)(num / Math.Max(ratio, c1f)) - 1f));
        }
        return u.Select(v => (double)v).ToArray();
    }

    // alpha_bar(j) as torch evaluates (0.5 * np.pi * j / M / (C2 + 1)).sin() ** 2 on an int64 j:
    // the Python numbers become float32 and every operation rounds to float32 (explicit casts: C#
    // may otherwise keep float intermediates wider).
    static float AlphaBarFloat32(int j, int m, double c2)
    {
        float arg = (float)((float)((float)(0.5 * Math.PI) * (float)j) / (float)m);
        arg = (float)(arg / (float)(c2 + 1));
        float s = (float)Math.Sin(arg);
        return (float)(s * s);
    }

    // ---- Table 1 time steps in each formulation's own time variable (t_N = 0 appended) ----

    /// <summary>VP: t_i = 1 + i/(N-1) (eps_s - 1), then t_N = 0.</summary>
    public static double[] VpTable(int n, double epsilonS = VpEpsilonS)
    {
        Validate(n, 1, 2);
        var t = new double[n + 1];
        for (int i = 0; i < n; i++) t[i] = 1 + Fraction(i, n) * (epsilonS - 1);
        return t;
    }

    /// <summary>VE: t_i = sigma_max^2 (sigma_min^2 / sigma_max^2)^(i/(N-1)), then t_N = 0.</summary>
    public static double[] VeTable(int n, double sigmaMin = 0.02, double sigmaMax = 100)
    {
        Validate(n, sigmaMin, sigmaMax);
        var t = new double[n + 1];
        double ratio = sigmaMin * sigmaMin / (sigmaMax * sigmaMax);
        for (int i = 0; i < n; i++) t[i] = sigmaMax * sigmaMax * Math.Pow(ratio, Fraction(i, n));
        return t;
    }

    /// <summary>
    /// iDDPM: t_i = u_{floor(j0 + (M-1-j0)/(N-1) i + 1/2)} with j0 the first index whose u_j0 &lt;
    /// sigma_max, then t_N = 0.
    /// </summary>
    public static double[] IddpmTable(int n, double sigmaMax = 80, int m = DefaultM, double c1 = IddpmC1, double c2 = IddpmC2)
    {
        Validate(n, 1e-300, sigmaMax);
        var u = IddpmU(m, c1, c2);
        int j0 = 0;
        while (j0 < m && !(u[j0] < sigmaMax)) j0++;
        var t = new double[n + 1];
        for (int i = 0; i < n; i++)
        {
            int j = (int)Math.Floor(j0 + (m - 1 - j0) * Fraction(i, n) + 0.5);
            t[i] = u[j];
        }
        return t;
    }

    /// <summary>EDM (Eq. 5): t_i = (sigma_max^(1/rho) + i/(N-1) (sigma_min^(1/rho) - sigma_max^(1/rho)))^rho, then t_N = 0.</summary>
    public static double[] EdmTable(int n, double sigmaMin = 0.002, double sigmaMax = 80, double rho = DefaultRho)
    {
        Validate(n, sigmaMin, sigmaMax, rho);
        var t = new double[n + 1];
        double a = Math.Pow(sigmaMax, 1 / rho), b = Math.Pow(sigmaMin, 1 / rho);
        for (int i = 0; i < n; i++) t[i] = Math.Pow(a + Fraction(i, n) * (b - a), rho);
        return t;
    }

    // ---- The generalized sampler's noise levels ----

    /// <summary>
    /// The N noise levels sigma_0 > ... > sigma_{N-1} of NVlabs/edm's generalized sampler for a
    /// discretization over [sigmaMin, sigmaMax] (no trailing 0):
    /// vp: sigma_VP'(1 + i/(N-1)(eps_s - 1)) with the VP schedule refit to the range;
    /// ve: sqrt of the VE table; iddpm: the u_j in [sigmaMin, sigmaMax] (descending) at indices
    /// round-half-even((len - 1)/(N - 1) i); edm: Eq. 5 with rho.
    /// </summary>
    public static double[] SigmaSteps(Discretization d, int n, double sigmaMin, double sigmaMax, double rho = DefaultRho,
        double epsilonS = VpEpsilonS, int m = DefaultM, double c1 = IddpmC1, double c2 = IddpmC2)
    {
        Validate(n, sigmaMin, sigmaMax, rho);
        var sigma = new double[n];
        switch (d)
        {
            case Discretization.Vp:
            {
                var vp = VpSchedule.Refit(sigmaMin, sigmaMax, epsilonS);
                var t = VpTable(n, epsilonS);
                for (int i = 0; i < n; i++) sigma[i] = vp.Sigma(t[i]);
                break;
            }
            case Discretization.Ve:
            {
                var t = VeTable(n, sigmaMin, sigmaMax);
                for (int i = 0; i < n; i++) sigma[i] = Math.Sqrt(t[i]);
                break;
            }
            case Discretization.Iddpm:
            {
                var kept = IddpmU(m, c1, c2).Where(u => u >= sigmaMin && u <= sigmaMax).ToArray();
                if (kept.Length == 0)
                    throw new ArgumentException($"no iDDPM noise level u_j lies in [{sigmaMin}, {sigmaMax}]; widen the range (u_j spans {IddpmU(m, c1, c2)[m - 1]:G4}..{IddpmU(m, c1, c2)[0]:G4})");
                for (int i = 0; i < n; i++)
                    sigma[i] = kept[(int)Math.Round((kept.Length - 1) * Fraction(i, n), MidpointRounding.ToEven)];
                break;
            }
            default:
            {
                var t = EdmTable(n, sigmaMin, sigmaMax, rho);
                Array.Copy(t, sigma, n);
                break;
            }
        }
        return sigma;
    }

    /// <summary>
    /// The generalized sampler's time steps t_0..t_N for a formulation: t_i = sigma^-1(round(sigma_i)),
    /// t_N = 0. <paramref name="roundSigma"/> is the denoiser's rounding (identity for analytic ones).
    /// </summary>
    public static double[] TimeStepsFor(Formulation f, double[] sigmaSteps, Func<double, double>? roundSigma = null)
    {
        var t = new double[sigmaSteps.Length + 1];
        for (int i = 0; i < sigmaSteps.Length; i++)
            t[i] = f.SigmaInv(roundSigma is null ? sigmaSteps[i] : roundSigma(sigmaSteps[i]));
        return t;
    }
}

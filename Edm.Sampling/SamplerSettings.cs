// What a sampler run is: solver, discretization, formulation, churn. Shared by the device samplers
// (Samplers.cs) and the float64 host reference (Edm.Verification/References/SamplerReference.cs), which both consume the
// same SamplingPlan: the time steps are computed once, in double, here. Names as the CLI and
// summary.json spell them.
namespace Edm.Sampling;

/// <summary>The samplers (docs/formulas.md sections 3-5 and k-diffusion's).</summary>
public enum Solver
{
    /// <summary>Euler (first order), 1 NFE per step.</summary>
    Euler,
    /// <summary>Heun, Algorithm 1: second-order RK with alpha = 1.</summary>
    Heun,
    /// <summary>Second-order RK with alpha = 1/2 (Appendix D.2).</summary>
    Midpoint,
    /// <summary>Second-order RK with alpha = 2/3 (Appendix D.2).</summary>
    Ralston,
    /// <summary>k-diffusion euler_ancestral (eta = 0 is Euler).</summary>
    EulerAncestral,
    /// <summary>k-diffusion dpm_2 (midpoint in ln sigma; takes churn as k-diffusion's sample_dpm_2).</summary>
    Dpm2,
    /// <summary>k-diffusion DPM-Solver++(2M).</summary>
    DpmPP2M,
    /// <summary>k-diffusion linear multistep (order 4 by default).</summary>
    Lms,
}

/// <summary>Name tables and parsing for <see cref="Solver"/>.</summary>
public static class Solvers
{
    /// <summary>Names in <see cref="Solver"/> order.</summary>
    public static readonly string[] Names = ["euler", "heun", "midpoint", "ralston", "euler_ancestral", "dpm_2", "dpmpp_2m", "lms"];

    /// <summary>Lower-case name.</summary>
    public static string Name(this Solver s) => Names[(int)s];

    /// <summary>Parses a solver name; throws <see cref="ArgumentException"/> listing the allowed names.</summary>
    public static Solver Parse(string name) =>
        Array.IndexOf(Names, name.Trim().ToLowerInvariant()) is int i and >= 0
            ? (Solver)i
            : throw new ArgumentException($"unknown solver '{name}'; allowed: {string.Join(", ", Names)}");

    /// <summary>True for the solvers of Algorithm 1 / Appendix D.2 (Euler and the RK2 family), which accept any formulation.</summary>
    public static bool IsRungeKutta(this Solver s) => s <= Solver.Ralston;

    /// <summary>
    /// True for the solvers that take Algorithm 2's churn (S_churn, S_tmin, S_tmax, S_noise): Euler,
    /// the RK2 family and dpm_2 (as k-diffusion's sample_dpm_2).
    /// </summary>
    public static bool TakesChurn(this Solver s) => s.IsRungeKutta() || s == Solver.Dpm2;

    /// <summary>True for the second-order RK family (2 NFE per step, 1 on the last).</summary>
    public static bool IsSecondOrderRk(this Solver s) => s is Solver.Heun or Solver.Midpoint or Solver.Ralston;
}

/// <summary>
/// The settings of one sampling run: every configuration of the paper, and each of NVlabs/edm's
/// generalized-sampler combinations, is one instance.
/// </summary>
public sealed record SamplerSettings
{
    /// <summary>The names <see cref="Named"/> accepts: "stochastic" and every solver.</summary>
    public static IEnumerable<string> NamedSamplers => ["stochastic", .. Solvers.Names];

    /// <summary>
    /// Settings for a sampler name and step count: "stochastic" is Algorithm 2 (Heun) with the
    /// churn NVlabs/edm uses for ImageNet-64 (S_churn 40, S_tmin 0.05, S_tmax 50, S_noise 1.003);
    /// any solver name is that solver without churn. Throws <see cref="ArgumentException"/> for an
    /// unknown name.
    /// </summary>
    public static SamplerSettings Named(string sampler, int steps) => sampler == "stochastic"
        ? new SamplerSettings { Steps = steps, Solver = Solver.Heun, SChurn = 40, STmin = 0.05, STmax = 50, SNoise = 1.003 }
        : new SamplerSettings { Steps = steps, Solver = Solvers.Parse(sampler) };

    /// <summary>Number of steps N (N noise levels, then 0).</summary>
    public int Steps { get; init; } = 18;                                // CIFAR-10 EDM setting: 35 NFE
    /// <summary>The solver.</summary>
    public Solver Solver { get; init; } = Solver.Heun;
    /// <summary>RK2 alpha for <see cref="Solver.Heun"/> (1 = Heun); midpoint and ralston fix it to 1/2 and 2/3.</summary>
    public double Alpha { get; init; } = 1;
    /// <summary>Time step discretization.</summary>
    public Discretization Discretization { get; init; } = Discretization.Edm;
    /// <summary>Noise range; null takes the discretization's default (NVlabs/edm).</summary>
    public double? SigmaMin { get; init; }
    /// <summary>Noise range; null takes the discretization's default (NVlabs/edm).</summary>
    public double? SigmaMax { get; init; }
    /// <summary>EDM discretization exponent rho (Eq. 5).</summary>
    public double Rho { get; init; } = TimeSteps.DefaultRho;
    /// <summary>Noise schedule sigma(t) (Table 1): VP, VE or linear (sigma(t) = t, EDM's).</summary>
    public ScheduleKind Schedule { get; init; } = ScheduleKind.Linear;
    /// <summary>Scaling s(t) (Table 1): VP or none.</summary>
    public ScalingKind Scaling { get; init; } = ScalingKind.None;
    /// <summary>Algorithm 2 S_churn (0: deterministic).</summary>
    public double SChurn { get; init; }
    /// <summary>Algorithm 2 S_tmin.</summary>
    public double STmin { get; init; }
    /// <summary>Algorithm 2 S_tmax.</summary>
    public double STmax { get; init; } = double.PositiveInfinity;
    /// <summary>Algorithm 2 S_noise.</summary>
    public double SNoise { get; init; } = 1;
    /// <summary>euler_ancestral eta (1: k-diffusion default; 0: Euler).</summary>
    public double Eta { get; init; } = 1;
    /// <summary>lms order (k-diffusion default 4).</summary>
    public int LmsOrder { get; init; } = 4;

    /// <summary>The RK2 alpha actually used.</summary>
    public double EffectiveAlpha => Solver switch
    {
        Solver.Midpoint => 0.5,
        Solver.Ralston => 2.0 / 3.0,
        _ => Alpha,
    };

    /// <summary>Exact number of denoiser evaluations: 2N - 1 for the second-order RK family and dpm_2, N otherwise.</summary>
    public int Nfe => Solver.IsSecondOrderRk() || Solver == Solver.Dpm2 ? 2 * Steps - 1 : Steps;

    /// <summary>
    /// Checks every setting; the message names the setting and the allowed values. A setting the
    /// solver would ignore is refused rather than dropped: alpha != 1 other than for heun, eta != 1
    /// other than for euler_ancestral, an lms order other than 4 other than for lms, churn
    /// (S_churn, S_tmin, S_tmax) on a solver without it or S_tmin/S_tmax without S_churn &gt; 0, and
    /// S_noise != 1 where no noise is added. The message names the setting, the solver and the
    /// solvers that take it.
    /// </summary>
    public void Validate()
    {
        var (lo, hi) = TimeSteps.DefaultSigmaRange(Discretization);
        TimeSteps.Validate(Steps, SigmaMin ?? lo, SigmaMax ?? hi, Rho);
        if (!Enum.IsDefined(Solver)) throw new ArgumentException($"solver {Solver}: not a defined solver; allowed: {string.Join(", ", Solvers.Names)}");
        string name = Solver.Name();
        if (Solver != Solver.Heun && Alpha != 1)
            throw new ArgumentException($"alpha = {Alpha} is ignored by solver {name}; alpha applies to: heun (midpoint and ralston fix alpha to 1/2 and 2/3)");
        double a = EffectiveAlpha;
        // Appendix D.2: the second evaluation sits at t_i + alpha h. alpha <= 0 leaves no second
        // evaluation (or steps backwards); alpha > 1 evaluates beyond t_{i+1}, at the last step below
        // t_N = 0, where sigma(t) and the denoiser are not defined.
        if (!(a > 0 && a <= 1))
            throw new ArgumentException($"alpha = {a} is invalid; allowed: 0 < alpha <= 1 (the RK2 step evaluates at t_i + alpha h, " +
                "which must lie in (t_i, t_{i+1}]: alpha > 1 would pass t_{i+1}, below t_N = 0 at the last step)");
        if (!(SChurn >= 0) || double.IsInfinity(SChurn)) throw new ArgumentException($"S_churn = {SChurn} is invalid; allowed: S_churn >= 0");
        if (!(SNoise >= 0) || double.IsInfinity(SNoise)) throw new ArgumentException($"S_noise = {SNoise} is invalid; allowed: S_noise >= 0");
        if (double.IsNaN(STmin) || double.IsNaN(STmax) || STmin > STmax) throw new ArgumentException($"S_tmin = {STmin}, S_tmax = {STmax} are invalid; allowed: S_tmin <= S_tmax");
        if (!(Eta >= 0) || double.IsInfinity(Eta)) throw new ArgumentException($"eta = {Eta} is invalid; allowed: eta >= 0");
        if (Solver != Solver.EulerAncestral && Eta != 1)
            throw new ArgumentException($"eta = {Eta} is ignored by solver {name}; eta applies to: euler_ancestral");
        if (LmsOrder < 1 || LmsOrder > 8) throw new ArgumentException($"lms order = {LmsOrder} is invalid; allowed: 1..8");
        if (Solver != Solver.Lms && LmsOrder != 4)
            throw new ArgumentException($"lms order = {LmsOrder} is ignored by solver {name}; the lms order applies to: lms");
        if (!Enum.IsDefined(Schedule) || !Enum.IsDefined(Scaling)) throw new ArgumentException($"schedule {Schedule}, scaling {Scaling}: not a defined kind");
        if (!Solver.IsRungeKutta() && (Schedule != ScheduleKind.Linear || Scaling != ScalingKind.None))
            throw new ArgumentException($"solver {name} runs in sigma (schedule linear, scaling none); got schedule {Name(Schedule)}, scaling {Name(Scaling)}");
        string churnSolvers = string.Join(", ", Enum.GetValues<Solver>().Where(Solvers.TakesChurn).Select(Solvers.Name));
        if (SChurn != 0 && !Solver.TakesChurn())
            throw new ArgumentException($"S_churn = {SChurn} is ignored by solver {name}, which takes no churn; S_churn applies to: {churnSolvers}");
        bool churn = SChurn > 0 && Solver.TakesChurn();
        if (!churn && (STmin != 0 || STmax != double.PositiveInfinity))
            throw new ArgumentException($"S_tmin = {STmin}, S_tmax = {STmax} are ignored by solver {name} without churn; S_tmin and S_tmax apply to: {churnSolvers} with S_churn > 0");
        if (!churn && !(Solver == Solver.EulerAncestral && Eta > 0) && SNoise != 1)
            throw new ArgumentException($"S_noise = {SNoise} is ignored by solver {name} here, which adds no noise; S_noise applies to: {churnSolvers} with S_churn > 0, and euler_ancestral with eta > 0");
    }

    /// <summary>Names of the noise schedules.</summary>
    public static readonly string[] ScheduleNames = ["vp", "ve", "linear"];
    /// <summary>Names of the scalings.</summary>
    public static readonly string[] ScalingNames = ["vp", "none"];

    /// <summary>Parses a schedule name (<see cref="ScheduleNames"/>).</summary>
    public static ScheduleKind ParseSchedule(string name) => Array.IndexOf(ScheduleNames, name) is int i and >= 0
        ? (ScheduleKind)i : throw new ArgumentException($"unknown schedule '{name}'; allowed: {string.Join(", ", ScheduleNames)}");

    /// <summary>Parses a scaling name (<see cref="ScalingNames"/>).</summary>
    public static ScalingKind ParseScaling(string name) => name switch
    {
        "vp" => ScalingKind.Vp,
        "none" => ScalingKind.None,
        _ => throw new ArgumentException($"unknown scaling '{name}'; allowed: {string.Join(", ", ScalingNames)}"),
    };

    /// <summary>Lower-case name of a schedule.</summary>
    public static string Name(ScheduleKind k) => ScheduleNames[(int)k];

    /// <summary>Lower-case name of a scaling.</summary>
    public static string Name(ScalingKind k) => k == ScalingKind.Vp ? "vp" : "none";
}

/// <summary>
/// The resolved time grid of a run: formulation, t_0..t_N (t_N = 0) and sigma_i = sigma(t_i), all in
/// double. <see cref="Create"/> computes it from <see cref="SamplerSettings"/> as NVlabs/edm's
/// generalized sampler does; <see cref="FromSigmas"/> and <see cref="FromTimeSteps"/> take the
/// caller's own grid (k-diffusion style).
/// </summary>
public sealed class SamplingPlan
{
    /// <summary>The settings this plan resolves (for a caller's grid, with <see cref="SamplerSettings.Steps"/> = N of the grid).</summary>
    public SamplerSettings Settings { get; }
    /// <summary>
    /// The formulation (schedule + scaling). With the vp schedule, its refit beta_d and beta_min are
    /// <c>((VpSchedule)plan.Formulation.Schedule).BetaD</c> and <c>.BetaMin</c>.
    /// </summary>
    public Formulation Formulation { get; }
    /// <summary>Time steps t_0..t_N, t_N = 0.</summary>
    public double[] T { get; }
    /// <summary>Noise levels sigma(t_0)..sigma(t_N) = 0.</summary>
    public double[] Sigma { get; }
    /// <summary>Noise range used: the settings' (clamped to the denoiser's), or sigma_{N-1} of a caller's grid.</summary>
    public double SigmaMin { get; }
    /// <summary>Noise range used: the settings' (clamped to the denoiser's), or sigma_0 of a caller's grid.</summary>
    public double SigmaMax { get; }
    /// <summary>Number of steps N.</summary>
    public int Steps => T.Length - 1;

    SamplingPlan(SamplerSettings settings, Formulation f, double[] t, double sigmaMin, double sigmaMax)
    {
        Settings = settings;
        Formulation = f;
        T = t;
        Sigma = t.Select(f.Sigma).ToArray();
        Sigma[^1] = 0;
        SigmaMin = sigmaMin;
        SigmaMax = sigmaMax;
    }

    /// <summary>
    /// Resolves the settings: default range per discretization, clamped to the denoiser's
    /// [denoiserSigmaMin, denoiserSigmaMax]; the vp schedule refit to that range as NVlabs/edm does;
    /// t_i = sigma^-1(round(sigma_i)).
    /// </summary>
    public static SamplingPlan Create(SamplerSettings s, Func<double, double>? roundSigma = null,
        double denoiserSigmaMin = 0, double denoiserSigmaMax = double.PositiveInfinity)
    {
        s.Validate();
        var (lo, hi) = TimeSteps.DefaultSigmaRange(s.Discretization);
        double sigmaMin = Math.Max(s.SigmaMin ?? lo, denoiserSigmaMin);
        double sigmaMax = Math.Min(s.SigmaMax ?? hi, denoiserSigmaMax);
        TimeSteps.Validate(s.Steps, sigmaMin, sigmaMax, s.Rho);
        var sigmaSteps = TimeSteps.SigmaSteps(s.Discretization, s.Steps, sigmaMin, sigmaMax, s.Rho);
        var f = new Formulation(ScheduleOf(s.Schedule, sigmaMin, sigmaMax), s.Scaling);
        return new SamplingPlan(s, f, TimeSteps.TimeStepsFor(f, sigmaSteps, roundSigma), sigmaMin, sigmaMax);
    }

    static NoiseSchedule ScheduleOf(ScheduleKind kind, double sigmaMin, double sigmaMax) => kind switch
    {
        ScheduleKind.Vp => VpSchedule.Refit(sigmaMin, sigmaMax),
        ScheduleKind.Ve => new VeSchedule(),
        _ => new LinearSchedule(),
    };

    /// <summary>
    /// A plan on the caller's noise levels sigma_0 &gt; ... &gt; sigma_N = 0 (k-diffusion's <c>sigmas</c>,
    /// e.g. from <see cref="TimeSteps.EdmTable"/>). The array must have at least 2 entries, be finite
    /// and strictly decreasing, and end with 0 (no 0 is appended: pass k-diffusion's
    /// <c>append_zero</c> output as it is). The grid replaces the settings' Steps, Discretization,
    /// SigmaMin, SigmaMax and Rho: <see cref="Settings"/> is a copy with Steps = N (so the churn's
    /// S_churn / N and <see cref="SamplerSettings.Nfe"/> count this grid). The settings' schedule
    /// maps the levels to time, t_i = sigma^-1(round(sigma_i)): linear (the default, sigma(t) = t),
    /// ve, or vp refit to [sigma_{N-1}, sigma_0] as <see cref="Create"/> refits it to its range.
    /// The levels are not clamped to the denoiser's range. Throws <see cref="ArgumentException"/>
    /// naming the rule an array breaks.
    /// </summary>
    public static SamplingPlan FromSigmas(double[] sigmas, SamplerSettings s, Func<double, double>? roundSigma = null)
    {
        ValidateGrid(sigmas, "sigmas");
        int n = sigmas.Length - 1;
        s = s with { Steps = n };
        s.Validate();
        if (s.Schedule == ScheduleKind.Vp && !(sigmas[n - 1] < sigmas[0]))
            throw new ArgumentException($"FromSigmas: the vp schedule is refit to [sigma_(N-1), sigma_0] and needs sigma_(N-1) < sigma_0; give at least 2 non-zero levels (got {n})");
        var f = new Formulation(ScheduleOf(s.Schedule, sigmas[n - 1], sigmas[0]), s.Scaling);
        return new SamplingPlan(s, f, TimeSteps.TimeStepsFor(f, sigmas[..n], roundSigma), sigmas[n - 1], sigmas[0]);
    }

    /// <summary>
    /// A plan on the caller's time steps t_0 &gt; ... &gt; t_N = 0 in the time variable of
    /// <paramref name="formulation"/> (e.g. <see cref="TimeSteps.VpTable"/> with
    /// <see cref="Formulation.Vp"/>). The same rules as <see cref="FromSigmas"/> apply to the array,
    /// and the grid replaces the same settings. The formulation defaults to the settings' schedule
    /// with Table 1's parameters (vp: beta_d 19.9, beta_min 0.1, not refit: the caller's t already
    /// fixes the time variable) and the settings' scaling; a formulation given must have the
    /// settings' schedule and scaling. The t_i are used as given (no rounding).
    /// </summary>
    public static SamplingPlan FromTimeSteps(double[] t, SamplerSettings s, Formulation? formulation = null)
    {
        ValidateGrid(t, "t");
        s = s with { Steps = t.Length - 1 };
        s.Validate();
        var f = formulation ?? new Formulation(s.Schedule switch
        {
            ScheduleKind.Vp => new VpSchedule(),
            ScheduleKind.Ve => new VeSchedule(),
            _ => new LinearSchedule(),
        }, s.Scaling);
        if (f.Schedule.Name != SamplerSettings.Name(s.Schedule) || f.Scaling != s.Scaling)
            throw new ArgumentException($"FromTimeSteps: the formulation ({f}) differs from the settings' (schedule {SamplerSettings.Name(s.Schedule)}, scaling {SamplerSettings.Name(s.Scaling)}); give settings with the formulation's schedule and scaling");
        var sigma = t.Select(f.Sigma).ToArray();
        return new SamplingPlan(s, f, (double[])t.Clone(), sigma[^2], sigma[0]);
    }

    // A caller's grid: at least 2 entries, finite, strictly decreasing, ending with 0.
    static void ValidateGrid(double[] a, string name)
    {
        const string rule = "allowed: at least 2 finite values, strictly decreasing, ending with 0";
        if (a is null || a.Length < 2)
            throw new ArgumentException($"{name} has {a?.Length ?? 0} entries; {rule} (N >= 1 steps)");
        for (int i = 0; i < a.Length; i++)
        {
            if (!double.IsFinite(a[i])) throw new ArgumentException($"{name}[{i}] = {a[i]} is not finite; {rule}");
            if (i > 0 && !(a[i] < a[i - 1])) throw new ArgumentException($"{name}[{i}] = {a[i]:R} is not below {name}[{i - 1}] = {a[i - 1]:R}; {rule}");
        }
        if (a[^1] != 0) throw new ArgumentException($"{name}[{a.Length - 1}] = {a[^1]:R} is not 0; {rule} (append 0 as k-diffusion's append_zero does)");
    }

    /// <summary>
    /// Algorithm 2 line 4: the churn factor gamma_i = min(S_churn / N, sqrt(2) - 1) when
    /// S_tmin &lt;= sigma(t_i) &lt;= S_tmax, else 0.
    /// </summary>
    public double Gamma(int i)
    {
        var s = Settings;
        double sigma = Sigma[i];
        if (s.SChurn <= 0 || sigma < s.STmin || sigma > s.STmax) return 0;
        return Math.Min(s.SChurn / Steps, Math.Sqrt(2) - 1);
    }

    /// <summary>
    /// Algorithm 2 line 5: t_hat = sigma^-1(round(sigma(t_i) (1 + gamma_i))), or t_i when gamma_i = 0
    /// (<paramref name="roundSigma"/>: the denoiser's rounding, as the samplers pass it).
    /// </summary>
    public double THat(int i, Func<double, double>? roundSigma = null)
    {
        double gamma = Gamma(i);
        if (gamma == 0) return T[i];
        double sigma = Sigma[i];
        double sigmaHat = sigma + gamma * sigma;
        return Formulation.SigmaInv(roundSigma is null ? sigmaHat : roundSigma(sigmaHat));
    }

    /// <summary>sigma(t_hat_i): the noise level step i evaluates the denoiser at first (k-diffusion's sigma_hat).</summary>
    public double SigmaHat(int i, Func<double, double>? roundSigma = null) => Formulation.Sigma(THat(i, roundSigma));
}

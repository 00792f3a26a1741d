// Table 1 of Karras et al. 2022 (docs/formulas.md section 2): the noise level schedule sigma(t),
// its derivative and inverse, and the signal scaling s(t) with its derivative, for the VP, VE,
// iDDPM/DDIM and EDM formulations. All arithmetic in double (schedules and step sizes are never
// float32: sigma spans 0.002..80 and the step-size differences lose digits otherwise).
//
// NVlabs/edm's generalized sampler splits a formulation into a noise level schedule (vp | ve |
// linear) and a scaling (vp | none); Formulation is exactly that pair, and the four Table 1
// columns are presets: VP = (vp, vp), VE = (ve, none), iDDPM = EDM = (linear, none).
namespace Edm.Sampling;

/// <summary>A noise level schedule sigma(t) with its derivative and inverse (Table 1).</summary>
public abstract class NoiseSchedule
{
    /// <summary>Name as the generalized sampler spells it: "vp", "ve" or "linear".</summary>
    public abstract string Name { get; }
    /// <summary>sigma(t).</summary>
    public abstract double Sigma(double t);
    /// <summary>sigma'(t) = d sigma / d t.</summary>
    public abstract double SigmaDeriv(double t);
    /// <summary>sigma^-1(sigma): the time t at which the schedule reaches <paramref name="sigma"/>.</summary>
    public abstract double SigmaInv(double sigma);
}

/// <summary>
/// VP: sigma(t) = sqrt(exp(beta_d t^2/2 + beta_min t) - 1) (Table 1), written with expm1 so that
/// small t keeps its digits.
/// </summary>
public sealed class VpSchedule(double betaD = VpSchedule.DefaultBetaD, double betaMin = VpSchedule.DefaultBetaMin) : NoiseSchedule
{
    /// <summary>Table 1 default beta_d.</summary>
    public const double DefaultBetaD = 19.9;
    /// <summary>Table 1 default beta_min.</summary>
    public const double DefaultBetaMin = 0.1;

    /// <summary>beta_d (slope of the linear beta(t)).</summary>
    public double BetaD { get; } = betaD;
    /// <summary>beta_min (beta(0)).</summary>
    public double BetaMin { get; } = betaMin;

    /// <inheritdoc/>
    public override string Name => "vp";

    /// <summary>The exponent beta_d t^2/2 + beta_min t = -2 ln s(t).</summary>
    public double Exponent(double t) => 0.5 * BetaD * t * t + BetaMin * t;

    /// <inheritdoc/>
    public override double Sigma(double t) => Math.Sqrt(MathD.ExpM1(Exponent(t)));

    /// <summary>sigma'(t) = (beta_d t + beta_min) exp(beta_d t^2/2 + beta_min t) / (2 sigma(t)).</summary>
    public override double SigmaDeriv(double t) => (BetaD * t + BetaMin) * Math.Exp(Exponent(t)) / (2 * Sigma(t));

    /// <summary>sigma^-1 = (sqrt(beta_min^2 + 2 beta_d ln(sigma^2 + 1)) - beta_min) / beta_d.</summary>
    public override double SigmaInv(double sigma) =>
        (Math.Sqrt(BetaMin * BetaMin + 2 * BetaD * MathD.Log1P(sigma * sigma)) - BetaMin) / BetaD;

    /// <summary>
    /// NVlabs/edm's refit (docs/formulas.md section 2): beta_d, beta_min such that
    /// sigma(eps_s) = sigmaMin and sigma(1) = sigmaMax.
    /// </summary>
    public static VpSchedule Refit(double sigmaMin, double sigmaMax, double epsilonS = TimeSteps.VpEpsilonS)
    {
        double lnMax = MathD.Log1P(sigmaMax * sigmaMax);
        double betaD = 2 * (MathD.Log1P(sigmaMin * sigmaMin) / epsilonS - lnMax) / (epsilonS - 1);
        double betaMin = lnMax - 0.5 * betaD;
        return new VpSchedule(betaD, betaMin);
    }
}

/// <summary>VE: sigma(t) = sqrt(t) (Table 1).</summary>
public sealed class VeSchedule : NoiseSchedule
{
    /// <inheritdoc/>
    public override string Name => "ve";
    /// <inheritdoc/>
    public override double Sigma(double t) => Math.Sqrt(t);
    /// <summary>sigma'(t) = 1 / (2 sqrt(t)).</summary>
    public override double SigmaDeriv(double t) => 0.5 / Math.Sqrt(t);
    /// <summary>sigma^-1(sigma) = sigma^2.</summary>
    public override double SigmaInv(double sigma) => sigma * sigma;
}

/// <summary>iDDPM and EDM: sigma(t) = t (Table 1).</summary>
public sealed class LinearSchedule : NoiseSchedule
{
    /// <inheritdoc/>
    public override string Name => "linear";
    /// <inheritdoc/>
    public override double Sigma(double t) => t;
    /// <inheritdoc/>
    public override double SigmaDeriv(double t) => 1;
    /// <inheritdoc/>
    public override double SigmaInv(double sigma) => sigma;
}

/// <summary>The noise schedule sigma(t) of a formulation (Table 1), in <see cref="SamplerSettings.ScheduleNames"/> order.</summary>
public enum ScheduleKind
{
    /// <summary>VP: sigma(t) = sqrt(exp(beta_d t^2 / 2 + beta_min t) - 1).</summary>
    Vp,
    /// <summary>VE: sigma(t) = sqrt(t).</summary>
    Ve,
    /// <summary>sigma(t) = t (iDDPM and EDM).</summary>
    Linear,
}

/// <summary>The signal scaling s(t) of a formulation.</summary>
public enum ScalingKind
{
    /// <summary>s(t) = 1 (VE, iDDPM, EDM).</summary>
    None,
    /// <summary>s(t) = 1 / sqrt(1 + sigma(t)^2) (VP: equals 1/sqrt(exp(beta_d t^2/2 + beta_min t)) on the VP schedule).</summary>
    Vp,
}

/// <summary>
/// One formulation of the probability-flow ODE: a noise schedule and a scaling (Table 1). Every
/// sampler in this library takes one, so Algorithm 1 runs for arbitrary sigma(t), s(t).
/// </summary>
public sealed class Formulation(NoiseSchedule schedule, ScalingKind scaling)
{
    /// <summary>The noise level schedule.</summary>
    public NoiseSchedule Schedule { get; } = schedule;
    /// <summary>The scaling.</summary>
    public ScalingKind Scaling { get; } = scaling;

    /// <summary>sigma(t).</summary>
    public double Sigma(double t) => Schedule.Sigma(t);
    /// <summary>sigma'(t).</summary>
    public double SigmaDeriv(double t) => Schedule.SigmaDeriv(t);
    /// <summary>sigma^-1(sigma).</summary>
    public double SigmaInv(double sigma) => Schedule.SigmaInv(sigma);

    /// <summary>s(t).</summary>
    public double S(double t)
    {
        if (Scaling == ScalingKind.None) return 1;
        double sigma = Sigma(t);
        return 1 / Math.Sqrt(1 + sigma * sigma);
    }

    /// <summary>s'(t): 0, or for VP scaling -sigma(t) sigma'(t) s(t)^3 (chain rule on 1/sqrt(1+sigma^2)).</summary>
    public double SDeriv(double t)
    {
        if (Scaling == ScalingKind.None) return 0;
        double s = S(t);
        return -Sigma(t) * SigmaDeriv(t) * s * s * s;
    }

    /// <summary>
    /// The ODE's velocity coefficients at t (Algorithm 1, line 4):
    /// dx/dt = a x - b D(x / s(t); sigma(t)) with a = sigma'/sigma + s'/s and b = sigma' s / sigma.
    /// </summary>
    public (double A, double B) VelocityCoefficients(double t)
    {
        double sigma = Sigma(t), dSigma = SigmaDeriv(t), s = S(t);
        return (dSigma / sigma + SDeriv(t) / s, dSigma * s / sigma);
    }

    /// <summary>Table 1 VP column: VP schedule with VP scaling.</summary>
    public static Formulation Vp(double betaD = VpSchedule.DefaultBetaD, double betaMin = VpSchedule.DefaultBetaMin) =>
        new(new VpSchedule(betaD, betaMin), ScalingKind.Vp);
    /// <summary>Table 1 VE column: sigma(t) = sqrt(t), s = 1.</summary>
    public static Formulation Ve() => new(new VeSchedule(), ScalingKind.None);
    /// <summary>Table 1 iDDPM column: sigma(t) = t, s = 1.</summary>
    public static Formulation Iddpm() => new(new LinearSchedule(), ScalingKind.None);
    /// <summary>Table 1 EDM column: sigma(t) = t, s = 1.</summary>
    public static Formulation Edm() => new(new LinearSchedule(), ScalingKind.None);

    /// <inheritdoc/>
    public override string ToString() => $"schedule {Schedule.Name}, scaling {(Scaling == ScalingKind.Vp ? "vp" : "none")}";
}

/// <summary>Double-precision helpers that System.Math lacks.</summary>
public static class MathD
{
    /// <summary>exp(x) - 1 without cancellation for small x (Kahan's trick).</summary>
    public static double ExpM1(double x)
    {
        if (Math.Abs(x) > 0.5) return Math.Exp(x) - 1;
        double u = Math.Exp(x);
        if (u == 1) return x;
        double um1 = u - 1;
        if (um1 == -1) return -1;
        return um1 * x / Math.Log(u);
    }

    /// <summary>ln(1 + x) without cancellation for small x.</summary>
    public static double Log1P(double x)
    {
        double u = 1 + x;
        if (u == 1) return x;
        return Math.Log(u) * x / (u - 1);
    }
}

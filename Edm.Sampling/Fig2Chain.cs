// The sampler chain of the paper's Fig. 2 (Karras et al. 2022, Sec. 3): for each formulation of
// Table 1 (VP, VE, iDDPM) its original deterministic sampler, then one change at a time towards
// EDM's (docs/formulas.md sections 2 and 3):
//   original        Euler, the formulation's time steps, sigma(t) and s(t)
//   + heun          Heun (Algorithm 1), otherwise the same
//   + edm_t         Heun on EDM's time steps (Eq. 5, rho = 7), the formulation's sigma(t) and s(t)
//   + edm_sigma_s   Heun, EDM's time steps, sigma(t) = t and s(t) = 1: EDM's own sampler
// Each is a SamplerSettings value, sampled with NVlabs/edm's generalized sampler (the noise range
// is the discretization's default). NFE: Euler takes N = NFE steps, Heun N = (NFE + 1) / 2 steps
// (2N - 1 evaluations: NFE itself when odd, NFE - 1 when even).
namespace Edm.Sampling;

/// <summary>One point of the Fig. 2 study: a formulation, a step of its chain and the settings that run it.</summary>
/// <param name="Formulation">"VP", "VE", "iDDPM" (Table 1's columns), or "EDM" for the reference curve.</param>
/// <param name="Sampler">The chain step's id: "original", "heun", "edm_t", "edm_sigma_s", or "edm" for the reference curve.</param>
/// <param name="Settings">The sampler settings of this point.</param>
public sealed record Fig2Variant(string Formulation, string Sampler, SamplerSettings Settings);

/// <summary>The sampler chains of the paper's Fig. 2 (Sec. 3; Table 1 gives each formulation's sampler).</summary>
public static class Fig2Chain
{
    /// <summary>The formulations of Fig. 2, as Table 1 names them.</summary>
    public static readonly string[] Formulations = ["VP", "VE", "iDDPM"];

    /// <summary>The chain's step ids, in order.</summary>
    public static readonly string[] Samplers = ["original", "heun", "edm_t", "edm_sigma_s"];

    /// <summary>The reference curve's formulation and sampler id (EDM's sampler: Heun, EDM steps, sigma(t) = t, s(t) = 1).</summary>
    public const string Edm = "EDM", EdmSampler = "edm";

    /// <summary>Smallest NFE accepted: Heun needs N = 2 steps (3 NFE) for one second-order step (the last step is Euler).</summary>
    public const int MinNfe = 3;

    /// <summary>A chain step's label as the paper's legend words it (e.g. "+ EDM sigma(t), s(t)").</summary>
    public static string Label(string sampler) => sampler switch
    {
        "original" => "original (Euler)",
        "heun" => "+ Heun",
        "edm_t" => "+ EDM t_i",
        "edm_sigma_s" => "+ EDM sigma(t), s(t)",
        EdmSampler => "EDM",
        _ => throw new ArgumentException($"unknown Fig. 2 sampler '{sampler}'; allowed: {string.Join(", ", Samplers)}, {EdmSampler}"),
    };

    /// <summary>Steps N for a solver at an NFE budget: N = NFE for Euler, N = (NFE + 1) / 2 for Heun (2N - 1 evaluations).</summary>
    public static int StepsFor(Solver solver, int nfe) => solver == Solver.Heun ? (nfe + 1) / 2 : nfe;

    /// <summary>
    /// Table 1's original sampler of a formulation: time steps, schedule sigma(t) and scaling s(t).
    /// VP: vp steps, vp schedule, vp scaling; VE: ve steps, sigma(t) = sqrt(t), no scaling;
    /// iDDPM: its u_j steps, sigma(t) = t, no scaling.
    /// </summary>
    public static (Discretization Steps, ScheduleKind Schedule, ScalingKind Scaling) Table1(string formulation) => formulation switch
    {
        "VP" => (Discretization.Vp, ScheduleKind.Vp, ScalingKind.Vp),
        "VE" => (Discretization.Ve, ScheduleKind.Ve, ScalingKind.None),
        "iDDPM" => (Discretization.Iddpm, ScheduleKind.Linear, ScalingKind.None),
        _ => throw new ArgumentException($"unknown formulation '{formulation}'; allowed: {string.Join(", ", Formulations)}"),
    };

    /// <summary>The four points of a formulation's chain at an NFE budget (at least <see cref="MinNfe"/>), in the paper's order.</summary>
    public static IReadOnlyList<Fig2Variant> Chain(string formulation, int nfe)
    {
        CheckNfe(nfe);
        var (disc, schedule, scaling) = Table1(formulation);
        var original = new SamplerSettings
        {
            Solver = Solver.Euler, Steps = StepsFor(Solver.Euler, nfe), Discretization = disc, Schedule = schedule, Scaling = scaling,
        };
        var heun = original with { Solver = Solver.Heun, Steps = StepsFor(Solver.Heun, nfe) };
        var edmSteps = heun with { Discretization = Discretization.Edm, Rho = TimeSteps.DefaultRho };
        var edmSchedule = edmSteps with { Schedule = ScheduleKind.Linear, Scaling = ScalingKind.None };
        return
        [
            new(formulation, "original", original),
            new(formulation, "heun", heun),
            new(formulation, "edm_t", edmSteps),
            new(formulation, "edm_sigma_s", edmSchedule),
        ];
    }

    /// <summary>EDM's sampler at an NFE budget: Heun, EDM time steps (rho = 7), sigma(t) = t, s(t) = 1 (the settings' defaults).</summary>
    public static Fig2Variant EdmReference(int nfe)
    {
        CheckNfe(nfe);
        return new(Edm, EdmSampler, new SamplerSettings { Solver = Solver.Heun, Steps = StepsFor(Solver.Heun, nfe) });
    }

    /// <summary>Every point of the study at one NFE: EDM's reference, then each formulation's chain.</summary>
    public static IReadOnlyList<Fig2Variant> All(int nfe) => [EdmReference(nfe), .. Formulations.SelectMany(f => Chain(f, nfe))];

    static void CheckNfe(int nfe)
    {
        if (nfe < MinNfe)
            throw new ArgumentException($"NFE {nfe} is too small; allowed: NFE >= {MinNfe} (Heun takes N = (NFE + 1) / 2 steps and needs N >= 2 for a second-order step)");
    }
}

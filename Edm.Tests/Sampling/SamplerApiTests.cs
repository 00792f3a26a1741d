using Edm.Kernels;
using Edm.Sampling;
using Xunit;

namespace Edm.Tests.Sampling;

// The sampler API for research code (issue 12): plans from the caller's own grid.
[Collection("cpu-device")]
public sealed class SamplerApiTests(CpuDevice cpu) : IClassFixture<CpuDevice>
{
    readonly EdmDevice _d = cpu.Device;

    [Fact]
    public void PlanFromTheEdmTableEqualsThePlanTheSettingsMake()
    {
        var settings = new SamplerSettings { Steps = 18 };
        var made = SamplingPlan.Create(settings);
        // The settings' Steps is replaced by the grid's N: a settings object with Steps = 5 gives the same plan.
        var given = SamplingPlan.FromSigmas(TimeSteps.EdmTable(18), settings with { Steps = 5 });
        Assert.Equal(made.T, given.T);
        Assert.Equal(made.Sigma, given.Sigma);
        Assert.Equal(made.Settings, given.Settings);
        // A caller's grid's range is its own [sigma_(N-1), sigma_0] (Eq. 5 ends 3e-18 above 0.002).
        Assert.Equal((made.Sigma[17], made.SigmaMax, 18), (given.SigmaMin, given.SigmaMax, given.Steps));
    }

    [Fact]
    public void PlanFromVpTimeStepsIsTheVpPlan()
    {
        // Table 1's VP time steps in VP time with Table 1's beta: the plan the vp settings make
        // (which refit beta to [sigma(1e-3), sigma(1)] and so get back 19.9 and 0.1 to rounding).
        var vp = new SamplerSettings { Steps = 10, Solver = Solver.Euler, Discretization = Discretization.Vp, Schedule = ScheduleKind.Vp, Scaling = ScalingKind.Vp };
        var made = SamplingPlan.Create(vp);
        var given = SamplingPlan.FromTimeSteps(TimeSteps.VpTable(10), vp);
        for (int i = 0; i <= 10; i++)
        {
            Assert.True(Math.Abs(made.T[i] - given.T[i]) <= 1e-9, $"t_{i}: {made.T[i]} vs {given.T[i]}");
            Assert.True(Math.Abs(made.Sigma[i] - given.Sigma[i]) <= 1e-9 * made.Sigma[i], $"sigma_{i}: {made.Sigma[i]} vs {given.Sigma[i]}");
        }
        var table = (VpSchedule)given.Formulation.Schedule;
        Assert.Equal((VpSchedule.DefaultBetaD, VpSchedule.DefaultBetaMin), (table.BetaD, table.BetaMin));
        // A formulation that is not the settings' is refused.
        var e = Assert.Throws<ArgumentException>(() => SamplingPlan.FromTimeSteps(TimeSteps.VpTable(10), vp, Formulation.Ve()));
        Assert.Contains("schedule vp, scaling vp", e.Message);
    }

    [Fact]
    public void PlanExposesGammaAndSigmaHatPerStep()
    {
        var plan = SamplingPlan.FromSigmas([80, 40, 10, 1, 0.03, 0], new SamplerSettings { SChurn = 1, STmin = 0.05, STmax = 50 });
        // gamma_i = min(S_churn / N, sqrt 2 - 1) = 0.2 inside [S_tmin, S_tmax], else 0.
        Assert.Equal([0, 0.2, 0.2, 0.2, 0], Enumerable.Range(0, 5).Select(plan.Gamma));
        Assert.Equal([80, 48, 12, 1.2, 0.03], Enumerable.Range(0, 5).Select(i => plan.SigmaHat(i)));
        Assert.Equal(plan.SigmaHat(1), plan.THat(1));                    // linear schedule: t = sigma
        Assert.Equal(50, plan.SigmaHat(1, s => Math.Round(s / 50) * 50)); // the denoiser's rounding
    }

    [Theory]
    [InlineData("heun", 0.0)]
    [InlineData("heun", 40.0)]
    [InlineData("euler_ancestral", 0.0)]
    [InlineData("dpmpp_2m", 0.0)]
    [InlineData("lms", 0.0)]
    public void SamplerOnCallerSigmasEqualsSamplerFromSettings(string solver, double churn)
    {
        var data = AnalyticDataset.Create(DatasetKind.Points, 4, 6);
        using var den = (IDisposable)AnalyticDenoisers.For(_d, data);
        ulong[] seeds = [31, 32];
        var s = new SamplerSettings { Solver = Solvers.Parse(solver), Steps = 9 };
        if (churn > 0) s = s with { SChurn = churn, STmin = 0.05, STmax = 50 };
        using var z = Samplers.Latents(_d, seeds, 4);
        using var fromSettings = Samplers.Sample((IDenoiser)den, z, s, seeds).X;
        using var fromSigmas = Samplers.Sample((IDenoiser)den, z, SamplingPlan.FromSigmas(TimeSteps.EdmTable(9), s), seeds).X;
        Assert.Equal(fromSettings.ToArray(), fromSigmas.ToArray());
    }

    [Theory]
    [InlineData(new[] { 80.0 }, "has 1 entries")]
    [InlineData(new[] { 80.0, 1, 1, 0 }, "sigmas[2] = 1 is not below sigmas[1] = 1")]
    [InlineData(new[] { 80.0, double.NaN, 0 }, "sigmas[1] = NaN is not finite")]
    [InlineData(new[] { double.PositiveInfinity, 1, 0 }, "is not finite")]
    [InlineData(new[] { 80.0, 1 }, "sigmas[1] = 1 is not 0")]
    [InlineData(new[] { 1.0, 0, -1 }, "is not 0")]
    public void BadCallerGridsAreRefusedWithTheRule(double[] sigmas, string expected)
    {
        var e = Assert.Throws<ArgumentException>(() => SamplingPlan.FromSigmas(sigmas, new SamplerSettings()));
        Assert.Contains(expected, e.Message);
        Assert.Contains("strictly decreasing, ending with 0", e.Message);
        Assert.Contains("strictly decreasing", Assert.Throws<ArgumentException>(() => SamplingPlan.FromTimeSteps(sigmas, new SamplerSettings())).Message);
    }

    [Theory]
    [InlineData("euler", "alpha", "alpha = 0.5 is ignored by solver euler; alpha applies to: heun")]
    [InlineData("midpoint", "alpha", "alpha = 0.5 is ignored by solver midpoint")]
    [InlineData("dpm_2", "alpha", "alpha = 0.5 is ignored by solver dpm_2")]
    [InlineData("heun", "eta", "eta = 0.5 is ignored by solver heun; eta applies to: euler_ancestral")]
    [InlineData("dpmpp_2m", "eta", "eta = 0.5 is ignored by solver dpmpp_2m")]
    [InlineData("heun", "lms_order", "lms order = 3 is ignored by solver heun; the lms order applies to: lms")]
    [InlineData("lms", "s_churn", "S_churn = 10 is ignored by solver lms, which takes no churn; S_churn applies to: euler, heun, midpoint, ralston")]
    [InlineData("euler_ancestral", "s_churn", "ignored by solver euler_ancestral, which takes no churn")]
    [InlineData("dpmpp_2m", "s_churn", "ignored by solver dpmpp_2m, which takes no churn")]
    [InlineData("heun", "s_tmin", "S_tmin = 0.05, S_tmax = Infinity are ignored by solver heun without churn; S_tmin and S_tmax apply to: euler, heun, midpoint, ralston with S_churn > 0")]
    [InlineData("euler", "s_tmax", "S_tmin = 0, S_tmax = 50 are ignored by solver euler without churn")]
    [InlineData("heun", "s_noise", "S_noise = 1.003 is ignored by solver heun here, which adds no noise; S_noise applies to: euler, heun, midpoint, ralston with S_churn > 0, and euler_ancestral with eta > 0")]
    [InlineData("dpmpp_2m", "s_noise", "S_noise = 1.003 is ignored by solver dpmpp_2m")]
    [InlineData("euler_ancestral", "eta0_s_noise", "S_noise = 1.003 is ignored by solver euler_ancestral")]
    public void SettingsASolverIgnoresAreRefused(string solver, string setting, string expected)
    {
        var s = new SamplerSettings { Solver = Solvers.Parse(solver) };
        s = setting switch
        {
            "alpha" => s with { Alpha = 0.5 },
            "eta" => s with { Eta = 0.5 },
            "lms_order" => s with { LmsOrder = 3 },
            "s_churn" => s with { SChurn = 10 },
            "s_tmin" => s with { STmin = 0.05 },
            "s_tmax" => s with { STmax = 50 },
            "s_noise" => s with { SNoise = 1.003 },
            _ => s with { Eta = 0, SNoise = 1.003 },
        };
        Assert.Contains(expected, Assert.Throws<ArgumentException>(s.Validate).Message);
    }

    [Fact]
    public void SettingsEachSolverTakesAreAccepted()
    {
        new SamplerSettings { Solver = Solver.Heun, Alpha = 0.7 }.Validate();
        new SamplerSettings { Solver = Solver.EulerAncestral, Eta = 0.5, SNoise = 1.003 }.Validate();
        new SamplerSettings { Solver = Solver.Lms, LmsOrder = 3 }.Validate();
        foreach (var solver in new[] { Solver.Euler, Solver.Heun, Solver.Midpoint, Solver.Ralston })
            new SamplerSettings { Solver = solver, SChurn = 10, STmin = 0.05, STmax = 50, SNoise = 1.003 }.Validate();
        foreach (var name in SamplerSettings.NamedSamplers) SamplerSettings.Named(name, 18).Validate();
        // The truncation suite's settings, for every solver and discretization.
        var cfg = new Edm.Verification.TruncationConfig();
        foreach (var solver in Enum.GetValues<Solver>())
        {
            foreach (var d in Enum.GetValues<Discretization>()) cfg.Global(solver, d, 8).Validate();
            if (solver.IsRungeKutta()) cfg.Local(solver, 7).Validate();
        }
    }
}

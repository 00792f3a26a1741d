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
    [InlineData("lms", "s_churn", "S_churn = 10 is ignored by solver lms, which takes no churn; S_churn applies to: euler, heun, midpoint, ralston, dpm_2")]
    [InlineData("euler_ancestral", "s_churn", "ignored by solver euler_ancestral, which takes no churn")]
    [InlineData("dpmpp_2m", "s_churn", "ignored by solver dpmpp_2m, which takes no churn")]
    [InlineData("heun", "s_tmin", "S_tmin = 0.05, S_tmax = Infinity are ignored by solver heun without churn; S_tmin and S_tmax apply to: euler, heun, midpoint, ralston, dpm_2 with S_churn > 0")]
    [InlineData("euler", "s_tmax", "S_tmin = 0, S_tmax = 50 are ignored by solver euler without churn")]
    [InlineData("heun", "s_noise", "S_noise = 1.003 is ignored by solver heun here, which adds no noise; S_noise applies to: euler, heun, midpoint, ralston, dpm_2 with S_churn > 0, and euler_ancestral with eta > 0")]
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
        foreach (var solver in new[] { Solver.Euler, Solver.Heun, Solver.Midpoint, Solver.Ralston, Solver.Dpm2 })
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

    // ---- Noise source ----

    [Fact]
    public void DefaultNoiseIsThePerSamplePhiloxStreams()
    {
        // The default source draws step i's noise from Philox (seeds[b], stream i + 1), as the
        // samplers did before sources were injectable; a run with seeds equals one with PhiloxNoise.
        // (Compared within one run, not against recorded bits: float results depend on the SIMD width.)
        var data = AnalyticDataset.Create(DatasetKind.Gaussian, 3, 1);
        using var den = (IDisposable)AnalyticDenoisers.For(_d, data);
        ulong[] seeds = [21, 22];
        using (var eps = Tensor.Empty(_d, 2, 3))
        using (var want = Tensor.Empty(_d, 2, 3))
        {
            new PhiloxNoise(seeds).Normal(eps, 4);
            Ops.NormalPerSample(want, seeds, 5);
            Assert.Equal(want.ToArray(), eps.ToArray());
        }
        var cases = new[]
        {
            new SamplerSettings { Steps = 5, Solver = Solver.Heun, SChurn = 40, STmin = 0.05, STmax = 50, SNoise = 1.007 },
            new SamplerSettings { Steps = 5, Solver = Solver.EulerAncestral },
        };
        foreach (var s in cases)
        {
            using var z = Samplers.Latents(_d, seeds, 3);
            using var bySeeds = Samplers.Sample((IDenoiser)den, z, s, seeds).X;
            using var bySource = Samplers.Sample((IDenoiser)den, z, s, noise: new PhiloxNoise(seeds)).X;
            using var other = Samplers.Sample((IDenoiser)den, z, s, [23, 24]).X;
            Assert.Equal(bySeeds.ToArray(), bySource.ToArray());
            Assert.NotEqual(bySeeds.ToArray(), other.ToArray());   // the noise matters in these settings
        }
    }

    // Noise eps[e] = 0.1 (e + 1) (step + 1) - 0.25, the same for every sample; records the steps asked for.
    sealed class FixedNoise : INoiseSource
    {
        public readonly List<int> Steps = [];
        public void Normal(Tensor destination, int step)
        {
            Steps.Add(step);
            int n = destination.Shape[1];
            destination.CopyFrom(Enumerable.Range(0, destination.Shape[0] * n).Select(k => (float)(0.1 * (k % n + 1) * (step + 1) - 0.25)).ToArray());
        }
        public static double Eps(int step, int e) => (float)(0.1 * (e + 1) * (step + 1) - 0.25);
    }

    // The Gaussian's D(x; sigma) = mu + v / (v + sigma^2) (x - mu) on the host.
    static double GaussianD(AnalyticDataset data, double x, int e, double sigma) =>
        data.Means[e] + data.Variances[0] / (data.Variances[0] + sigma * sigma) * (x - data.Means[e]);

    [Fact]
    public void CustomNoiseReproducesAHandComputedFirstStep()
    {
        var data = AnalyticDataset.Create(DatasetKind.Gaussian, 3, 1);
        using var den = (IDisposable)AnalyticDenoisers.For(_d, data);
        using var z = Tensor.FromArray(_d, [0.5f, -1f, 2f], 1, 3);
        double[] z0 = [0.5, -1, 2];

        // euler_ancestral: x_1 = x_0 + (sigma_down - sigma_0) (x_0 - D) / sigma_0 + sigma_up eps_0.
        var ea = new SamplerSettings { Steps = 4, Solver = Solver.EulerAncestral };
        var plan = SamplingPlan.Create(ea);
        var noise = new FixedNoise();
        var xs = new List<float[]>();
        using (Samplers.Sample((IDenoiser)den, z, plan, noise: noise, callback: st => xs.Add(st.X.ToArray())).X) { }
        Assert.Equal([0, 1, 2], noise.Steps);                          // the step to 0 adds no noise
        double s0 = plan.Sigma[0], s1 = plan.Sigma[1];
        double up = Math.Sqrt(s1 * s1 * (s0 * s0 - s1 * s1) / (s0 * s0)), down = Math.Sqrt(s1 * s1 - up * up);
        for (int e = 0; e < 3; e++)
        {
            double x0 = z0[e] * s0;
            double x1 = x0 + (down - s0) * (x0 - GaussianD(data, x0, e, s0)) / s0 + up * FixedNoise.Eps(0, e);
            Assert.True(Math.Abs(xs[1][e] - x1) <= 1e-5 * (1 + Math.Abs(x1)), $"euler_ancestral e {e}: {xs[1][e]} vs {x1}");
        }

        // heun with churn: x_hat_0 = x_0 + sqrt(sigma_hat^2 - sigma_0^2) S_noise eps_0, a Heun step to x_1,
        // then step 1's churn.
        var heun = new SamplerSettings { Steps = 4, Solver = Solver.Heun, SChurn = 10, SNoise = 1.007 };
        plan = SamplingPlan.Create(heun);
        noise = new FixedNoise();
        xs.Clear();
        using (Samplers.Sample((IDenoiser)den, z, plan, noise: noise, callback: st => xs.Add(st.X.ToArray())).X) { }
        Assert.Equal([0, 1, 2, 3], noise.Steps);                       // S_tmin 0, S_tmax inf: every step churns
        s0 = plan.Sigma[0];
        s1 = plan.Sigma[1];
        double sh = s0 * (1 + (Math.Sqrt(2) - 1));                      // gamma = min(10 / 4, sqrt 2 - 1)
        for (int e = 0; e < 3; e++)
        {
            double xh = z0[e] * s0 + Math.Sqrt(sh * sh - s0 * s0) * 1.007 * FixedNoise.Eps(0, e);
            Assert.True(Math.Abs(xs[0][e] - xh) <= 1e-5 * (1 + Math.Abs(xh)), $"heun x_hat e {e}: {xs[0][e]} vs {xh}");
            double d = (xh - GaussianD(data, xh, e, sh)) / sh, xp = xh + (s1 - sh) * d;
            double dp = (xp - GaussianD(data, xp, e, s1)) / s1, x1 = xh + (s1 - sh) * (d + dp) / 2;
            // The callback of step 1 sees x_hat_1: x_1 with step 1's churn noise.
            double sh1 = s1 * Math.Sqrt(2), xh1 = x1 + Math.Sqrt(sh1 * sh1 - s1 * s1) * 1.007 * FixedNoise.Eps(1, e);
            Assert.True(Math.Abs(xs[1][e] - xh1) <= 1e-5 * (1 + Math.Abs(xh1)), $"heun x_hat_1 e {e}: {xs[1][e]} vs {xh1}");
        }
    }

    [Fact]
    public void SeedsAndANoiseSourceTogetherAreRefused()
    {
        var data = AnalyticDataset.Create(DatasetKind.Gaussian, 3, 1);
        using var den = (IDisposable)AnalyticDenoisers.For(_d, data);
        using var z = Tensor.Zeros(_d, 2, 3);
        var e = Assert.Throws<ArgumentException>(() => Samplers.Sample((IDenoiser)den, z, new SamplerSettings { Solver = Solver.EulerAncestral }, [1, 2], new FixedNoise()));
        Assert.Contains("not both", e.Message);
    }

    // ---- Per-step callback ----

    public static TheoryData<string> AllSolvers() => new(Solvers.Names);

    [Theory, MemberData(nameof(AllSolvers))]
    public void CallbackSeesEveryStepWithThePlansSigmas(string solver)
    {
        var data = AnalyticDataset.Create(DatasetKind.Gaussian, 3, 1);
        using var den = (IDisposable)AnalyticDenoisers.For(_d, data);
        ulong[] seeds = [41, 42];
        var s = new SamplerSettings { Solver = Solvers.Parse(solver), Steps = 6 };
        var plan = SamplingPlan.Create(s);
        var steps = new List<(int I, double T, double THat, double Sigma, double SigmaHat, float[] X, float[] D)>();
        using var z = Samplers.Latents(_d, seeds, 3);
        var result = Samplers.Sample((IDenoiser)den, z, plan, seeds, callback: st =>
            steps.Add((st.I, st.T, st.THat, st.Sigma, st.SigmaHat, st.X.ToArray(), st.Denoised.ToArray())));
        using var x = result.X;
        Assert.Equal(s.Nfe, result.Nfe);
        Assert.Equal(Enumerable.Range(0, 6), steps.Select(st => st.I));
        Assert.Equal(plan.Sigma[..6], steps.Select(st => st.Sigma));
        Assert.Equal(plan.Sigma[..6], steps.Select(st => st.SigmaHat));  // no churn
        Assert.Equal(plan.T[..6], steps.Select(st => st.T));
        Assert.Equal(plan.T[..6], steps.Select(st => st.THat));
        // Each Denoised is the Gaussian's D at the step's x and sigma.
        foreach (var st in steps)
            for (int k = 0; k < 6; k++)
            {
                double want = GaussianD(data, st.X[k], k % 3, st.SigmaHat);
                Assert.True(Math.Abs(st.D[k] - want) <= 1e-5 * (1 + Math.Abs(want)), $"{solver} step {st.I} k {k}: {st.D[k]} vs {want}");
            }
        // The last step to sigma = 0 lands on the last denoised (Euler from sigma_(N-1) to 0 is x - sigma d = D),
        // exactly for dpmpp_2m (returns D) and euler_ancestral (x sigma_down / sigma + D (1 - sigma_down / sigma)
        // with sigma_down = 0); lms's last step is its multistep formula instead.
        var got = x.ToArray();
        var last = steps[^1].D;
        if (solver is "dpmpp_2m" or "euler_ancestral") Assert.Equal(last, got);
        else if (solver != "lms")
            for (int k = 0; k < 6; k++) Assert.True(Math.Abs(got[k] - last[k]) <= 1e-5 * (1 + Math.Abs(last[k])), $"{solver} k {k}: {got[k]} vs {last[k]}");
    }

    [Fact]
    public void CallbackSeesTheChurnLevels()
    {
        var data = AnalyticDataset.Create(DatasetKind.Points, 3, 5);
        using var den = (IDisposable)AnalyticDenoisers.For(_d, data);
        var s = new SamplerSettings { Steps = 8, SChurn = 40, STmin = 0.05, STmax = 50 };
        var plan = SamplingPlan.Create(s);
        var seen = new List<(double Sigma, double SigmaHat, double THat)>();
        using var x = Samplers.Sample((IDenoiser)den, _d, [3], [3], s).X;
        using var z = Samplers.Latents(_d, [3], 3);
        using var y = Samplers.Sample((IDenoiser)den, z, plan, [3], callback: st => seen.Add((st.Sigma, st.SigmaHat, st.THat))).X;
        Assert.Equal(x.ToArray(), y.ToArray());                        // a callback changes nothing
        for (int i = 0; i < 8; i++)
        {
            Assert.Equal(plan.SigmaHat(i), seen[i].SigmaHat);
            Assert.Equal(plan.THat(i), seen[i].THat);
            Assert.Equal(plan.Sigma[i] is >= 0.05 and <= 50, seen[i].SigmaHat > seen[i].Sigma);
        }
    }

    // ---- dpm_2 with churn ----

    [Fact]
    public void Dpm2ChurnsAsKDiffusionsSampleDpm2()
    {
        // Only sigma_0 = 80 lies in [S_tmin, S_tmax] = [50, 100]: x_hat_0 = x_0 + S_noise sqrt(sigma_hat^2 - sigma_0^2) eps_0,
        // then the dpm_2 step from sigma_hat: x_1 = x_hat + (sigma_1 - sigma_hat) d(x_hat + (sigma_mid - sigma_hat) d, sigma_mid).
        var data = AnalyticDataset.Create(DatasetKind.Gaussian, 3, 1);
        using var den = (IDisposable)AnalyticDenoisers.For(_d, data);
        using var z = Tensor.FromArray(_d, [0.5f, -1f, 2f], 1, 3);
        double[] z0 = [0.5, -1, 2];
        var s = new SamplerSettings { Steps = 4, Solver = Solver.Dpm2, SChurn = 1, STmin = 50, STmax = 100, SNoise = 1.003 };
        var plan = SamplingPlan.Create(s);
        var noise = new FixedNoise();
        var seen = new List<(double SigmaHat, float[] X)>();
        var result = Samplers.Sample((IDenoiser)den, z, plan, noise: noise, callback: st => seen.Add((st.SigmaHat, st.X.ToArray())));
        using var x = result.X;
        Assert.Equal(7, result.Nfe);
        Assert.Equal([0], noise.Steps);
        double s0 = plan.Sigma[0], s1 = plan.Sigma[1], sh = s0 * 1.25;  // gamma = min(1 / 4, sqrt 2 - 1)
        Assert.Equal(sh, seen[0].SigmaHat, 12);
        Assert.Equal(s1, seen[1].SigmaHat);
        double sMid = Math.Sqrt(sh * s1);
        for (int e = 0; e < 3; e++)
        {
            double xh = z0[e] * s0 + 1.003 * Math.Sqrt(sh * sh - s0 * s0) * FixedNoise.Eps(0, e);
            Assert.True(Math.Abs(seen[0].X[e] - xh) <= 1e-5 * (1 + Math.Abs(xh)), $"x_hat e {e}: {seen[0].X[e]} vs {xh}");
            double d = (xh - GaussianD(data, xh, e, sh)) / sh, x2 = xh + (sMid - sh) * d;
            double x1 = xh + (s1 - sh) * (x2 - GaussianD(data, x2, e, sMid)) / sMid;
            Assert.True(Math.Abs(seen[1].X[e] - x1) <= 1e-5 * (1 + Math.Abs(x1)), $"x_1 e {e}: {seen[1].X[e]} vs {x1}");
        }
    }
}

using Edm.Sampling;
using Edm.Verification;
using Xunit;

namespace Edm.Tests.Sampling;

// The float64 host reference: Dormand-Prince against closed forms, the mixture denoiser against
// the Gaussian closed form, and the host samplers' convergence orders on the Gaussian.
public class HostReferenceTests
{
    [Fact]
    public void DormandPrinceMatchesClosedForms()
    {
        // y'' = -y (as a system) over 10 periods, and y' = -2 u y.
        var y = new double[] { 1, 0 };
        var st = DormandPrince.Integrate((u, v, dv) => { dv[0] = v[1]; dv[1] = -v[0]; }, y, 0, 20 * Math.PI, 1e-10, 1e-12);
        Assert.True(Math.Abs(y[0] - 1) < 1e-8 && Math.Abs(y[1]) < 1e-8, $"oscillator {y[0]} {y[1]} after {st.Accepted} steps");
        var z = new double[] { 1 };
        DormandPrince.Integrate((u, v, dv) => dv[0] = -2 * u * v[0], z, 0, 2, 1e-10, 1e-14);
        Assert.True(Math.Abs(z[0] - Math.Exp(-4)) < 1e-10 * Math.Exp(-4) * 100, $"gaussian decay {z[0]} vs {Math.Exp(-4)}");
        // Backwards.
        DormandPrince.Integrate((u, v, dv) => dv[0] = -2 * u * v[0], z, 2, 0, 1e-10, 1e-14);
        Assert.True(Math.Abs(z[0] - 1) < 1e-8);
    }

    [Fact]
    public void MixtureWithOneComponentIsTheGaussian()
    {
        var g = AnalyticDataset.Create(DatasetKind.Gaussian, 6, 1);
        var asMixture = new HostMixtureDenoiser(g);
        var exact = new HostGaussianDenoiser(g);
        var x = g.Latents([5])!.Select(v => 3 * v).ToArray();
        var a = new double[6];
        var b = new double[6];
        foreach (double sigma in new[] { 0.002, 0.3, 80 })
        {
            asMixture.Denoise(x, sigma, a);
            exact.Denoise(x, sigma, b);
            for (int e = 0; e < 6; e++) Assert.True(Math.Abs(a[e] - b[e]) < 1e-14, $"sigma {sigma}: {a[e]} vs {b[e]}");
        }
        // The DoPri reference ODE through the mixture code equals the closed-form trajectory.
        var x0 = g.Latents([9]).Select(v => 80 * v).ToArray();
        var viaOde = (double[])x0.Clone();
        ReferenceOde.Solve(asMixture, viaOde, 80, 0);
        var viaExact = (double[])x0.Clone();
        exact.Exact(x0, 80, 0, viaExact);
        for (int e = 0; e < 6; e++) Assert.True(Math.Abs(viaOde[e] - viaExact[e]) < 1e-8, $"{viaOde[e]} vs {viaExact[e]}");
    }

    [Fact]
    public void PointSetDenoiserIsStableAtSmallSigma()
    {
        var p = AnalyticDataset.Create(DatasetKind.Points, 8, 50);
        var den = new HostMixtureDenoiser(p);
        var x = p.Latents([3]);
        var d = new double[8];
        den.Denoise(x, 0.002, d);
        Assert.All(d, v => Assert.True(double.IsFinite(v)));
        // At sigma = 0.002 the softmax has collapsed on the nearest point.
        int nearest = Enumerable.Range(0, 50).MinBy(k => Enumerable.Range(0, 8).Sum(e => Math.Pow(x[e] - p.Means[k * 8 + e], 2)));
        for (int e = 0; e < 8; e++) Assert.Equal(p.Means[nearest * 8 + e], d[e], 12);
        // At huge sigma it is the mean of the points.
        den.Denoise(x, 1e4, d);
        for (int e = 0; e < 8; e++) Assert.Equal(Enumerable.Range(0, 50).Average(k => p.Means[k * 8 + e]), d[e], 3);
    }

    internal static double GaussianGlobalError(SamplerSettings s, int batch = 8)
    {
        var data = AnalyticDataset.Create(DatasetKind.Gaussian, 4, 1);
        var den = new HostGaussianDenoiser(data);
        var plan = SamplingPlan.Create(s);
        double sq = 0;
        for (int b = 0; b < batch; b++)
        {
            var z = data.Latents([(ulong)(b + 1)]);
            var x = SamplerReference.Sample(plan, den, z, out int nfe);
            Assert.Equal(s.Nfe, nfe);
            var x0 = z.Select(v => v * plan.Sigma[0]).ToArray();
            var xr = new double[4];
            den.Exact(x0, plan.Sigma[0], 0, xr);
            for (int e = 0; e < 4; e++) sq += (x[e] - xr[e]) * (x[e] - xr[e]);
        }
        return Math.Sqrt(sq / (batch * 4));
    }

    internal static double Order(Solver solver, int n1 = 32, int n2 = 64, Func<SamplerSettings, SamplerSettings>? tweak = null)
    {
        tweak ??= s => s;
        var s1 = tweak(new SamplerSettings { Solver = solver, Steps = n1, Discretization = Discretization.Edm, SigmaMin = 0.002, SigmaMax = 80, Rho = 7, Eta = solver == Solver.EulerAncestral ? 0 : 1 });
        var s2 = s1 with { Steps = n2 };
        return Math.Log(GaussianGlobalError(s1) / GaussianGlobalError(s2)) / Math.Log((double)s2.Nfe / s1.Nfe);
    }

    [Fact]
    public void HostOrdersOnTheGaussian()
    {
        double euler = Order(Solver.Euler), heun = Order(Solver.Heun), mid = Order(Solver.Midpoint), ral = Order(Solver.Ralston);
        Assert.InRange(euler, 0.9, 1.1);
        Assert.InRange(heun, 1.8, 2.2);
        Assert.True(mid >= 1.8, $"midpoint {mid}");
        Assert.True(ral >= 1.8, $"ralston {ral}");
        // k-diffusion samplers: euler_ancestral at eta = 0 is Euler; dpm_2 and dpm++ 2M second order; lms higher.
        Assert.InRange(Order(Solver.EulerAncestral), 0.9, 1.1);
        Assert.True(Order(Solver.Dpm2) >= 1.8, "dpm_2");
        Assert.True(Order(Solver.DpmPP2M) >= 1.8, "dpmpp_2m");
        Assert.True(Order(Solver.Lms, 16, 32) >= 2.5, "lms");
    }

    [Fact]
    public void AlgorithmOneConvergesInEveryFormulation()
    {
        // Same ODE solution whatever sigma(t), s(t): Heun in VP and VE formulations converges to it at
        // second order (error ratio near 4 per doubling of N).
        foreach (var (sch, sc) in new[] { ("vp", "vp"), ("ve", "none"), ("linear", "vp") })
        {
            var e1 = GaussianGlobalError(new SamplerSettings { Steps = 32, Schedule = SamplerSettings.ParseSchedule(sch), Scaling = SamplerSettings.ParseScaling(sc), SigmaMin = 0.002, SigmaMax = 80 });
            var e2 = GaussianGlobalError(new SamplerSettings { Steps = 64, Schedule = SamplerSettings.ParseSchedule(sch), Scaling = SamplerSettings.ParseScaling(sc), SigmaMin = 0.002, SigmaMax = 80 });
            Assert.True(e2 < e1 / 3.5, $"{sch}/{sc}: {e1} -> {e2}");
        }
    }

    [Fact]
    public void ChurnOutsideItsWindowIsDeterministic()
    {
        // No noise level (<= 80) lies in [S_tmin, S_tmax] = [100, 200]: no churn step is taken.
        var data = AnalyticDataset.Create(DatasetKind.Gaussian, 4, 1);
        var den = new HostGaussianDenoiser(data);
        var z = data.Latents([7]);
        var det = SamplerReference.Sample(SamplingPlan.Create(new SamplerSettings { Steps = 12 }), den, z, out _);
        var churn0 = SamplerReference.Sample(SamplingPlan.Create(new SamplerSettings { Steps = 12, SChurn = 40, STmin = 100, STmax = 200, SNoise = 1.003 }), den, z, out _,
            (i, e) => DetRandom.Normal(99, (ulong)i + 1, e));
        Assert.Equal(det, churn0);
    }

    [Fact]
    public void LagrangeCoefficientsIntegratePolynomialsExactly()
    {
        // With nodes t_i..t_{i-3}, sum_j c_j p(t_{i-j}) = integral of p for any cubic p.
        double[] t = [5, 3, 2, 1.5, 1.1];
        int i = 3;
        Func<double, double> p = x => 2 * x * x * x - x + 0.5;
        double sum = 0;
        for (int j = 0; j < 4; j++) sum += SamplerReference.LagrangeIntegral(t, i, j, 4) * p(t[i - j]);
        double exact = (0.5 * Math.Pow(1.1, 4) - 0.5 * 1.1 * 1.1 + 0.5 * 1.1) - (0.5 * Math.Pow(1.5, 4) - 0.5 * 1.5 * 1.5 + 0.5 * 1.5);
        Assert.Equal(exact, sum, 12);
    }
}

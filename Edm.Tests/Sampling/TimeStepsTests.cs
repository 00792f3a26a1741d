using Edm.Sampling;
using Xunit;

namespace Edm.Tests.Sampling;

// Time steps of Table 1 at i = 0 and N - 1 (N = 18) and the iDDPM u_j table, against values
// computed by hand with Python from the formulas of docs/formulas.md section 2.
public class TimeStepsTests
{
    static void Near(double expected, double actual, double rtol = 1e-12) =>
        Assert.True(Math.Abs(actual - expected) <= rtol * Math.Abs(expected), $"expected {expected:R}, got {actual:R}");

    [Fact]
    public void TableOneTimeStepsAtEnds()
    {
        var vp = TimeSteps.VpTable(18);
        Near(1.0, vp[0]); Near(1e-3, vp[17]); Assert.Equal(0, vp[18]);
        var ve = TimeSteps.VeTable(18);
        Near(10000.0, ve[0]); Near(3671.3607304666875, ve[1], 1e-11); Near(0.0004, ve[17], 1e-11); Assert.Equal(0, ve[18]);
        var edm = TimeSteps.EdmTable(18);
        Near(80, edm[0]); Near(57.58598472124816, edm[1], 1e-11); Near(0.002, edm[17], 1e-11); Assert.Equal(0, edm[18]);
        var iddpm = TimeSteps.IddpmTable(18, sigmaMax: 80);
        Near(71.29119807209854, iddpm[0], 1e-11); Near(9.542224229328852, iddpm[1], 1e-11);
        Near(0.006425412771141183, iddpm[17], 1e-11); Assert.Equal(0, iddpm[18]);
    }

    [Fact]
    public void IddpmUTable()
    {
        var u = TimeSteps.IddpmU();
        Assert.Equal(1001, u.Length);
        Near(20291.16961002147, u[0], 1e-10);
        Near(641.6623451182552, u[1], 1e-11);
        Near(64.1610911404052, u[10], 1e-11);
        Near(1.0123895639480023, u[500], 1e-11);
        Near(0.006425412771141183, u[999], 1e-11);
        Assert.Equal(0, u[1000]);
        for (int j = 1; j <= 1000; j++) Assert.True(u[j] < u[j - 1]);
    }

    [Fact]
    public void IddpmUFloat32TableIsNvlabsEdmsPrecondTable()
    {
        // Recomputed by hand in Python with every operation rounded to float32 (struct.pack('f')):
        // float32 values, so equal exactly.
        var u = TimeSteps.IddpmUFloat32();
        Assert.Equal(1001, u.Length);
        Assert.Equal(20291.14453125, u[0]);
        Assert.Equal(641.6615600585938, u[1]);
        Assert.Equal(64.16101837158203, u[10]);
        Assert.Equal(1.0123875141143799, u[500]);
        Assert.Equal(0.006422337144613266, u[999]);
        Assert.Equal(0, u[1000]);
        Assert.All(u, v => Assert.Equal(v, (float)v));
        // Against the float64 table: within 32 float32 ulps where u_j >= 1, and growing towards
        // u_999, where 1/ratio - 1 cancels in float32 (4.8e-4 relative there).
        var u64 = TimeSteps.IddpmU();
        for (int j = 0; j < 1000; j++)
        {
            double ulp = MathF.BitIncrement((float)u64[j]) - (float)u64[j];
            double rel = Math.Abs(u[j] - u64[j]) / u64[j];
            if (j <= 500) Assert.True(Math.Abs(u[j] - u64[j]) <= 32 * ulp, $"u_{j}: {u[j]} vs {u64[j]}");
            Assert.True(rel <= 5e-4, $"u_{j}: {u[j]} vs {u64[j]} ({rel:G3} relative)");
        }
        Assert.InRange(Math.Abs(u[999] - u64[999]) / u64[999], 4e-4, 5e-4);
    }

    [Fact]
    public void GeneralizedSamplerNoiseLevels()
    {
        // edm over [0.002, 80] is Eq. 5; vp refit hits the range ends; iddpm keeps the u_j in range.
        var edm = TimeSteps.SigmaSteps(Discretization.Edm, 18, 0.002, 80);
        Near(80, edm[0]); Near(0.002, edm[17], 1e-11);
        var vp = TimeSteps.SigmaSteps(Discretization.Vp, 18, 0.002, 80);
        Near(80.00000000000003, vp[0], 1e-11); Near(48.51470572556607, vp[1], 1e-10); Near(0.002, vp[17], 1e-9);
        var ve = TimeSteps.SigmaSteps(Discretization.Ve, 18, 0.02, 100);
        Near(100, ve[0]); Near(0.02, ve[17], 1e-11);
        var id = TimeSteps.SigmaSteps(Discretization.Iddpm, 18, 0.002, 80);
        var u = TimeSteps.IddpmU();
        Near(u[9], id[0]); Near(u[9 + 58], id[1]); Near(u[999], id[17]);
        // The default ranges of NVlabs/edm.
        var (lo, hi) = TimeSteps.DefaultSigmaRange(Discretization.Vp);
        Near(0.010485992786706403, lo, 1e-10); Near(152.1669702839464, hi, 1e-12);
        Assert.Equal((0.02, 100.0), TimeSteps.DefaultSigmaRange(Discretization.Ve));
        Assert.Equal((0.002, 81.0), TimeSteps.DefaultSigmaRange(Discretization.Iddpm));
        Assert.Equal((0.002, 80.0), TimeSteps.DefaultSigmaRange(Discretization.Edm));
    }

    [Fact]
    public void PlanMapsNoiseLevelsBackToTime()
    {
        // VP schedule + VP scaling on the vp discretization: t_i = 1 + i/(N-1)(eps_s - 1) again.
        var plan = SamplingPlan.Create(new SamplerSettings { Steps = 10, Discretization = Discretization.Vp, Schedule = ScheduleKind.Vp, Scaling = ScalingKind.Vp });
        var t = TimeSteps.VpTable(10);
        for (int i = 0; i <= 10; i++) Assert.True(Math.Abs(plan.T[i] - t[i]) < 1e-9, $"t_{i} {plan.T[i]} vs {t[i]}");
        Assert.Equal(0, plan.Sigma[10]);
        // VE schedule: t = sigma^2.
        var ve = SamplingPlan.Create(new SamplerSettings { Steps = 5, Discretization = Discretization.Edm, Schedule = ScheduleKind.Ve });
        Near(6400, ve.T[0], 1e-12);
    }

    [Fact]
    public void NfeIsExact()
    {
        Assert.Equal(35, new SamplerSettings { Steps = 18, Solver = Solver.Heun }.Nfe);
        Assert.Equal(18, new SamplerSettings { Steps = 18, Solver = Solver.Euler }.Nfe);
        Assert.Equal(35, new SamplerSettings { Steps = 18, Solver = Solver.Dpm2 }.Nfe);
        Assert.Equal(18, new SamplerSettings { Steps = 18, Solver = Solver.DpmPP2M }.Nfe);
        Assert.Equal(1, new SamplerSettings { Steps = 1, Solver = Solver.Ralston }.Nfe);
    }

    [Theory]
    [InlineData(0, 0.002, 80, 7, 1.0, 0.0, "N >= 1")]
    [InlineData(10, 80, 80, 7, 1.0, 0.0, "sigma_min")]
    [InlineData(10, 0.002, 80, 0, 1.0, 0.0, "rho > 0")]
    [InlineData(10, 0.002, 80, 7, 0.0, 0.0, "0 < alpha <= 1")]
    [InlineData(10, 0.002, 80, 7, 1.5, 0.0, "would pass t_{i+1}")]
    [InlineData(10, 0.002, 80, 7, 1.0, -1.0, "S_churn >= 0")]
    public void BadSettingsNameTheAllowedRange(int n, double lo, double hi, double rho, double alpha, double churn, string allowed)
    {
        var s = new SamplerSettings { Steps = n, SigmaMin = lo, SigmaMax = hi, Rho = rho, Alpha = alpha, SChurn = churn };
        var e = Assert.Throws<ArgumentException>(s.Validate);
        Assert.Contains(allowed, e.Message);
    }

    [Fact]
    public void UnknownNamesListTheAllowedOnes()
    {
        Assert.Contains("euler, heun, midpoint, ralston, euler_ancestral, dpm_2, dpmpp_2m, lms", Assert.Throws<ArgumentException>(() => Solvers.Parse("rk4")).Message);
        Assert.Contains("vp, ve, iddpm, edm", Assert.Throws<ArgumentException>(() => TimeSteps.ParseDiscretization("cosine")).Message);
        Assert.Contains("vp, ve, linear", Assert.Throws<ArgumentException>(() => SamplerSettings.ParseSchedule("cos")).Message);
        Assert.Equal(Solver.DpmPP2M, Solvers.Parse("dpmpp_2m"));
        Assert.Equal(Discretization.Iddpm, TimeSteps.ParseDiscretization("IDDPM"));
    }
}

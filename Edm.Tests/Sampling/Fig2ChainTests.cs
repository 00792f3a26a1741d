using Edm.Sampling;
using Xunit;

namespace Edm.Tests.Sampling;

// The Fig. 2 chains (issue 14) are Table 1's samplers, changed one step at a time towards EDM's.
public sealed class Fig2ChainTests
{
    [Theory]
    // formulation, Table 1's time steps, sigma(t), s(t)
    [InlineData("VP", Discretization.Vp, ScheduleKind.Vp, ScalingKind.Vp)]
    [InlineData("VE", Discretization.Ve, ScheduleKind.Ve, ScalingKind.None)]
    [InlineData("iDDPM", Discretization.Iddpm, ScheduleKind.Linear, ScalingKind.None)]
    public void EachChainIsTable1sSamplerChangedOneStepAtATime(string formulation, Discretization disc, ScheduleKind schedule, ScalingKind scaling)
    {
        var chain = Fig2Chain.Chain(formulation, 9);
        Assert.Equal(Fig2Chain.Samplers, chain.Select(v => v.Sampler));
        Assert.All(chain, v => Assert.Equal(formulation, v.Formulation));
        var (original, heun, edmT, edmSigma) = (chain[0].Settings, chain[1].Settings, chain[2].Settings, chain[3].Settings);
        // 1. original: Euler, the formulation's steps, schedule and scaling, N = NFE.
        Assert.Equal((Solver.Euler, disc, schedule, scaling, 9), (original.Solver, original.Discretization, original.Schedule, original.Scaling, original.Steps));
        // 2. + Heun: only the solver changes; N = (NFE + 1) / 2 gives 2N - 1 = NFE.
        Assert.Equal(original with { Solver = Solver.Heun, Steps = 5 }, heun);
        Assert.Equal(9, heun.Nfe);
        // 3. + EDM t_i: only the time steps change (rho 7).
        Assert.Equal(heun with { Discretization = Discretization.Edm }, edmT);
        Assert.Equal(7, edmT.Rho);
        // 4. + EDM sigma(t), s(t): sigma(t) = t, s(t) = 1, which is EDM's sampler.
        Assert.Equal(edmT with { Schedule = ScheduleKind.Linear, Scaling = ScalingKind.None }, edmSigma);
        Assert.Equal(Fig2Chain.EdmReference(9).Settings, edmSigma);
        // Deterministic, Table 1's defaults otherwise: no churn, alpha 1, each settings valid.
        Assert.All(chain, v => { Assert.Equal(0, v.Settings.SChurn); Assert.Equal(1, v.Settings.Alpha); v.Settings.Validate(); });
    }

    [Fact]
    public void EdmsReferenceIsHeunOnEdmStepsWithoutScheduleOrScaling()
    {
        var edm = Fig2Chain.EdmReference(35).Settings;
        Assert.Equal((Solver.Heun, Discretization.Edm, ScheduleKind.Linear, ScalingKind.None, 18, 35, 7.0),
            (edm.Solver, edm.Discretization, edm.Schedule, edm.Scaling, edm.Steps, edm.Nfe, edm.Rho));
        Assert.Equal(new SamplerSettings(), edm);  // the paper's headline setting: the library's defaults
        Assert.Equal(13, Fig2Chain.All(35).Count);
    }

    [Fact]
    public void NfeIsMetExactlyWhenOddAndFromBelowWhenEven()
    {
        foreach (int nfe in new[] { 3, 4, 5, 17, 18, 71 })
        {
            var chain = Fig2Chain.Chain("VE", nfe);
            Assert.Equal(nfe, chain[0].Settings.Nfe);
            Assert.Equal(nfe % 2 == 1 ? nfe : nfe - 1, chain[1].Settings.Nfe);
        }
        var e = Assert.Throws<ArgumentException>(() => Fig2Chain.Chain("VP", 2));
        Assert.Contains("NFE >= 3", e.Message);
        Assert.Contains("VP, VE, iDDPM", Assert.Throws<ArgumentException>(() => Fig2Chain.Chain("DDPM", 5)).Message);
    }
}

using Edm.Sampling;
using Xunit;

namespace Edm.Tests.Sampling;

// Table 1 cells against values computed by hand (independently, with Python's math module, from
// the formulas in docs/formulas.md section 2), plus derivative and inverse consistency.
public class FormulationTests
{
    static void Near(double expected, double actual, double rtol = 1e-12) =>
        Assert.True(Math.Abs(actual - expected) <= rtol * Math.Abs(expected), $"expected {expected:R}, got {actual:R}");

    [Fact]
    public void VpColumnMatchesHandValues()
    {
        var f = Formulation.Vp();
        Near(3.41291830906912, f.Sigma(0.5));
        Near(18.622261493226503, f.SigmaDeriv(0.5));
        Near(0.2811828807967524, f.S(0.5));
        Near(-1.4129439760036808, f.SDeriv(0.5), 1e-11);
        Near(0.3971909927722238, f.SigmaInv(2.0));
        Near(0.010485992786706403, f.Sigma(1e-3), 1e-10);
        Near(152.1669702839464, f.Sigma(1));
    }

    [Fact]
    public void VeIddpmEdmColumnsMatchHandValues()
    {
        var ve = Formulation.Ve();
        Near(2, ve.Sigma(4));
        Near(0.25, ve.SigmaDeriv(4));
        Near(16, ve.SigmaInv(4));
        Assert.Equal(1, ve.S(4));
        Assert.Equal(0, ve.SDeriv(4));
        foreach (var f in new[] { Formulation.Iddpm(), Formulation.Edm() })
        {
            Assert.Equal(3.5, f.Sigma(3.5));
            Assert.Equal(1, f.SigmaDeriv(3.5));
            Assert.Equal(3.5, f.SigmaInv(3.5));
            Assert.Equal(1, f.S(3.5));
            Assert.Equal(0, f.SDeriv(3.5));
        }
    }

    [Theory]
    [InlineData("vp")]
    [InlineData("ve")]
    [InlineData("linear")]
    public void DerivativesAndInverseAreConsistent(string schedule)
    {
        NoiseSchedule sch = schedule switch { "vp" => new VpSchedule(), "ve" => new VeSchedule(), _ => new LinearSchedule() };
        foreach (var scaling in new[] { ScalingKind.None, ScalingKind.Vp })
        {
            var f = new Formulation(sch, scaling);
            foreach (double t in new[] { 0.01, 0.3, 0.9 })
            {
                double h = 1e-6 * t;
                double fdSigma = (f.Sigma(t + h) - f.Sigma(t - h)) / (2 * h);
                double fdS = (f.S(t + h) - f.S(t - h)) / (2 * h);
                Near(fdSigma, f.SigmaDeriv(t), 1e-7);
                Assert.True(Math.Abs(fdS - f.SDeriv(t)) <= 1e-7 * (1 + Math.Abs(fdS)), $"{schedule}/{scaling} s'({t}) {f.SDeriv(t)} vs {fdS}");
                Near(t, f.SigmaInv(f.Sigma(t)), 1e-10);
            }
        }
    }

    [Fact]
    public void VpScalingEqualsTableOneFormula()
    {
        // s(t) = 1 / sqrt(exp(beta_d t^2/2 + beta_min t)) on the VP schedule.
        var f = Formulation.Vp();
        foreach (double t in new[] { 1e-3, 0.2, 1.0 })
            Near(1 / Math.Sqrt(Math.Exp(19.9 * t * t / 2 + 0.1 * t)), f.S(t));
    }

    [Fact]
    public void VpRefitGivesBackDefaultsAndHitsRange()
    {
        var (lo, hi) = TimeSteps.DefaultSigmaRange(Discretization.Vp);
        var vp = VpSchedule.Refit(lo, hi);
        Near(19.9, vp.BetaD, 1e-9);
        Near(0.1, vp.BetaMin, 1e-8);
        var r = VpSchedule.Refit(0.002, 80);
        Near(17.537956987271453, r.BetaD, 1e-10);
        Near(-0.004768986493722593, r.BetaMin, 1e-8);
        Near(0.002, r.Sigma(TimeSteps.VpEpsilonS), 1e-9);
        Near(80, r.Sigma(1), 1e-12);
    }

    [Fact]
    public void VelocityCoefficientsFollowAlgorithmOne()
    {
        // EDM: dx/dt = (x - D)/t, so a = b = 1/t.
        var (a, b) = Formulation.Edm().VelocityCoefficients(2.0);
        Near(0.5, a);
        Near(0.5, b);
        var vp = Formulation.Vp();
        var (a2, b2) = vp.VelocityCoefficients(0.5);
        Near(vp.SigmaDeriv(0.5) / vp.Sigma(0.5) + vp.SDeriv(0.5) / vp.S(0.5), a2);
        Near(vp.SigmaDeriv(0.5) * vp.S(0.5) / vp.Sigma(0.5), b2);
    }
}

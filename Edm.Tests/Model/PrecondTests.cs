using Edm.Autograd;
using Edm.Kernels;
using Edm.Model;
using Edm.Model.IO;
using Edm.Model.Networks;
using Edm.Model.Modules;
using Xunit;

namespace Edm.Tests.Model;

// Preconditioning (Table 1 coefficients, iDDPM rounding, bad sigma) and the EDM loss at initialisation.
public sealed class PrecondTests(CpuDevice cpu) : IClassFixture<CpuDevice>
{
    readonly EdmDevice _d = cpu.Device;

    [Theory]
    [InlineData(0.002)]
    [InlineData(0.5)]
    [InlineData(1.7)]
    [InlineData(80.0)]
    public void Coefficients_match_table_1(double sigma)
    {
        using var net = Presets.Create("ddpmpp-tiny", new InitContext(_d), 8, 1);
        var edm = new Precond(net, PrecondKind.Edm).Coefficients(sigma);
        double sd = 0.5, s2 = sigma * sigma;
        Assert.Equal(sd * sd / (s2 + sd * sd), edm.CSkip, 12);
        Assert.Equal(sigma * sd / Math.Sqrt(s2 + sd * sd), edm.COut, 12);
        Assert.Equal(1 / Math.Sqrt(s2 + sd * sd), edm.CIn, 12);
        Assert.Equal(Math.Log(sigma) / 4, edm.CNoise, 12);

        var ve = new Precond(net, PrecondKind.Ve).Coefficients(sigma);
        Assert.Equal((1, sigma, 1, Math.Log(sigma / 2)), (ve.CSkip, ve.COut, ve.CIn, ve.CNoise));

        var vp = new Precond(net, PrecondKind.Vp).Coefficients(sigma);
        Assert.Equal(1, vp.CSkip);
        Assert.Equal(-sigma, vp.COut);
        Assert.Equal(1 / Math.Sqrt(s2 + 1), vp.CIn, 12);
        // c_noise = (M - 1) sigma^-1(sigma), and sigma(sigma^-1(sigma)) = sigma.
        double t = vp.CNoise / 999;
        Assert.Equal(sigma, Math.Sqrt(Math.Exp(0.5 * 19.9 * t * t + 0.1 * t) - 1), 9);
    }

    [Fact]
    public void Iddpm_precond_rounds_to_the_u_table_and_needs_variance_channels()
    {
        using var net = Presets.Create("adm-tiny", new InitContext(_d), 8, 1);
        Assert.Throws<ArgumentException>(() => new Precond(net, PrecondKind.Iddpm));
        using var net2 = new DhariwalUNet(new InitContext(_d), new DhariwalUNetOptions
        {
            ImgResolution = 8, InChannels = 1, OutChannels = 2, ModelChannels = 16, ChannelMult = [1, 2], NumBlocks = 1,
            AttnResolutions = [4], ChannelsPerHead = 16, Dropout = 0,
        });
        var p = new Precond(net2, PrecondKind.Iddpm);
        var c = p.Coefficients(p.SigmaMax);
        Assert.Equal(999, c.CNoise); // u_0 is the largest level: index 0 -> M - 1 - 0
        Assert.Equal(p.SigmaMax, p.RoundSigma(p.SigmaMax * 1.0001), 9);
        // The u table in float32, as NVlabs/edm's iDDPMPrecond buffer: its ends and its rounding.
        var u32 = Edm.Sampling.TimeSteps.IddpmUFloat32();
        Assert.Equal((u32[999], u32[0]), (p.SigmaMin, p.SigmaMax));
        Assert.Equal(u32[999], p.RoundSigma(Edm.Sampling.TimeSteps.IddpmU()[999]));
        using var scope = new TensorScope();
        var d = p.Denoise(Tensor.FromArray(_d, Edm.Verification.Compare.Random(2 * 64, 1), 2, 1, 8, 8), [0.5, 2.0]);
        Assert.Equal(new[] { 2, 1, 8, 8 }, d.Shape);
    }

    [Fact]
    public void Sigma_must_be_positive()
    {
        using var net = Presets.Create("ddpmpp-tiny", new InitContext(_d), 8, 1);
        var p = new Precond(net, PrecondKind.Edm);
        var e = Assert.Throws<ArgumentException>(() => p.Coefficients(0));
        Assert.Contains("> 0", e.Message);
        Assert.Throws<ArgumentException>(() => p.Coefficients(-1));
        Assert.Throws<ArgumentException>(() => Precond.Parse("nosuch"));
    }

    [Fact]
    public void Edm_loss_at_initialisation_is_of_order_one()
    {
        // With the EDM c_*, lambda ||D - y||^2 = ||F - target||^2 where the target has unit variance
        // per pixel; F is near zero at init (the output conv starts near zero), so the loss per
        // pixel is about 1: summed over 1x8x8 pixels it is about 64 per sample.
        using var net = Presets.Create("ddpmpp-tiny", new InitContext(_d, 1), 8, 1);
        var p = new Precond(net, PrecondKind.Edm);
        using var scope = new TensorScope();
        int b = 16;
        var y = Tensor.Empty(_d, b, 1, 8, 8);
        Ops.Normal(y, 5);
        var y05 = Ops.Scale(y, 0.5f); // unit-scale data with sigma_data = 0.5
        double perPixel = Losses.Compute(p, new Variable(y05), null, null, new LossSettings(), 1, 0).Value.Item() / 64;
        Assert.InRange(perPixel, 0.5, 2.0);
    }

    [Fact]
    public void A_conditional_network_without_labels_gets_zero_labels()
    {
        using var scope = new TensorScope();
        using var net = Presets.Create("ddpmpp-tiny", new InitContext(_d, 3), 8, 1, labelDim: 3);
        // A non-zero map_label bias, so skipping the layer would show.
        foreach (var (name, p) in net.Module.NamedParameters().Where(n => n.Name.StartsWith("map_label")))
            p.Value.CopyFrom(TestData.Random(p.Value.Length, 9));
        var pc = new Precond(net, PrecondKind.Edm, 0.5);
        var x = new Variable(Tensor.FromArray(_d, TestData.Random(2 * 64, 1), 2, 1, 8, 8));
        var none = pc.Forward(x, [0.5, 2.0]).Value.ToArray();
        var zeros = pc.Forward(x, [0.5, 2.0], new Variable(Tensor.Zeros(_d, 2, 3))).Value.ToArray();
        Assert.Equal(zeros, none);
    }

    [Fact]
    public void The_loss_takes_the_callers_sigma_and_noise()
    {
        using var scope = new TensorScope();
        using var net = Presets.Create("ddpmpp-tiny", new InitContext(_d, 4), 8, 1);
        var pc = new Precond(net, PrecondKind.Edm, 0.5);
        var s = new LossSettings();
        var y = new Variable(Tensor.FromArray(_d, TestData.Random(3 * 64, 2), 3, 1, 8, 8));
        var eps = Tensor.FromArray(_d, TestData.Random(3 * 64, 3), 3, 1, 8, 8);
        double[] sigma = [0.05, 0.7, 12.0];
        double got = Losses.Compute(pc, y, null, null, s, sigma, eps).Value.Item();
        // The same loss written out: (1/B) sum_b lambda(sigma_b) |D(y_b + sigma_b eps_b; sigma_b) - y_b|^2.
        var yv = y.Value.ToArray();
        var ev = eps.ToArray();
        var noised = yv.Select((v, i) => v + (float)sigma[i / 64] * ev[i]).ToArray();
        var d = pc.Forward(new Variable(Tensor.FromArray(_d, noised, 3, 1, 8, 8)), sigma).Value.ToArray();
        double want = 0;
        for (int i = 0; i < d.Length; i++) want += Losses.Weight(s, sigma[i / 64]) * Math.Pow(d[i] - yv[i], 2);
        want /= 3;
        Assert.Equal(want, got, want * 1e-5);
        Assert.Throws<ArgumentException>(() => Losses.Compute(pc, y, null, null, s, [0.5, 1.0], eps));
        Assert.Throws<ArgumentException>(() => Losses.Compute(pc, y, null, null, s, [0.5, -1.0, 1.0], eps));
    }
}

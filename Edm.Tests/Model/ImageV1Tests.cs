using Edm.Autograd;
using Edm.Kernels;
using Edm.Model;
using Edm.Model.Networks;
using Edm.Model.Modules;
using Xunit;

namespace Edm.Tests.Model;

public sealed class ImageV1Tests(CpuDevice cpu) : IClassFixture<CpuDevice>
{
    readonly EdmDevice _d = cpu.Device;

    static float[] Rand(int n, int seed, double lo = -1, double hi = 1) => Edm.Verification.Compare.Random(n, seed, lo, hi);

    /// <summary>k-diffusion zero-initialises AdaGN mappers, the last conv of each block, out_proj and proj_out;
    /// give those small random values so outputs and gradients are non-trivial.</summary>
    static void RandomizeZeroParameters(Module m, int seed)
    {
        foreach (var (_, p) in m.NamedParameters())
        {
            var v = p.Value.ToArray();
            if (v.All(x => x == 0)) p.Value.CopyFrom(Rand(v.Length, seed++, -0.2, 0.2));
        }
    }

    [Theory]
    [InlineData(16, 1, 0, 0)]
    [InlineData(32, 3, 10, 9)]
    public void Tiny_preset_maps_images_to_images(int res, int ch, int labels, int augment)
    {
        using var scope = new TensorScope();
        using var net = Presets.Create("image-v1-tiny", new InitContext(_d, 3), res, ch, labels, augment);
        Assert.InRange(net.Module.ParameterCount(), 10_000, 400_000);
        RandomizeZeroParameters(net.Module, 10);
        int b = 2;
        var x = new Variable(Tensor.FromArray(_d, Rand(b * ch * res * res, 1), b, ch, res, res));
        var cl = labels > 0 ? new Variable(Tensor.FromArray(_d, Enumerable.Range(0, b * labels).Select(i => i % labels == 1 ? 1f : 0f).ToArray(), b, labels)) : null;
        var al = augment > 0 ? new Variable(Tensor.Zeros(_d, b, augment)) : null;
        var y = net.Forward(x, [0.3, -1.1], cl, al);
        Assert.Equal(new[] { b, ch, res, res }, y.Shape);
        var v = y.Value.ToArray();
        Assert.All(v, e => Assert.True(float.IsFinite(e)));
        Assert.True(v.Max(Math.Abs) > 1e-3, "output is trivially zero");
    }

    [Fact]
    public void Parameter_names_follow_the_k_diffusion_module_paths()
    {
        using var net = Presets.Create("image-v1-tiny", new InitContext(_d), 16, 1, labelDim: 0, augmentDim: 9);
        var names = net.Module.NamedParameters().Select(p => p.Name).ToList();
        Assert.Contains("mapping_cond.weight", names);
        Assert.DoesNotContain("mapping_cond.bias", names);
        Assert.Contains("mapping.0.weight", names);
        Assert.Contains("mapping.2.bias", names);
        Assert.Contains("proj_in.weight", names);
        Assert.Contains("proj_out.bias", names);
        Assert.Contains("u_net.d_blocks.0.1.main.0.mapper.weight", names);
        Assert.Contains("u_net.d_blocks.0.1.main.6.weight", names);
        Assert.Contains("u_net.d_blocks.1.1.skip.weight", names);       // 32 -> 64 channels
        Assert.Contains("u_net.d_blocks.1.2.qkv_proj.weight", names);
        Assert.Contains("u_net.u_blocks.0.1.norm_in.mapper.bias", names);
        Assert.Contains("u_net.u_blocks.1.0.main.2.weight", names);
        Assert.Equal(names.Count, names.Distinct().Count());
        Assert.Contains("timestep_embed.weight", net.Module.NamedBuffers().Select(b => b.Name));
    }

    // Layer-by-layer count of ImageDenoiserModelV1's constructor (k_diffusion/models/image_v1.py),
    // written independently of ImageV1.cs.
    static long Count(int cIn, int f, int[] depths, int[] ch, bool[] sa, int aug)
    {
        static long Lin(long i, long o, bool b = true) => i * o + (b ? o : 0);
        static long Conv(long i, long o, int k, bool b = true) => i * o * k * k + (b ? o : 0);
        long AdaGn(long c) => Lin(f, 2 * c);
        long Res(long ci, long cm, long co) => AdaGn(ci) + Conv(ci, cm, 3) + AdaGn(cm) + Conv(cm, co, 3) + (ci == co ? 0 : Conv(ci, co, 1, false));
        long Attn(long c) => AdaGn(c) + Conv(c, 3 * c, 1) + Conv(c, c, 1);
        long Block(int i, long cFirst, long cm, long co)
        {
            long t = 0;
            for (int k = 0; k < depths[i]; k++)
            {
                long a = k == 0 ? cFirst : cm, o = k < depths[i] - 1 ? cm : co;
                t += Res(a, cm, o) + (sa[i] ? Attn(o) : 0);
            }
            return t;
        }
        int l = depths.Length;
        long total = (aug > 0 ? Lin(aug, f, false) : 0) + 2 * Lin(f, f) + Conv(cIn, ch[0], 1) + Conv(ch[0], cIn, 1);
        for (int i = 0; i < l; i++) total += Block(i, ch[Math.Max(0, i - 1)], ch[i], ch[i]);
        for (int i = 0; i < l; i++) total += Block(i, i < l - 1 ? 2 * ch[i] : ch[i], ch[i], ch[Math.Max(0, i - 1)]);
        return total;
    }

    [Fact]
    public void Image_v1_cifar10_has_66_121_731_parameters_with_augment_conditioning()
    {
        long expected = Count(3, 256, [2, 4, 4], [128, 256, 512], [false, true, true], 9);
        Assert.Equal(66_121_731, expected); // also counted by a separate Python script of the same layer list
        using var net = Presets.Create("image-v1", new InitContext(_d), augmentDim: 9);
        Assert.Equal(expected, net.Module.ParameterCount());
        using var tiny = Presets.Create("image-v1-tiny", new InitContext(_d));
        Assert.Equal(Count(1, 64, [1, 1], [32, 64], [false, true], 0), tiny.Module.ParameterCount()); // 254,849
    }

    [Fact]
    public void Tiny_gradient_matches_finite_differences()
    {
        // L = sum(F(x) * r); analytic dL/dtheta against central differences (float32 forward,
        // h = 1e-2, tolerance 3% + 1e-3) for parameters of the mapping, a conv block, attention, AdaGN.
        using var net = Presets.Create("image-v1-tiny", new InitContext(_d, 7), 8, 1, augmentDim: 9);
        RandomizeZeroParameters(net.Module, 100);
        int b = 2, res = 8;
        var xData = Rand(b * res * res, 2);
        var r = Rand(b * res * res, 3);
        var aug = Rand(b * 9, 4);
        double[] noise = [0.5, -0.7];
        Variable Fwd() => net.Forward(new Variable(Tensor.FromArray(_d, xData, b, 1, res, res)), noise, null,
            new Variable(Tensor.FromArray(_d, aug, b, 9)));
        NetworkGradient.AssertMatchesFiniteDifferences(net.Module, Fwd, r, [b, 1, res, res],
            ["mapping.0.weight", "mapping_cond.weight", "u_net.d_blocks.0.1.main.2.weight",
             "u_net.d_blocks.1.2.qkv_proj.weight", "u_net.u_blocks.0.0.main.4.mapper.weight"]);
    }

    [Fact]
    public void Denoiser_with_variance_loss_matches_a_float64_host_computation()
    {
        int b = 2, c = 2, res = 8, n = c * res * res;
        using var net = new ImageV1(new InitContext(_d, 5), new ImageV1Options
        {
            ImgResolution = res, InChannels = c, MappingOut = 32, Depths = [1, 1], Channels = [16, 32],
            SelfAttnDepths = [false, true], Dropout = 0, HasVariance = true,
        });
        RandomizeZeroParameters(net, 200);
        var pre = new Precond(net, PrecondKind.Edm, 0.5);
        double[] sigma = [0.3, 2.5];
        var y = Rand(b * n, 11, -1, 1);
        var noise = Rand(b * n, 12, -1, 1);
        for (int i = 0; i < b * n; i++) noise[i] *= (float)sigma[i / n];

        double loss;
        using (var scope = new TensorScope())
            loss = DenoiserWithVariance.Loss(pre, new Variable(Tensor.FromArray(_d, y, b, c, res, res)),
                new Variable(Tensor.FromArray(_d, noise, b, c, res, res)), sigma).Value.ToArray()[0];

        // Host: the same network outputs, target and formula in float64.
        var co = sigma.Select(pre.Coefficients).ToArray();
        var xin = new float[b * n];
        for (int i = 0; i < b * n; i++) xin[i] = (float)(co[i / n].CIn * ((double)y[i] + noise[i]));
        float[] f, lv;
        using (var scope = new TensorScope())
        using (Tape.NoGrad())
        {
            f = net.ForwardWithVariance(new Variable(Tensor.FromArray(_d, xin, b, c, res, res)), co.Select(v => v.CNoise).ToArray(),
                null, null, out var logvar).Value.ToArray();
            lv = logvar.Value.ToArray();
        }
        Assert.Equal(b, lv.Length);
        Assert.True(lv.Any(v => Math.Abs(v) > 1e-2), $"log-variance is trivially zero: {string.Join(", ", lv)}");
        double expected = 0;
        for (int i = 0; i < b * n; i++)
        {
            var k = co[i / n];
            double t = (y[i] - k.CSkip * ((double)y[i] + noise[i])) / k.COut;
            double l = lv[i / n];
            expected += ((f[i] - t) * (f[i] - t) / Math.Exp(l) + l) / 2;
        }
        expected /= b * n; // mean over (C, H, W) per image, then over the batch
        Assert.True(Math.Abs(loss - expected) <= 1e-4 * Math.Abs(expected) + 1e-6, $"loss {loss:G9} vs float64 {expected:G9}");

        // And through the tape: the loss has gradients for the log-variance channel's weights.
        using (var scope = new TensorScope())
        {
            net.ZeroGrad();
            DenoiserWithVariance.Loss(pre, new Variable(Tensor.FromArray(_d, y, b, c, res, res)),
                new Variable(Tensor.FromArray(_d, noise, b, c, res, res)), sigma).Backward();
        }
        var gOut = net.NamedParameters().First(p => p.Name == "proj_out.bias").Param.Grad.ToArray();
        Assert.Equal(c + 1, gOut.Length);
        Assert.True(gOut.All(float.IsFinite) && Math.Abs(gOut[c]) > 0);
    }

    [Fact]
    public void Denoiser_with_variance_refuses_a_network_without_variance()
    {
        using var net = Presets.Create("image-v1-tiny", new InitContext(_d), 8, 1);
        var pre = new Precond(net, PrecondKind.Edm);
        using var scope = new TensorScope();
        var z = new Variable(Tensor.Zeros(_d, 1, 1, 8, 8));
        var e = Assert.Throws<ArgumentException>(() => DenoiserWithVariance.Loss(pre, z, z, [1.0]));
        Assert.Contains("HasVariance", e.Message);
    }
}

using Edm.Kernels;
using Edm.Sampling;
using Edm.Verification;
using Xunit;

namespace Edm.Tests.Sampling;

// Device denoisers and samplers against the float64 host reference, on both the CPU fast paths
// and the ILGPU kernels (CpuFastPaths = false) where the size allows.
[Collection("cpu-device")]
public sealed class DeviceSamplingTests(CpuDevice cpu) : IClassFixture<CpuDevice>
{
    readonly EdmDevice _d = cpu.Device;

    void BothPaths(Action check)
    {
        foreach (bool fast in new[] { true, false })
        {
            _d.CpuFastPaths = fast;
            try { check(); }
            finally { _d.CpuFastPaths = true; }
        }
    }

    static float[] F(double[] a) => a.Select(v => (float)v).ToArray();

    [Theory]
    [InlineData(DatasetKind.Points, 7, 13)]
    [InlineData(DatasetKind.Points, 3, 200)]
    [InlineData(DatasetKind.Mixture, 5, 4)]
    [InlineData(DatasetKind.Gaussian, 9, 1)]
    public void AnalyticDenoiserMatchesFloat64(DatasetKind kind, int dim, int count) => BothPaths(() =>
    {
        var data = AnalyticDataset.Create(kind, dim, count, seed: 3);
        var host = HostDenoisers.For(data);
        double[] sigmas = [0.002, 0.01, 0.05, 0.3, 1, 5, 80];
        int batch = sigmas.Length;
        // x near a data point plus sigma-sized noise: the regime samplers visit, where small sigma
        // gives logits ~1e5 apart.
        var x = new double[batch * dim];
        for (int b = 0; b < batch; b++)
        {
            int k = b % data.Count;
            for (int e = 0; e < dim; e++)
                x[b * dim + e] = (float)(data.Means[k * dim + e] + sigmas[b] * DetRandom.Normal(11, 0, b * dim + e));
        }
        using var den = (IDisposable)AnalyticDenoisers.For(_d, data);
        using var xt = Tensor.FromArray(_d, F(x), batch, dim);
        using var got = ((IDenoiser)den).Denoise(xt, sigmas);
        var g = got.ToArray();
        var r = new double[dim];
        for (int b = 0; b < batch; b++)
        {
            host.Denoise(x.AsSpan(b * dim, dim), sigmas[b], r);
            for (int e = 0; e < dim; e++)
            {
                float v = g[b * dim + e];
                Assert.False(float.IsNaN(v), $"NaN at sigma {sigmas[b]}");
                Assert.True(Math.Abs(v - r[e]) <= 2e-5 * (1 + Math.Abs(r[e])), $"{kind} sigma {sigmas[b]} e {e}: {v} vs {r[e]} (fast path {_d.CpuFastPaths})");
            }
        }
    });

    [Fact]
    public void MixtureDenoiseRejectsBadShapes()
    {
        using var x = Tensor.Zeros(_d, 2, 3);
        using var m = Tensor.Zeros(_d, 4, 5);
        using var v = Tensor.Zeros(_d, 4);
        using var s = Tensor.Zeros(_d, 2);
        var e = Assert.Throws<ArgumentException>(() => Ops.MixtureDenoise(x, m, v, v, s));
        Assert.Contains("(K, 3)", e.Message);
    }

    // A sampler on the device against the host reference from the same float32 latents.
    double DeviceVsHost(AnalyticDataset data, SamplerSettings s, int batch = 3)
    {
        var seeds = Enumerable.Range(0, batch).Select(b => 1000UL + (ulong)b).ToArray();
        var z = data.Latents(seeds);
        using var den = (IDisposable)AnalyticDenoisers.For(_d, data);
        using var zt = Tensor.FromArray(_d, F(z), batch, data.Dim);
        var plan = SamplingPlan.Create(s);
        var result = Samplers.Sample((IDenoiser)den, zt, plan, seeds);
        using var x = result.X;
        Assert.Equal(s.Nfe, result.Nfe);
        var got = x.ToArray();
        var host = HostDenoisers.For(data);
        double maxRel = 0;
        for (int b = 0; b < batch; b++)
        {
            ulong seed = seeds[b];
            var r = SamplerReference.Sample(plan, host, z.AsSpan(b * data.Dim, data.Dim), out int nfe,
                (i, e) => Philox.Normal(seed, (ulong)i + 1, (uint)e));
            Assert.Equal(s.Nfe, nfe);
            double scale = r.Max(Math.Abs) + 1;
            for (int e = 0; e < data.Dim; e++) maxRel = Math.Max(maxRel, Math.Abs(got[b * data.Dim + e] - r[e]) / scale);
        }
        return maxRel;
    }

    public static TheoryData<string, string, string, string, double> SamplerCases()
    {
        var t = new TheoryData<string, string, string, string, double>();
        foreach (var solver in Solvers.Names) t.Add(solver, "edm", "linear", "none", 0);
        t.Add("heun", "vp", "vp", "vp", 0);                // VP formulation, Algorithm 1 with s(t) != 1
        t.Add("euler", "ve", "ve", "none", 0);             // VE formulation
        t.Add("heun", "iddpm", "linear", "none", 0);
        t.Add("heun", "edm", "linear", "none", 40);        // Algorithm 2 with churn
        t.Add("ralston", "vp", "vp", "vp", 30);            // churn with VP scaling (NVlabs/edm x_hat rescale)
        t.Add("dpm_2", "edm", "linear", "none", 40);       // k-diffusion's sample_dpm_2 with churn
        return t;
    }

    [Theory, MemberData(nameof(SamplerCases))]
    public void DeviceSamplerMatchesHostReference(string solver, string disc, string schedule, string scaling, double churn)
    {
        var s = new SamplerSettings
        {
            Solver = Solvers.Parse(solver), Discretization = TimeSteps.ParseDiscretization(disc), Steps = 7,
            Schedule = SamplerSettings.ParseSchedule(schedule), Scaling = SamplerSettings.ParseScaling(scaling),
        };
        if (churn > 0) s = s with { SChurn = churn, STmin = 0.05, STmax = 50, SNoise = 1.007 };
        foreach (var kind in new[] { DatasetKind.Gaussian, DatasetKind.Points })
        {
            var data = AnalyticDataset.Create(kind, 5, 9);
            double dev = DeviceVsHost(data, s);
            Assert.True(dev < 2e-5, $"{solver}/{disc}/{schedule}/{scaling}/churn {churn} on {kind}: max deviation {dev}");
        }
    }

    // The analytic denoisers with their noise levels rounded to a grid (as iDDPM's u_j table rounds).
    sealed class RoundingDevice(IDenoiser inner) : IDenoiser
    {
        public Tensor Denoise(Tensor x, double[] sigma) => inner.Denoise(x, sigma);
        public double RoundSigma(double sigma) => Math.Round(sigma, 1) is var r && r > 0 ? r : sigma;
    }

    sealed class RoundingHost(IHostDenoiser inner) : IHostDenoiser
    {
        public int Dim => inner.Dim;
        public void Denoise(ReadOnlySpan<double> x, double sigma, Span<double> result) => inner.Denoise(x, sigma, result);
        public double RoundSigma(double sigma) => Math.Round(sigma, 1) is var r && r > 0 ? r : sigma;
    }

    [Fact]
    public void ChurnRoundsSigmaTheSameWayOnDeviceAndInTheReference()
    {
        var data = AnalyticDataset.Create(DatasetKind.Gaussian, 5, 9);
        var s = new SamplerSettings { Steps = 7, Solver = Solver.Heun, SChurn = 40, STmin = 0.05, STmax = 50, SNoise = 1.007 };
        var seeds = new ulong[] { 3, 4 };
        var z = data.Latents(seeds);
        using var inner = (IDisposable)AnalyticDenoisers.For(_d, data);
        var den = new RoundingDevice((IDenoiser)inner);
        var plan = SamplingPlan.Create(s, den.RoundSigma);
        using var zt = Tensor.FromArray(_d, F(z), 2, data.Dim);
        using var x = Samplers.Sample(den, zt, plan, seeds).X;
        var got = x.ToArray();
        var host = new RoundingHost(HostDenoisers.For(data));
        for (int b = 0; b < 2; b++)
        {
            ulong seed = seeds[b];
            var r = SamplerReference.Sample(plan, host, z.AsSpan(b * data.Dim, data.Dim), out _, (i, e) => Philox.Normal(seed, (ulong)i + 1, (uint)e));
            for (int e = 0; e < data.Dim; e++)
                Assert.True(Math.Abs(got[b * data.Dim + e] - r[e]) <= 2e-5 * (1 + Math.Abs(r[e])), $"sample {b} element {e}: {got[b * data.Dim + e]} vs {r[e]}");
        }
    }

    [Fact]
    public void EulerAncestralHonoursSNoise()
    {
        // k-diffusion's s_noise scales the fresh noise: 0 and 1.5 give different samples on the
        // device, and each equals the float64 reference with the same setting.
        var data = AnalyticDataset.Create(DatasetKind.Gaussian, 5, 9);
        float[] Run(double sNoise)
        {
            var seeds = new ulong[] { 7, 8 };
            using var den = (IDisposable)AnalyticDenoisers.For(_d, data);
            using var zt = Tensor.FromArray(_d, F(data.Latents(seeds)), 2, data.Dim);
            using var x = Samplers.Sample((IDenoiser)den, zt, new SamplerSettings { Steps = 6, Solver = Solver.EulerAncestral, SNoise = sNoise }, seeds).X;
            return x.ToArray();
        }
        Assert.NotEqual(Run(0), Run(1.5));
        foreach (double sNoise in new[] { 0.0, 1.5 })
            Assert.True(DeviceVsHost(data, new SamplerSettings { Steps = 6, Solver = Solver.EulerAncestral, SNoise = sNoise }) < 2e-5, $"S_noise {sNoise}");
    }

    [Fact]
    public void IlgpuKernelPathMatchesHostReference() => BothPaths(() =>
    {
        var data = AnalyticDataset.Create(DatasetKind.Points, 4, 6);
        Assert.True(DeviceVsHost(data, new SamplerSettings { Steps = 4, Solver = Solver.Heun }, 2) < 2e-5);
    });

    double GaussianError(Solver solver, int n)
    {
        var data = AnalyticDataset.Create(DatasetKind.Gaussian, 4, 1);
        var seeds = Enumerable.Range(0, 8).Select(b => 77UL + (ulong)b).ToArray();
        var z = data.Latents(seeds);
        using var den = (IDisposable)AnalyticDenoisers.For(_d, data);
        using var zt = Tensor.FromArray(_d, F(z), 8, 4);
        var s = new SamplerSettings { Solver = solver, Steps = n, Discretization = Discretization.Edm, SigmaMin = 0.002, SigmaMax = 80, Rho = 7 };
        var result = Samplers.Sample((IDenoiser)den, zt, s);
        using var x = result.X;
        var got = x.ToArray();
        var exact = new HostGaussianDenoiser(data);
        double sq = 0;
        var r = new double[4];
        for (int b = 0; b < 8; b++)
        {
            exact.Exact(z.AsSpan(b * 4, 4).ToArray().Select(v => v * 80).ToArray(), 80, 0, r);
            for (int e = 0; e < 4; e++) sq += Math.Pow(got[b * 4 + e] - r[e], 2);
        }
        return Math.Sqrt(sq / 32);
    }

    [Fact]
    public void DeviceOrdersOnTheGaussian()
    {
        // EDM discretization, rho = 7, sigma in [0.002, 80], data std 0.5, fitted between N = 32 and 64.
        double Order(Solver s)
        {
            int nfe1 = new SamplerSettings { Solver = s, Steps = 32 }.Nfe, nfe2 = new SamplerSettings { Solver = s, Steps = 64 }.Nfe;
            return Math.Log(GaussianError(s, 32) / GaussianError(s, 64)) / Math.Log((double)nfe2 / nfe1);
        }
        Assert.InRange(Order(Solver.Euler), 0.9, 1.1);
        Assert.InRange(Order(Solver.Heun), 1.8, 2.2);
        double mid = Order(Solver.Midpoint), ral = Order(Solver.Ralston);
        Assert.True(mid >= 1.8, $"midpoint order {mid}");
        Assert.True(ral >= 1.8, $"ralston order {ral}");
    }

    [Fact]
    public void ChurnOutsideItsWindowIsExactlyTheDeterministicSampler()
    {
        // S_churn = 0 with S_tmin/S_tmax/S_noise set is refused (they would be ignored); churn whose
        // [S_tmin, S_tmax] holds no noise level (sigma <= 80) adds nothing.
        var data = AnalyticDataset.Create(DatasetKind.Points, 6, 10);
        using var den = (IDisposable)AnalyticDenoisers.For(_d, data);
        ulong[] seeds = [5, 6, 7];
        var plain = Samplers.Sample((IDenoiser)den, _d, seeds, [6], new SamplerSettings { Steps = 10 });
        var churn0 = Samplers.Sample((IDenoiser)den, _d, seeds, [6], new SamplerSettings { Steps = 10, SChurn = 40, STmin = 100, STmax = 200, SNoise = 1.003 });
        using var a = plain.X;
        using var b = churn0.X;
        Assert.Equal(a.ToArray(), b.ToArray());
    }

    [Fact]
    public void ChurnSamplesHaveTheDataMeanAndVariance()
    {
        // Gaussian data N(mu, 0.5^2 I): Algorithm 2 with churn must still sample it.
        const int batch = 4000, dim = 2;
        var data = AnalyticDataset.Create(DatasetKind.Gaussian, dim, 1);
        using var den = (IDisposable)AnalyticDenoisers.For(_d, data);
        var seeds = Enumerable.Range(0, batch).Select(b => 9000UL + (ulong)b).ToArray();
        var s = new SamplerSettings { Steps = 32, SChurn = 40, STmin = 0.05, STmax = 50, SNoise = 1 };
        var result = Samplers.Sample((IDenoiser)den, _d, seeds, [dim], s);
        using var x = result.X;
        var v = x.ToArray();
        for (int e = 0; e < dim; e++)
        {
            double mean = 0, sq = 0;
            for (int b = 0; b < batch; b++) mean += v[b * dim + e];
            mean /= batch;
            for (int b = 0; b < batch; b++) sq += Math.Pow(v[b * dim + e] - mean, 2);
            double var = sq / (batch - 1);
            // 5 standard errors: mean se = 0.5/sqrt(B), variance se = 0.25 sqrt(2/(B-1)).
            Assert.True(Math.Abs(mean - data.Means[e]) < 5 * 0.5 / Math.Sqrt(batch), $"mean {mean} vs {data.Means[e]}");
            Assert.True(Math.Abs(var - 0.25) < 5 * 0.25 * Math.Sqrt(2.0 / (batch - 1)) + 0.005, $"variance {var} vs 0.25");
        }
    }

    [Theory]
    [InlineData("heun", 40.0, 1.0)]
    [InlineData("euler_ancestral", 0.0, 1.0)]
    public void SampleIsTheSameInABatchOfOneAndOfSeven(string solver, double churn, double eta) => BothPaths(() =>
    {
        var data = AnalyticDataset.Create(DatasetKind.Points, 5, 8);
        using var den = (IDisposable)AnalyticDenoisers.For(_d, data);
        var s = new SamplerSettings { Solver = Solvers.Parse(solver), Steps = 6, Eta = eta };
        if (churn > 0) s = s with { SChurn = churn, STmin = 0.05, STmax = 50 };
        ulong[] seven = [11, 12, 13, 14, 15, 16, 17];
        var many = Samplers.Sample((IDenoiser)den, _d, seven, [5], s);
        var one = Samplers.Sample((IDenoiser)den, _d, [14], [5], s);
        using var a = many.X;
        using var b = one.X;
        Assert.Equal(a.ToArray().AsSpan(3 * 5, 5).ToArray(), b.ToArray());
    });

    [Fact]
    public void NoisySamplersNeedSeeds()
    {
        var data = AnalyticDataset.Create(DatasetKind.Gaussian, 3, 1);
        using var den = (IDisposable)AnalyticDenoisers.For(_d, data);
        using var z = Tensor.Zeros(_d, 2, 3);
        var e = Assert.Throws<ArgumentException>(() => Samplers.Sample((IDenoiser)den, z, new SamplerSettings { SChurn = 10 }));
        Assert.Contains("seed", e.Message);
    }

    [Fact]
    public void LmsCoefficientsAgreeWithTheHostExpansion()
    {
        double[] t = [80, 40, 13, 2.5, 0.4, 0.002, 0];
        for (int i = 3; i < 6; i++)
            for (int j = 0; j < 4; j++)
            {
                double a = Samplers.LmsCoefficient(t, i, j, 4), b = SamplerReference.LagrangeIntegral(t, i, j, 4);
                Assert.True(Math.Abs(a - b) <= 1e-12 * (1 + Math.Abs(b)), $"i {i} j {j}: {a} vs {b}");
            }
    }
}

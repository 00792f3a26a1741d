// The exact side of every truncation-error measurement (docs/formulas.md section 8): the ODE
// solution from the same x_0 as the sampler, exact for the Gaussian and Dormand-Prince 5(4) at
// rtol 1e-10 otherwise, in float64 on the host. Device and host curves measure against the same
// solutions, so they differ only by their samplers.
using Edm.Sampling;
using Edm.Verification;

namespace Edm.Verification;

/// <summary>Reference solutions of one dataset for the batch of a config.</summary>
public sealed class ReferenceSolutions
{
    readonly Dictionary<double, double[]> _final = new();

    /// <summary>The dataset.</summary>
    public AnalyticDataset Data { get; }
    /// <summary>The float64 denoiser.</summary>
    public IHostDenoiser Denoiser { get; }
    /// <summary>Unit-normal latents of the batch (float32 values). // (B, D)</summary>
    public double[] Latents { get; }
    /// <summary>Batch size.</summary>
    public int Batch { get; }

    /// <summary>Builds the dataset and latents of a config.</summary>
    public ReferenceSolutions(TruncationConfig cfg, string dataset)
    {
        Data = cfg.Dataset(dataset);
        Denoiser = HostDenoisers.For(Data);
        var seeds = cfg.SampleSeeds();
        Batch = seeds.Length;
        Latents = Data.Latents(seeds);
    }

    /// <summary>The solution at sigma = 0 from x_0 = latents sigma0. // (B, D)</summary>
    public double[] Final(double sigma0)
    {
        lock (_final)
            if (_final.TryGetValue(sigma0, out var cached)) return cached;
        int d = Data.Dim;
        var result = new double[Latents.Length];
        Parallel.For(0, Batch, b =>
        {
            var x = result.AsSpan(b * d, d);
            for (int e = 0; e < d; e++) x[e] = Latents[b * d + e] * sigma0;
            ReferenceOde.Solve(Denoiser, x, sigma0, 0);
        });
        lock (_final) _final[sigma0] = result;
        return result;
    }

    /// <summary>
    /// The exact trajectory at the noise levels sigmas[0] > ... (the last may be 0), from
    /// x_0 = latents sigmas[0]; row i is (B, D). // (N+1, B, D)
    /// </summary>
    public double[][] Trajectory(double[] sigmas)
    {
        int d = Data.Dim;
        var rows = new double[sigmas.Length][];
        for (int i = 0; i < rows.Length; i++) rows[i] = new double[Latents.Length];
        Parallel.For(0, Batch, b =>
        {
            var x = new double[d];
            for (int e = 0; e < d; e++) x[e] = Latents[b * d + e] * sigmas[0];
            x.CopyTo(rows[0], b * d);
            for (int i = 1; i < sigmas.Length; i++)
            {
                ReferenceOde.Solve(Denoiser, x, sigmas[i - 1], sigmas[i]);
                x.CopyTo(rows[i], b * d);
            }
        });
        return rows;
    }

    /// <summary>RMS over all elements of a - b.</summary>
    public static double RmsDiff(ReadOnlySpan<double> a, ReadOnlySpan<double> b)
    {
        double sq = 0;
        for (int i = 0; i < a.Length; i++) sq += (a[i] - b[i]) * (a[i] - b[i]);
        return Math.Sqrt(sq / a.Length);
    }

    /// <summary>RMS over all elements of a float32 array against a double one.</summary>
    public static double RmsDiff(ReadOnlySpan<float> a, ReadOnlySpan<double> b)
    {
        double sq = 0;
        for (int i = 0; i < a.Length; i++) sq += (a[i] - b[i]) * (a[i] - b[i]);
        return Math.Sqrt(sq / a.Length);
    }

    /// <summary>The float32 rounding floor of data x: factor * 2^-23 * RMS(x) * amplification.</summary>
    public static double Floor(ReadOnlySpan<double> x, double factor, double amplification = 1)
    {
        double sq = 0;
        foreach (double v in x) sq += v * v;
        return factor * Math.Pow(2, -23) * Math.Sqrt(sq / x.Length) * amplification;
    }

    /// <summary>
    /// How much a sampler amplifies a rounding error in its derivative (or denoised) evaluations
    /// relative to a one-step method: the largest sum over a step of the |weights| of the
    /// evaluations it combines, divided by the step's total weight. 1 for Euler and the RK2 family
    /// (weights (1 - 1/2alpha, 1/2alpha) are >= 0), 1 + 1/r for DPM-Solver++(2M)'s extrapolation,
    /// and sum_j |c_ij| / |h_i| for lms, whose last step extrapolates a cubic over a whole
    /// interval sigma_{N-1}..0 (652 for ve with N = 128: its float32 result carries that much more rounding).
    /// </summary>
    public static double RoundingAmplification(SamplingPlan plan)
    {
        var s = plan.Settings;
        var sig = plan.Sigma;
        double worst = 1;
        if (s.Solver == Solver.Lms)
        {
            for (int i = 0; i < plan.Steps; i++)
            {
                int order = Math.Min(i + 1, s.LmsOrder);
                double sum = 0;
                for (int j = 0; j < order; j++) sum += Math.Abs(Samplers.LmsCoefficient(sig, i, j, order));
                worst = Math.Max(worst, sum / Math.Abs(sig[i + 1] - sig[i]));
            }
        }
        else if (s.Solver == Solver.DpmPP2M)
        {
            for (int i = 1; i < plan.Steps; i++)
                if (sig[i + 1] > 0) worst = Math.Max(worst, 1 + Math.Log(sig[i - 1] / sig[i]) / Math.Log(sig[i] / sig[i + 1]));
        }
        return worst;
    }
}

/// <summary>The truncation-error curves computed by the float64 host reference samplers.</summary>
public static class HostTruncation
{
    /// <summary>Computes every curve of the config with <see cref="SamplerReference"/>.</summary>
    public static CurveSet Compute(TruncationConfig cfg, Action<string>? progress = null)
    {
        var set = new CurveSet();
        foreach (var name in cfg.Datasets)
        {
            var refs = new ReferenceSolutions(cfg, name);
            int d = refs.Data.Dim;
            foreach (var solver in cfg.Solvers)
                foreach (var disc in cfg.Discretizations)
                {
                    progress?.Invoke($"host reference: {name} {solver.Name()} {disc.Name()}");
                    foreach (int n in cfg.Steps)
                    {
                        var s = cfg.Global(solver, disc, n);
                        var plan = SamplingPlan.Create(s);
                        var xRef = refs.Final(plan.Sigma[0]);
                        var x = new double[refs.Latents.Length];
                        int nfe = 0;
                        Parallel.For(0, refs.Batch, b =>
                        {
                            var xb = SamplerReference.Sample(plan, refs.Denoiser, refs.Latents.AsSpan(b * d, d), out int used);
                            xb.CopyTo(x, b * d);
                            Interlocked.Exchange(ref nfe, used);
                        });
                        set.Global.Add(new GlobalPoint(name, solver.Name(), disc.Name(), cfg.Rho, n, nfe,
                            ReferenceSolutions.RmsDiff(x, xRef), ReferenceSolutions.Floor(xRef, cfg.FloorFactor, ReferenceSolutions.RoundingAmplification(plan))));
                    }
                }
            foreach (double rho in cfg.LocalRhos)
            {
                progress?.Invoke($"host reference: {name} local rho={rho}");
                var plan = SamplingPlan.Create(cfg.Local(Solver.Euler, rho));
                var traj = refs.Trajectory(plan.Sigma);
                foreach (var solver in cfg.LocalSolvers)
                {
                    double? alpha = solver == Solver.Euler ? null : cfg.Local(solver, rho).EffectiveAlpha;
                    for (int i = 0; i < plan.Steps; i++)
                    {
                        var x = new double[refs.Latents.Length];
                        Parallel.For(0, refs.Batch, b =>
                            SamplerReference.RkStep(plan.Formulation, refs.Denoiser, plan.T[i], plan.T[i + 1], traj[i].AsSpan(b * d, d), alpha).CopyTo(x, b * d));
                        set.Local.Add(new LocalPoint(name, solver.Name(), rho, i, plan.Sigma[i],
                            ReferenceSolutions.RmsDiff(x, traj[i + 1]), ReferenceSolutions.Floor(traj[i], cfg.FloorFactor)));
                    }
                }
            }
        }
        return set;
    }
}

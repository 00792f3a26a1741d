// The device side of the truncation bench: the same curves as HostTruncation, computed with the
// float32 device samplers and denoisers (Edm.Sampling.Samplers, Ops.MixtureDenoise) against the
// same float64 reference solutions.
using Edm.Kernels;
using Edm.Sampling;

namespace Edm.Verification;

/// <summary>Truncation-error curves on a device.</summary>
public static class DeviceTruncation
{
    /// <summary>Device bytes a run needs at most (state, temporaries of a step, point-set weights), rounded up.</summary>
    public static long EstimatedDeviceBytes(TruncationConfig cfg) =>
        4L * ((long)cfg.Batch * cfg.Dim * 24 + 2L * cfg.Batch * cfg.Count + (long)cfg.Count * (cfg.Dim + 2));

    /// <summary>Computes every curve of the config on the device.</summary>
    public static CurveSet Compute(EdmDevice device, TruncationConfig cfg, Action<string>? progress = null)
    {
        var set = new CurveSet();
        foreach (var name in cfg.Datasets)
        {
            progress?.Invoke($"{name}: reference solutions (float64)");
            var refs = new ReferenceSolutions(cfg, name);
            int batch = refs.Batch, d = refs.Data.Dim;
            var den = AnalyticDenoisers.For(device, refs.Data);
            try
            {
                using var latents = Tensor.FromArray(device, refs.Latents.Select(v => (float)v).ToArray(), batch, d);
                foreach (var solver in cfg.Solvers)
                    foreach (var disc in cfg.Discretizations)
                    {
                        progress?.Invoke($"{name}: global error {solver.Name()} / {disc.Name()}, N = {string.Join(",", cfg.Steps)}");
                        foreach (int n in cfg.Steps)
                        {
                            var plan = SamplingPlan.Create(cfg.Global(solver, disc, n));
                            var xRef = refs.Final(plan.Sigma[0]);
                            var result = Samplers.Sample(den, latents, plan);
                            using var x = result.X;
                            set.Global.Add(new GlobalPoint(name, solver.Name(), disc.Name(), cfg.Rho, n, result.Nfe,
                                ReferenceSolutions.RmsDiff(x.ToArray(), xRef), ReferenceSolutions.Floor(xRef, cfg.FloorFactor, ReferenceSolutions.RoundingAmplification(plan))));
                        }
                    }
                foreach (double rho in cfg.LocalRhos)
                {
                    progress?.Invoke($"{name}: local error rho = {rho}");
                    var plan = SamplingPlan.Create(cfg.Local(Solver.Euler, rho));
                    var traj = refs.Trajectory(plan.Sigma);
                    for (int i = 0; i < plan.Steps; i++)
                    {
                        using var xi = Tensor.FromArray(device, traj[i].Select(v => (float)v).ToArray(), batch, d);
                        foreach (var solver in cfg.LocalSolvers)
                        {
                            double? alpha = solver == Solver.Euler ? null : cfg.Local(solver, rho).EffectiveAlpha;
                            using var step = Samplers.Step(den, plan.Formulation, plan.T[i], plan.T[i + 1], xi, alpha);
                            set.Local.Add(new LocalPoint(name, solver.Name(), rho, i, plan.Sigma[i],
                                ReferenceSolutions.RmsDiff(step.ToArray(), traj[i + 1]), ReferenceSolutions.Floor(traj[i], cfg.FloorFactor)));
                        }
                    }
                }
            }
            finally
            {
                (den as IDisposable)?.Dispose();
            }
        }
        // Same order as the host reference (solver-major local rows) so CSVs diff cleanly.
        var local = set.Local.OrderBy(p => Array.IndexOf(cfg.Datasets, p.Dataset)).ThenBy(p => p.Rho)
            .ThenBy(p => Array.IndexOf(cfg.LocalSolvers.Select(s => s.Name()).ToArray(), p.Solver)).ThenBy(p => p.Step).ToList();
        set.Local.Clear();
        set.Local.AddRange(local);
        return set;
    }
}

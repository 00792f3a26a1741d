// Device samplers over any IDenoiser (docs/formulas.md sections 3-5, k-diffusion's samplers). The
// state x lives in float32 tensors and is updated with Ops; every schedule quantity and step
// coefficient is computed in double on the host (SamplingPlan) and passed as a float scalar.
//
// - Euler, Heun (Algorithm 1 for arbitrary sigma(t), s(t)), the RK2 alpha family (Appendix D.2)
//   and Algorithm 2's churn, all as NVlabs/edm's generalized sampler does them (RungeKutta);
// - k-diffusion euler_ancestral, dpm_2 (with churn, as sample_dpm_2), dpm++ 2M and lms in sigma
//   (sigma(t) = t, s = 1).
// The last step to sigma = 0 is Euler (lms: its multistep formula, which evaluates nothing at 0).
// NFE is counted by wrapping the denoiser and equals SamplerSettings.Nfe.
//
// Noise: x_0 = latents sigma(t_0) s(t_0) with latents from Ops.NormalPerSample(seeds, stream 0);
// churn / ancestral noise of step i comes from an INoiseSource, by default PhiloxNoise: stream
// i + 1 keyed by seeds[b], so sample b depends only on (seeds[b], step, element): identical
// whatever batch it is in.
//
// Research hooks (k-diffusion's): a plan on the caller's own grid (SamplingPlan.FromSigmas), a
// per-step callback (SamplerStep: x after churn, the step's first denoised) and the noise source.
using Edm.Kernels;

namespace Edm.Sampling;

/// <summary>Output of a sampler: x_N (B, ...) and the number of denoiser evaluations.</summary>
public sealed record SampleResult(Tensor X, int Nfe);

/// <summary>
/// One sampler step as the per-step callback sees it (k-diffusion's callback dict {x, i, sigma,
/// sigma_hat, denoised}), called once per step i = 0..N-1 by every solver before it updates x.
/// <see cref="X"/> (B, ...) is x at the start of the step after the churn (x_hat at t_hat; with vp
/// scaling it carries the factor s(t_hat)); <see cref="Denoised"/> (B, ...) is the step's first
/// denoiser output D(x_hat / s(t_hat); sigma_hat), in the data's scale. Both tensors belong to the
/// sampler and are valid only during the call: do not modify or dispose them; copy what you keep
/// (<c>ToArray()</c>, or <c>TensorScope.Current?.Escape(Ops.Copy(step.X))</c>: tensors created
/// during the call join the step's scope and are disposed after the step unless escaped).
/// </summary>
/// <param name="I">Step index i (0-based).</param>
/// <param name="T">t_i.</param>
/// <param name="THat">t_hat_i (t_i without churn).</param>
/// <param name="Sigma">sigma(t_i).</param>
/// <param name="SigmaHat">sigma(t_hat_i), the noise level of <see cref="Denoised"/> (sigma_i without churn).</param>
/// <param name="X">x_hat (B, ...).</param>
/// <param name="Denoised">D(x_hat / s(t_hat); sigma_hat) (B, ...).</param>
public sealed record SamplerStep(int I, double T, double THat, double Sigma, double SigmaHat, Tensor X, Tensor Denoised);

/// <summary>
/// Where a sampler's fresh noise comes from: the churn noise of step i (Algorithm 2) and the
/// noise euler_ancestral adds at the end of step i. The latents x_0 are not drawn here: the
/// caller passes them (<see cref="Samplers.Latents"/> draws them from the seeds).
/// </summary>
public interface INoiseSource
{
    /// <summary>
    /// Fills every element of <paramref name="destination"/> (B, ...; the latents' shape,
    /// uninitialised on entry) with unit-normal noise for step <paramref name="step"/> (0-based).
    /// Called at most once per step, only for steps that add noise.
    /// </summary>
    void Normal(Tensor destination, int step);
}

/// <summary>
/// The default noise source: per-sample Philox streams, sample b of step i from seeds[b] and
/// stream i + 1 (<see cref="Ops.NormalPerSample"/>; stream 0 is the latents'), so a sample's noise
/// does not depend on its batch.
/// </summary>
public sealed class PhiloxNoise(ulong[] seeds) : INoiseSource
{
    /// <summary>One seed per sample.</summary>
    public ulong[] Seeds { get; } = seeds;

    /// <inheritdoc/>
    public void Normal(Tensor destination, int step) => Ops.NormalPerSample(destination, Seeds, (ulong)step + 1);
}

/// <summary>The device samplers.</summary>
public static class Samplers
{
    /// <summary>Unit-normal latents (B, sampleShape...) keyed per sample by seeds[b] (stream 0).</summary>
    public static Tensor Latents(EdmDevice device, ulong[] seeds, params int[] sampleShape)
    {
        var z = Tensor.Empty(device, [seeds.Length, .. sampleShape]);
        Ops.NormalPerSample(z, seeds, 0);
        return z;
    }

    /// <summary>Samples from seeds: latents from <see cref="Latents"/>, then <see cref="Sample(IDenoiser, Tensor, SamplerSettings, ulong[], INoiseSource, Action{SamplerStep})"/>.</summary>
    public static SampleResult Sample(IDenoiser denoiser, EdmDevice device, ulong[] seeds, int[] sampleShape, SamplerSettings settings)
    {
        using var z = Latents(device, seeds, sampleShape);
        return Sample(denoiser, z, settings, seeds);
    }

    /// <summary>
    /// Runs a sampler from unit-normal latents (B, ...). <paramref name="seeds"/> key the churn and
    /// ancestral noise per sample (<see cref="PhiloxNoise"/>); <paramref name="noise"/> replaces
    /// them with the caller's source (give one or the other; either is needed only when the
    /// settings add noise). <paramref name="callback"/> sees every step (<see cref="SamplerStep"/>).
    /// </summary>
    public static SampleResult Sample(IDenoiser denoiser, Tensor latents, SamplerSettings settings, ulong[]? seeds = null,
        INoiseSource? noise = null, Action<SamplerStep>? callback = null) =>
        Sample(denoiser, latents, SamplingPlan.Create(settings, denoiser.RoundSigma, denoiser.SigmaMin, denoiser.SigmaMax), seeds, noise, callback);

    /// <summary>
    /// Runs a sampler on a resolved plan, e.g. one on the caller's own noise levels
    /// (<see cref="SamplingPlan.FromSigmas"/>); the rest as
    /// <see cref="Sample(IDenoiser, Tensor, SamplerSettings, ulong[], INoiseSource, Action{SamplerStep})"/>.
    /// </summary>
    public static SampleResult Sample(IDenoiser denoiser, Tensor latents, SamplingPlan plan, ulong[]? seeds = null,
        INoiseSource? noise = null, Action<SamplerStep>? callback = null)
    {
        var s = plan.Settings;
        if (seeds is not null && noise is not null)
            throw new ArgumentException("Sample: give seeds (the default Philox noise) or a noise source, not both");
        bool noisy = (s.Solver.TakesChurn() && s.SChurn > 0 && s.SNoise > 0) || (s.Solver == Solver.EulerAncestral && s.Eta > 0);
        if (noisy && noise is null && (seeds is null || seeds.Length != latents.Shape[0]))
            throw new ArgumentException($"Sample: {s.Solver.Name()} with churn/eta adds noise and needs one seed per sample ({latents.Shape[0]}), got {seeds?.Length ?? 0}, or a noise source");
        noise ??= seeds is null ? null : new PhiloxNoise(seeds);
        var counter = new CountingDenoiser(denoiser);
        var f = plan.Formulation;
        var x = Ops.Scale(latents, (float)(f.Sigma(plan.T[0]) * f.S(plan.T[0])));
        try
        {
            switch (s.Solver)
            {
                case Solver.EulerAncestral: EulerAncestral(plan, counter, x, noise, callback); break;
                case Solver.Dpm2: Dpm2(plan, counter, x, noise, callback); break;
                case Solver.DpmPP2M: DpmPP2M(plan, counter, x, callback); break;
                case Solver.Lms: Lms(plan, counter, x, callback); break;
                default: RungeKutta(plan, counter, x, noise, callback); break;
            }
        }
        catch
        {
            x.Dispose();
            throw;
        }
        return new SampleResult(x, counter.Calls);
    }

    // The callback's view of step i of a solver in sigma (no churn): t = t_hat = sigma = sigma_hat.
    static void Report(Action<SamplerStep>? callback, SamplingPlan plan, int i, Tensor x, Tensor denoised) =>
        callback?.Invoke(new SamplerStep(i, plan.T[i], plan.T[i], plan.Sigma[i], plan.Sigma[i], x, denoised));

    static double[] Fill(int batch, double sigma)
    {
        var a = new double[batch];
        Array.Fill(a, sigma);
        return a;
    }

    /// <summary>
    /// Algorithm 1 line 4 on the device: d = (sigma'/sigma + s'/s) x - sigma' s / sigma D(x / s; sigma).
    /// Returns a new tensor.
    /// </summary>
    public static Tensor Velocity(Formulation f, IDenoiser den, double t, Tensor x)
    {
        using var scope = new TensorScope();
        var denoised = Denoise(f, den, t, x);
        return scope.Escape(VelocityFrom(f, t, x, denoised));
    }

    // D(x / s(t); sigma(t)): a new tensor.
    static Tensor Denoise(Formulation f, IDenoiser den, double t, Tensor x)
    {
        double s = f.S(t);
        using var scope = new TensorScope();
        var xs = s == 1 ? x : Ops.Scale(x, (float)(1 / s));
        return scope.Escape(den.Denoise(xs, Fill(x.Shape[0], f.Sigma(t))));
    }

    // d = a x - b D with (a, b) the velocity coefficients at t: a new tensor.
    static Tensor VelocityFrom(Formulation f, double t, Tensor x, Tensor denoised)
    {
        var (a, b) = f.VelocityCoefficients(t);
        var d = Ops.Scale(x, (float)a);
        Ops.Axpy((float)-b, denoised, d);
        return d;
    }

    // Euler / RK2 family with churn (Algorithm 2 generalized as in NVlabs/edm): x is updated in place.
    static void RungeKutta(SamplingPlan plan, IDenoiser den, Tensor x, INoiseSource? noise, Action<SamplerStep>? callback)
    {
        var f = plan.Formulation;
        var s = plan.Settings;
        int n = plan.Steps;
        bool secondOrder = s.Solver.IsSecondOrderRk();
        double alpha = s.EffectiveAlpha;
        for (int i = 0; i < n; i++)
        {
            using var scope = new TensorScope();
            double tCur = plan.T[i], tNext = plan.T[i + 1];
            double tHat = plan.THat(i, den.RoundSigma);
            // Churn: x_hat = s(t_hat)/s(t_i) x_i + sqrt(sigma(t_hat)^2 - sigma(t_i)^2) s(t_hat) S_noise eps.
            double sigmaCur = f.Sigma(tCur), sigmaHat = f.Sigma(tHat);
            double noiseScale = Math.Sqrt(Math.Max(sigmaHat * sigmaHat - sigmaCur * sigmaCur, 0)) * f.S(tHat) * s.SNoise;
            double rescale = f.S(tHat) / f.S(tCur);
            if (rescale != 1) Ops.Map(x, x, new ScaleOp((float)rescale), "Scale");
            if (noiseScale > 0)
            {
                var eps = Tensor.Empty(x.Device, x.Shape);
                noise!.Normal(eps, i);
                Ops.Axpy((float)noiseScale, eps, x);
            }
            double h = tNext - tHat;
            var denoised = Denoise(f, den, tHat, x);
            callback?.Invoke(new SamplerStep(i, tCur, tHat, sigmaCur, sigmaHat, x, denoised));
            var dCur = VelocityFrom(f, tHat, x, denoised);
            if (!secondOrder || i == n - 1)
            {
                Ops.Axpy((float)h, dCur, x);                       // Euler (always on the last step)
                continue;
            }
            var xPrime = Ops.Copy(x);
            Ops.Axpy((float)(alpha * h), dCur, xPrime);
            var dPrime = Velocity(f, den, tHat + alpha * h, xPrime);
            Ops.Axpy((float)(h * (1 - 1 / (2 * alpha))), dCur, x);
            Ops.Axpy((float)(h / (2 * alpha)), dPrime, x);
        }
    }

    /// <summary>
    /// One deterministic step from (t_i, x_i) to t_{i+1}: Euler (<paramref name="alpha"/> null) or
    /// the RK2 family; a step to sigma = 0 is Euler. For local truncation errors. Returns a new tensor.
    /// </summary>
    public static Tensor Step(IDenoiser den, Formulation f, double tCur, double tNext, Tensor x, double? alpha)
    {
        using var scope = new TensorScope();
        double h = tNext - tCur;
        var dCur = Velocity(f, den, tCur, x);
        var result = Ops.Copy(x);
        if (alpha is null || f.Sigma(tNext) == 0)
        {
            Ops.Axpy((float)h, dCur, result);
            return scope.Escape(result);
        }
        double a = alpha.Value;
        var xPrime = Ops.Copy(x);
        Ops.Axpy((float)(a * h), dCur, xPrime);
        var dPrime = Velocity(f, den, tCur + a * h, xPrime);
        Ops.Axpy((float)(h * (1 - 1 / (2 * a))), dCur, result);
        Ops.Axpy((float)(h / (2 * a)), dPrime, result);
        return scope.Escape(result);
    }

    // k-diffusion euler_ancestral: Euler to sigma_down, then sigma_up * S_noise fresh noise.
    static void EulerAncestral(SamplingPlan plan, IDenoiser den, Tensor x, INoiseSource? noise, Action<SamplerStep>? callback)
    {
        var sig = plan.Sigma;
        double eta = plan.Settings.Eta;
        int batch = x.Shape[0];
        for (int i = 0; i < plan.Steps; i++)
        {
            using var scope = new TensorScope();
            double sc = sig[i], sn = sig[i + 1];
            double up = Math.Min(sn, eta * Math.Sqrt(sn * sn * (sc * sc - sn * sn) / (sc * sc)));
            double down = Math.Sqrt(sn * sn - up * up);
            var denoised = den.Denoise(x, Fill(batch, sc));
            Report(callback, plan, i, x, denoised);
            // x += (down - sigma) (x - D) / sigma  ==  x (down / sigma) + D (1 - down / sigma)
            double r = down / sc;
            Ops.Map(x, x, new ScaleOp((float)r), "Scale");
            Ops.Axpy((float)(1 - r), denoised, x);
            if (sn > 0 && up > 0)
            {
                var eps = Tensor.Empty(x.Device, x.Shape);
                noise!.Normal(eps, i);
                Ops.Axpy((float)(up * plan.Settings.SNoise), eps, x);  // k-diffusion's s_noise scales the fresh noise
            }
        }
    }

    // k-diffusion dpm_2 (sample_dpm_2): churn as Algorithm 2 (sigma_hat = sigma_i (1 + gamma_i),
    // x += S_noise sqrt(sigma_hat^2 - sigma_i^2) eps), then the midpoint in ln sigma from sigma_hat;
    // Euler on the last step.
    static void Dpm2(SamplingPlan plan, IDenoiser den, Tensor x, INoiseSource? noise, Action<SamplerStep>? callback)
    {
        var sig = plan.Sigma;
        int batch = x.Shape[0];
        for (int i = 0; i < plan.Steps; i++)
        {
            using var scope = new TensorScope();
            double sc = sig[i], sn = sig[i + 1];
            double sh = plan.SigmaHat(i, den.RoundSigma);          // sigma_i without churn
            double noiseScale = Math.Sqrt(Math.Max(sh * sh - sc * sc, 0)) * plan.Settings.SNoise;
            if (noiseScale > 0)
            {
                var eps = Tensor.Empty(x.Device, x.Shape);
                noise!.Normal(eps, i);
                Ops.Axpy((float)noiseScale, eps, x);
            }
            var denoised = den.Denoise(x, Fill(batch, sh));
            callback?.Invoke(new SamplerStep(i, plan.T[i], plan.THat(i, den.RoundSigma), sc, sh, x, denoised));
            var d = Ops.Scale(x, (float)(1 / sh));
            Ops.Axpy((float)(-1 / sh), denoised, d);
            if (sn == 0)
            {
                Ops.Axpy((float)(sn - sh), d, x);
                continue;
            }
            double sMid = Math.Exp(0.5 * (Math.Log(sh) + Math.Log(sn)));
            var x2 = Ops.Copy(x);
            Ops.Axpy((float)(sMid - sh), d, x2);
            var d2 = Ops.Scale(x2, (float)(1 / sMid));
            Ops.Axpy((float)(-1 / sMid), den.Denoise(x2, Fill(batch, sMid)), d2);
            Ops.Axpy((float)(sn - sh), d2, x);
        }
    }

    // DPM-Solver++(2M): x = (sigma_next/sigma) x + (1 - e^-h) ((1 + 1/2r) D_i - 1/2r D_{i-1}), h = ln(sigma/sigma_next).
    static void DpmPP2M(SamplingPlan plan, IDenoiser den, Tensor x, Action<SamplerStep>? callback)
    {
        var sig = plan.Sigma;
        int batch = x.Shape[0];
        Tensor? old = null;
        try
        {
            for (int i = 0; i < plan.Steps; i++)
            {
                double sc = sig[i], sn = sig[i + 1];
                var denoised = den.Denoise(x, Fill(batch, sc));
                Report(callback, plan, i, x, denoised);
                if (sn == 0)
                {
                    Ops.CopyInto(denoised, x);                 // the step to 0 returns D (= Euler)
                    denoised.Dispose();
                    continue;
                }
                double h = Math.Log(sc / sn);
                double w = -MathD.ExpM1(-h);
                Ops.Map(x, x, new ScaleOp((float)(sn / sc)), "Scale");
                if (old is null)
                    Ops.Axpy((float)w, denoised, x);
                else
                {
                    double r = Math.Log(sig[i - 1] / sc) / h;
                    Ops.Axpy((float)(w * (1 + 1 / (2 * r))), denoised, x);
                    Ops.Axpy((float)(-w / (2 * r)), old, x);
                }
                old?.Dispose();
                old = denoised;
            }
        }
        finally
        {
            old?.Dispose();
        }
    }

    // k-diffusion lms: x += sum_j c_ij d_{i-j}, c_ij = integral of the Lagrange basis of node sigma_{i-j}.
    static void Lms(SamplingPlan plan, IDenoiser den, Tensor x, Action<SamplerStep>? callback)
    {
        var sig = plan.Sigma;
        int batch = x.Shape[0], order = plan.Settings.LmsOrder;
        var history = new List<Tensor>();                      // history[j] = d_{i-j}
        try
        {
            for (int i = 0; i < plan.Steps; i++)
            {
                double sc = sig[i];
                using var denoised = den.Denoise(x, Fill(batch, sc));
                Report(callback, plan, i, x, denoised);
                var d = Ops.Scale(x, (float)(1 / sc));
                Ops.Axpy((float)(-1 / sc), denoised, d);
                history.Insert(0, d);
                if (history.Count > order)
                {
                    history[^1].Dispose();
                    history.RemoveAt(history.Count - 1);
                }
                for (int j = 0; j < history.Count; j++)
                    Ops.Axpy((float)LmsCoefficient(sig, i, j, history.Count), history[j], x);
            }
        }
        finally
        {
            foreach (var t in history) t.Dispose();
        }
    }

    static readonly double[] GaussNodes = [-0.8611363115940526, -0.3399810435848563, 0.3399810435848563, 0.8611363115940526];
    static readonly double[] GaussWeights = [0.3478548451374538, 0.6521451548625461, 0.6521451548625461, 0.3478548451374538];

    /// <summary>
    /// Linear multistep coefficient: integral over [t_i, t_{i+1}] of the Lagrange basis polynomial
    /// of node t_{i-j} among t_i..t_{i-order+1}, by 4-point Gauss-Legendre (exact up to degree 7,
    /// so for orders up to 8).
    /// </summary>
    public static double LmsCoefficient(double[] t, int i, int j, int order)
    {
        double a = t[i], b = t[i + 1], half = 0.5 * (b - a), mid = 0.5 * (a + b), sum = 0;
        for (int q = 0; q < GaussNodes.Length; q++)
        {
            double tau = mid + half * GaussNodes[q], p = 1;
            for (int k = 0; k < order; k++)
                if (k != j) p *= (tau - t[i - k]) / (t[i - j] - t[i - k]);
            sum += GaussWeights[q] * p;
        }
        return half * sum;
    }
}

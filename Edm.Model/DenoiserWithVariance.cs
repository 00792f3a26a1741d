// k-diffusion's DenoiserWithVariance loss (crowsonkb/k-diffusion, k_diffusion/layers.py): the network
// (has_variance) outputs F (C channels) and one extra channel whose spatial mean is a per-image
// log-variance lv_b. With the EDM c_* and the F-space target t = (y - c_skip (y + n)) / c_out
// (docs/formulas.md section 6), the loss of image b is
//     L_b = mean over (C, H, W) of ((F - t)^2 / exp(lv_b) + lv_b) / 2
// (k-diffusion: losses.flatten(1).mean(1); the training script then takes the batch mean), and the
// returned loss is the mean of L_b over the batch. Note the per-pixel mean, not the sum that
// Losses.Compute uses.
using Edm.Autograd;
using Edm.Kernels;
using Edm.Model.Networks;

namespace Edm.Model;

/// <summary>The learned-variance F-space loss of k-diffusion's DenoiserWithVariance.</summary>
public static class DenoiserWithVariance
{
    /// <summary>
    /// The loss for clean images <paramref name="y"/> (B, C, R, R), noise <paramref name="n"/> already
    /// scaled by sigma (B, C, R, R) and per-sample <paramref name="sigma"/>; a scalar variable.
    /// <paramref name="precond"/> must use EDM preconditioning over an <see cref="IVarianceNetwork"/>.
    /// </summary>
    public static Variable Loss(Precond precond, Variable y, Variable n, double[] sigma, Variable? classLabels = null, Variable? augmentLabels = null)
    {
        if (precond.Kind != PrecondKind.Edm) throw new ArgumentException($"DenoiserWithVariance: needs EDM preconditioning, got {precond.Kind}");
        if (precond.Network is not IVarianceNetwork net || net is ImageV1 { HasVariance: false })
            throw new ArgumentException("DenoiserWithVariance: the network has no log-variance output (build image_v1 with HasVariance)");
        int b = y.Shape[0];
        if (sigma.Length != b) throw new ArgumentException($"DenoiserWithVariance: {sigma.Length} sigmas for a batch of {b}");
        if (!Shapes.Equal(y.Shape, n.Shape)) throw new ArgumentException($"DenoiserWithVariance: noise shape {Shapes.Format(n.Shape)} differs from {Shapes.Format(y.Shape)}");
        var dev = y.Device;
        var c = sigma.Select(precond.Coefficients).ToArray();
        Variable Col(Func<PrecondCoefficients, double> f) => new(Tensor.FromArray(dev, c.Select(v => (float)f(v)).ToArray(), b, 1, 1, 1));
        var yn = Fn.Add(y, n);
        var f = net.ForwardWithVariance(Fn.Mul(yn, Col(v => v.CIn)), c.Select(v => v.CNoise).ToArray(), classLabels, augmentLabels, out var logvar);
        var target = Fn.Mul(Fn.Sub(y, Fn.Mul(yn, Col(v => v.CSkip))), Col(v => 1 / v.COut));
        return FromOutputs(f, logvar, target);
    }

    /// <summary>
    /// The loss from F (B, C, H, W), per-image log-variance (B) and target (B, C, H, W):
    /// mean over the batch of mean over (C, H, W) of ((F - t)^2 / exp(lv) + lv) / 2.
    /// </summary>
    public static Variable FromOutputs(Variable f, Variable logvar, Variable target)
    {
        int b = f.Shape[0];
        if (!Shapes.Equal(logvar.Shape, [b])) throw new ArgumentException($"DenoiserWithVariance: log-variance shape {Shapes.Format(logvar.Shape)}, expected ({b})");
        var lv = Fn.Reshape(logvar, b, 1, 1, 1);
        var e = Fn.Div(Fn.Square(Fn.Sub(f, target)), Fn.Exp(lv));
        return Fn.Scale(Fn.Mean(Fn.Add(e, lv)), 0.5f);              // per-image means of equal size: the overall mean
    }

    /// <summary>
    /// One batch with sigma and noise drawn as <see cref="Losses.Compute(Precond, Edm.Autograd.Variable, Edm.Autograd.Variable?, Edm.Autograd.Variable?, LossSettings, ulong, ulong)"/> does (EDM's log-normal
    /// sigma from <paramref name="s"/>, Philox (seed, 2 stream) and (seed, 2 stream + 1)).
    /// </summary>
    public static Variable Compute(Precond precond, Variable y, Variable? classLabels, Variable? augmentLabels, LossSettings s, ulong seed, ulong stream)
    {
        int b = y.Shape[0];
        var sigma = Losses.SampleSigma(s with { Kind = LossKind.Karras }, b, seed, 2 * stream);
        var n = Tensor.Empty(y.Device, y.Shape);
        Ops.Normal(n, seed, 2 * stream + 1);
        using (var sig = Tensor.FromArray(y.Device, sigma.Select(v => (float)v).ToArray(), b, 1, 1, 1))
        using (var scaled = Ops.Mul(n, sig)) Ops.CopyInto(scaled, n);
        return Loss(precond, y, new Variable(n), sigma, classLabels, augmentLabels);
    }
}

// Adam over a parameter list (Kingma & Ba 2015, Algorithm 1) and the training helpers NVlabs/edm
// uses around it: non-finite gradient replacement, global gradient norm, EMA of the weights.
// Each is one fused kernel pass per tensor (Edm.Kernels/Optimizers.cs), or one pass in all over a
// packed ParameterSet's flat buffers.
using Edm.Kernels;

namespace Edm.Autograd;

/// <summary>
/// Adam with bias correction and a learning rate given at each step (for ramp-up). The moment
/// buffers are allocated here, once, so that steps run inside a TensorScope do not release them.
/// </summary>
public sealed class Adam : IDisposable
{
    readonly Variable[] _params;
    readonly ParameterSet? _set;
    readonly FlatTensors? _mFlat, _vFlat;
    readonly Tensor[] _m, _v;

    /// <summary>First-moment decay (EDM: 0.9).</summary>
    public float Beta1 { get; }
    /// <summary>Second-moment decay (EDM: 0.999).</summary>
    public float Beta2 { get; }
    /// <summary>Denominator epsilon (EDM: 1e-8).</summary>
    public float Eps { get; }
    /// <summary>Steps taken so far (the t of the bias corrections after the last step).</summary>
    public long StepCount { get; private set; }

    /// <summary>Creates Adam over <paramref name="parameters"/> (leaves that require gradients): one update launch per tensor.</summary>
    public Adam(IEnumerable<Variable> parameters, float beta1 = 0.9f, float beta2 = 0.999f, float eps = 1e-8f)
    {
        _params = parameters.ToArray();
        foreach (var p in _params)
            if (!p.RequiresGrad || !p.IsLeaf)
                throw new ArgumentException($"Adam: {p} is not a trainable leaf (requiresGrad: true, not computed by an op)");
        (Beta1, Beta2, Eps) = Validate(beta1, beta2, eps);
        _m = _params.Select(p => Tensor.Zeros(p.Device, p.Shape)).ToArray();
        _v = _params.Select(p => Tensor.Zeros(p.Device, p.Shape)).ToArray();
    }

    /// <summary>
    /// Creates Adam over a packed <paramref name="set"/>: the moments are flat buffers of its
    /// layout, and a step is one update launch over all parameters (bitwise the same result).
    /// </summary>
    public Adam(ParameterSet set, float beta1 = 0.9f, float beta2 = 0.999f, float eps = 1e-8f)
    {
        _set = set;
        _params = set.Parameters.ToArray();
        (Beta1, Beta2, Eps) = Validate(beta1, beta2, eps);
        _mFlat = set.ZerosLike();
        _vFlat = set.ZerosLike();
        _m = _mFlat.Views.ToArray();
        _v = _vFlat.Views.ToArray();
    }

    static (float, float, float) Validate(float beta1, float beta2, float eps)
    {
        _ = new AdamArgs(1f, beta1, beta2, eps, 1);  // validates the hyperparameters now
        return (beta1, beta2, eps);
    }

    /// <summary>The parameters, in order.</summary>
    public IReadOnlyList<Variable> Parameters => _params;

    /// <summary>First-moment buffers m, one per parameter in order (saved and restored by training states).</summary>
    public IReadOnlyList<Tensor> FirstMoments => _m;

    /// <summary>Second-moment buffers v, one per parameter in order (saved and restored by training states).</summary>
    public IReadOnlyList<Tensor> SecondMoments => _v;

    /// <summary>Sets the step count when resuming from a saved state whose moments were copied into place.</summary>
    public void RestoreStepCount(long steps)
    {
        if (steps < 0) throw new ArgumentException($"Adam: step count {steps} must be >= 0");
        StepCount = steps;
    }

    /// <summary>Takes one step with learning rate <paramref name="lr"/> using each parameter's accumulated gradient.</summary>
    public void Step(float lr)
    {
        StepCount++;
        if (_set is not null)
        {
            Ops.AdamStep(_set.Values, _set.Grads, _mFlat!.Flat, _vFlat!.Flat, lr, Beta1, Beta2, Eps, StepCount);
            return;
        }
        for (int i = 0; i < _params.Length; i++)
            Ops.AdamStep(_params[i].Value, _params[i].Grad, _m[i], _v[i], lr, Beta1, Beta2, Eps, StepCount);
    }

    /// <summary>Zeroes every parameter's gradient.</summary>
    public void ZeroGrad()
    {
        if (_set is not null) _set.ZeroGrad();
        else foreach (var p in _params) p.ZeroGrad();
    }

    /// <inheritdoc/>
    public void Dispose()
    {
        if (_set is not null)
        {
            _mFlat!.Dispose();
            _vFlat!.Dispose();
            return;
        }
        foreach (var t in _m) t.Dispose();
        foreach (var t in _v) t.Dispose();
    }
}

/// <summary>Training helpers over parameter lists.</summary>
public static class Training
{
    /// <summary>Replaces NaN by 0 and +-inf by +-1e5 in every gradient (NVlabs/edm's training loop).</summary>
    public static void NanToNumGrads(IEnumerable<Variable> parameters)
    {
        foreach (var p in parameters) Ops.NanToNumInPlace(p.Grad);
    }

    /// <summary>NanToNumGrads over a packed set: one launch over its flat gradient buffer.</summary>
    public static void NanToNumGrads(ParameterSet set) => Ops.NanToNumInPlace(set.Grads);

    /// <summary>GradNorm over a packed set: one reduction over its flat gradient buffer (the gaps are zero). Synchronises.</summary>
    public static double GradNorm(ParameterSet set) => Ops.GlobalNorm([set.Grads]);

    /// <summary>The global gradient norm sqrt(sum of squares over every gradient). Synchronises.</summary>
    public static double GradNorm(IEnumerable<Variable> parameters) =>
        Ops.GlobalNorm(parameters.Select(p => p.Grad).ToArray());

    /// <summary>ema = beta*ema + (1-beta)*param for each pair (values only; no graph is recorded).</summary>
    public static void EmaUpdate(IReadOnlyList<Variable> ema, IReadOnlyList<Variable> parameters, float beta) =>
        Ops.EmaUpdate(ema.Select(e => e.Value).ToArray(), parameters.Select(p => p.Value).ToArray(), beta);
}

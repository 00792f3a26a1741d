// Differentiable batch norm (PyTorch BatchNorm2d): batch statistics in training (the running
// statistics updated in place as a side effect), running statistics in inference.
using Edm.Kernels;

namespace Edm.Autograd;

public static partial class Fn
{
    /// <summary>
    /// BatchNorm(x) * weight + bias over x (N, C, *spatial); weight and bias (C) or both null.
    /// <paramref name="runningMean"/> / <paramref name="runningVar"/> (C) are buffers, not
    /// parameters: updated in training when given, required in inference.
    /// </summary>
    public static Variable BatchNorm(Variable x, Variable? weight, Variable? bias, Tensor? runningMean, Tensor? runningVar,
        bool training, float momentum = 0.1f, float eps = 1e-5f)
    {
        if ((weight is null) != (bias is null))
            throw new ArgumentException("BatchNorm: weight and bias must be given together");
        Variable[] inputs = weight is null ? [x] : [x, weight, bias!];
        bool record = Tape.Prepare("BatchNorm", inputs);
        var o = Ops.BatchNormForward(x.Value, weight?.Value, bias?.Value, runningMean, runningVar, training, momentum, eps);
        if (!record)
        {
            o.Mean.Dispose();
            o.Rstd.Dispose();
            return new Variable(o.Y);
        }
        return Tape.Record(new BatchNormNode(x.Value, weight?.Value, o.Mean, o.Rstd, training), o.Y, inputs);
    }

    sealed class BatchNormNode(Tensor x, Tensor? w, Tensor mean, Tensor rstd, bool training) : Node
    {
        protected internal override Tensor?[] Backward(Tensor gy)
        {
            var r = Ops.BatchNormBackward(x, gy, mean, rstd, w, training);
            if (w is null) return [NeedsGrad(0) ? r.Dx : Drop(r.Dx)];
            return [NeedsGrad(0) ? r.Dx : Drop(r.Dx), NeedsGrad(1) ? r.DWeight : Drop(r.DWeight), NeedsGrad(2) ? r.DBias : Drop(r.DBias)];
        }

        protected override void DisposeOwned() { mean.Dispose(); rstd.Dispose(); }  // made for backward only
        static Tensor? Drop(Tensor? t) { t?.Dispose(); return null; }
    }
}

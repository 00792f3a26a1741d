// Differentiable EDM Conv2d: optional FIR up/down resampling with an optional odd k x k
// convolution and bias (networks.py Conv2d), over Ops.ResampleConv2d / ResampleConv2dBackward;
// and the general conv2d (any kernel kh x kw, stride, padding per side; PyTorch's F.conv2d).
using Edm.Kernels;

namespace Edm.Autograd;

public static partial class Fn
{
    /// <summary>Plain conv2d, stride 1, same padding: x (B, Cin, H, W), w (Cout, Cin, k, k), b (Cout).</summary>
    public static Variable Conv2d(Variable x, Variable weight, Variable? bias = null) =>
        ResampleConv2d(x, weight, bias, Resample.None, [1, 1], false);

    /// <summary>
    /// Conv2d with any geometry: x (B, Cin, H, W), w (Cout, Cin, kh, kw), b (Cout) or null, stride and
    /// per-side zero padding <paramref name="p"/> -> (B, Cout, Ho, Wo).
    /// </summary>
    public static Variable Conv2d(Variable x, Variable weight, Variable? bias, Conv2dParams p)
    {
        Variable[] inputs = bias is null ? [x, weight] : [x, weight, bias];
        bool record = Tape.Prepare("Conv2d", inputs);
        var y = Ops.Conv2d(x.Value, weight.Value, bias?.Value, p);
        return record ? Tape.Record(new GeneralConvNode(x.Value, weight.Value, bias is not null, p), y, inputs) : new Variable(y);
    }

    sealed class GeneralConvNode(Tensor x, Tensor w, bool hasBias, Conv2dParams p) : Node
    {
        protected internal override Tensor?[] Backward(Tensor gy)
        {
            var g = new Tensor?[hasBias ? 3 : 2];
            if (NeedsGrad(0)) g[0] = Ops.Conv2dBackwardData(gy, w, x.Shape[2], x.Shape[3], p);
            if (NeedsGrad(1)) g[1] = Ops.Conv2dBackwardWeight(x, gy, w.Shape[2], w.Shape[3], p);
            if (hasBias && NeedsGrad(2)) g[2] = Ops.Conv2dBackwardBias(gy);
            return g;
        }
    }

    /// <summary>EDM Conv2d with resampling <paramref name="mode"/> by the separable FIR <paramref name="filter"/>.</summary>
    public static Variable ResampleConv2d(Variable x, Variable? weight, Variable? bias, Resample mode, float[] filter, bool fused)
    {
        if (weight is null && mode == Resample.None)
            return x; // kernel 0 without resampling is the identity (networks.py returns x unchanged)
        var inputs = new List<Variable> { x };
        if (weight is not null) inputs.Add(weight);
        if (bias is not null) inputs.Add(bias);
        bool record = Tape.Prepare("Conv2d", inputs.ToArray());
        Tensor y = mode == Resample.None && weight is not null
            ? Ops.Conv2d(x.Value, weight.Value, bias?.Value)
            : Ops.ResampleConv2d(x.Value, weight?.Value, bias?.Value, mode, filter, fused);
        return record
            ? Tape.Record(new ConvNode(x.Value, weight?.Value, bias is not null, mode, filter, fused), y, inputs.ToArray())
            : new Variable(y);
    }

    sealed class ConvNode(Tensor x, Tensor? w, bool hasBias, Resample mode, float[] filter, bool fused) : Node
    {
        protected internal override Tensor?[] Backward(Tensor gy)
        {
            int n = 1 + (w is null ? 0 : 1) + (hasBias ? 1 : 0);
            var g = new Tensor?[n];
            if (mode == Resample.None && w is not null)
            {
                if (NeedsGrad(0)) g[0] = Ops.Conv2dBackwardData(gy, w);
                if (NeedsGrad(1)) g[1] = Ops.Conv2dBackwardWeight(x, gy, w.Shape[2]);
                if (hasBias && NeedsGrad(2)) g[2] = Ops.Conv2dBackwardBias(gy);
                return g;
            }
            var r = Ops.ResampleConv2dBackward(x, w, hasBias, gy, mode, filter, fused);
            g[0] = NeedsGrad(0) ? r.Dx : Drop(r.Dx);
            if (w is not null) g[1] = NeedsGrad(1) ? r.Dw : Drop(r.Dw);
            if (hasBias) g[2] = NeedsGrad(2) ? r.Db : Drop(r.Db);
            return g;
        }

        static Tensor? Drop(Tensor? t) { t?.Dispose(); return null; }
    }
}

// Differentiable group norm: x (B, C, H, W), groups G, affine weight and bias (C). Forward saves
// mean and reciprocal std per (B, G); backward gives dx, dweight, dbias. GroupNormSilu fuses the
// SiLU that follows every norm of the U-Nets.
using Edm.Kernels;

namespace Edm.Autograd;

public static partial class Fn
{
    /// <summary>GroupNorm(x; G, eps) * weight + bias.</summary>
    public static Variable GroupNorm(Variable x, int groups, Variable weight, Variable bias, float eps = 1e-5f)
    {
        bool record = Tape.Prepare("GroupNorm", x, weight, bias);
        if (!record) return new Variable(Ops.GroupNorm(x.Value, groups, weight.Value, bias.Value, eps));
        var o = Ops.GroupNormForward(x.Value, groups, weight.Value, bias.Value, eps);
        return Tape.Record(new GroupNormNode(x.Value, weight.Value, o.Mean, o.Rstd, groups), o.Y, x, weight, bias);
    }

    /// <summary>
    /// SiLU(GroupNorm(x; G, eps) * weight + bias) as one node: one pass forward on the CPU, and only x
    /// and the statistics saved (the pair saved the normed tensor too). With <paramref name="addend"/>
    /// (N, C) or (N, C, 1, 1): SiLU(GroupNorm(x + addend) * weight + bias), the sum never written on
    /// the CPU (the U-Net blocks' embedding add).
    /// </summary>
    public static Variable GroupNormSilu(Variable x, int groups, Variable weight, Variable bias, float eps = 1e-5f, Variable? addend = null)
    {
        bool record = addend is null ? Tape.Prepare("GroupNormSilu", x, weight, bias) : Tape.Prepare("GroupNormSilu", x, weight, bias, addend);
        var o = Ops.GroupNormSiluForward(x.Value, groups, weight.Value, bias.Value, eps, addend?.Value);
        if (!record)
        {
            o.Mean.Dispose();
            o.Rstd.Dispose();
            return new Variable(o.Y);
        }
        var node = new GroupNormSiluNode(x.Value, weight.Value, bias.Value, addend?.Value, o.Mean, o.Rstd, groups, eps);
        return addend is null ? Tape.Record(node, o.Y, x, weight, bias) : Tape.Record(node, o.Y, x, weight, bias, addend);
    }

    sealed class GroupNormSiluNode(Tensor x, Tensor w, Tensor b, Tensor? addend, Tensor mean, Tensor rstd, int groups, float eps) : Node
    {
        public override string Name => "GroupNormSilu";

        protected internal override Tensor?[] Backward(Tensor gy)
        {
            var r = Ops.GroupNormSiluBackward(x, gy, mean, rstd, groups, w, b, eps, addend);
            var grads = new[] { NeedsGrad(0) ? r.Dx : Drop(r.Dx), NeedsGrad(1) ? r.DWeight : Drop(r.DWeight), NeedsGrad(2) ? r.DBias : Drop(r.DBias) };
            if (addend is null) return grads;
            // The addend's gradient in the addend's own shape ((N, C) or (N, C, 1, 1)).
            Tensor? da = null;
            if (NeedsGrad(3)) da = r.DAddend!.Reshape(addend.Shape);
            r.DAddend!.Dispose();
            return [.. grads, da];
        }

        protected override void DisposeOwned() { mean.Dispose(); rstd.Dispose(); }
    }

    sealed class GroupNormNode(Tensor x, Tensor w, Tensor mean, Tensor rstd, int groups) : Node
    {
        protected internal override Tensor?[] Backward(Tensor gy)
        {
            var r = Ops.GroupNormBackward(x, gy, mean, rstd, groups, w);
            return [NeedsGrad(0) ? r.Dx : Drop(r.Dx), NeedsGrad(1) ? r.DWeight : Drop(r.DWeight), NeedsGrad(2) ? r.DBias : Drop(r.DBias)];
        }

        protected override void DisposeOwned() { mean.Dispose(); rstd.Dispose(); }
    }

    static Tensor? Drop(Tensor t) { t.Dispose(); return null; }
}

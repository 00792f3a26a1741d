// Differentiable elementwise ops with NumPy broadcasting (Edm.Kernels/Elementwise.cs). The
// backward of a broadcast input sums the output gradient over its broadcast axes (Grads.SumTo).
// Pattern: see the header of Tape.cs.
using Edm.Kernels;

namespace Edm.Autograd;

/// <summary>Differentiable ops on <see cref="Variable"/>s (one partial file per family in Edm.Autograd/Ops/).</summary>
public static partial class Fn
{
    /// <summary>a + b (broadcasting).</summary>
    public static Variable Add(Variable a, Variable b)
    {
        bool record = Tape.Prepare("Add", a, b);
        var y = Ops.Add(a.Value, b.Value);
        return record ? Tape.Record(new AddNode(a.Shape, b.Shape), y, a, b) : new Variable(y);
    }

    sealed class AddNode(int[] aShape, int[] bShape) : Node
    {
        protected internal override Tensor?[] Backward(Tensor gy) =>
            [NeedsGrad(0) ? Grads.SumTo(gy, aShape) : null, NeedsGrad(1) ? Grads.SumTo(gy, bShape) : null];
    }

    /// <summary>(a + b) * s (broadcasting) in one pass (Ops.AddScaled): the U-Net blocks' residual add and skip scale.</summary>
    public static Variable AddScaled(Variable a, Variable b, float s)
    {
        bool record = Tape.Prepare("AddScaled", a, b);
        var y = Ops.AddScaled(a.Value, b.Value, s);
        return record ? Tape.Record(new AddScaledNode(a.Shape, b.Shape, s), y, a, b) : new Variable(y);
    }

    sealed class AddScaledNode(int[] aShape, int[] bShape, float s) : Node
    {
        // Both inputs get s * gy (summed to their shape): one scaled tensor, shared when shapes allow.
        protected internal override Tensor?[] Backward(Tensor gy)
        {
            var g = Ops.Scale(gy, s);
            Tensor? ga = NeedsGrad(0) ? Grads.SumTo(g, aShape) : null;
            Tensor? gb = NeedsGrad(1) ? Grads.SumTo(g, bShape) : null;
            if (!ReferenceEquals(ga, g) && !ReferenceEquals(gb, g)) g.Dispose();
            return [ga, gb];
        }
    }

    /// <summary>a - b (broadcasting).</summary>
    public static Variable Sub(Variable a, Variable b)
    {
        bool record = Tape.Prepare("Sub", a, b);
        var y = Ops.Sub(a.Value, b.Value);
        return record ? Tape.Record(new SubNode(a.Shape, b.Shape), y, a, b) : new Variable(y);
    }

    sealed class SubNode(int[] aShape, int[] bShape) : Node
    {
        protected internal override Tensor?[] Backward(Tensor gy) =>
            [NeedsGrad(0) ? Grads.SumTo(gy, aShape) : null, NeedsGrad(1) ? Grads.ReduceTo(Ops.Neg(gy), bShape) : null];
    }

    /// <summary>a * b (broadcasting).</summary>
    public static Variable Mul(Variable a, Variable b)
    {
        bool record = Tape.Prepare("Mul", a, b);
        var y = Ops.Mul(a.Value, b.Value);
        return record ? Tape.Record(new MulNode(a.Value, b.Value), y, a, b) : new Variable(y);
    }

    sealed class MulNode(Tensor a, Tensor b) : Node
    {
        protected internal override Tensor?[] Backward(Tensor gy) =>
        [
            NeedsGrad(0) ? Grads.ReduceTo(Ops.Mul(gy, b), a.Shape) : null,
            NeedsGrad(1) ? Grads.ReduceTo(Ops.Mul(gy, a), b.Shape) : null,
        ];
    }

    /// <summary>a / b (broadcasting).</summary>
    public static Variable Div(Variable a, Variable b)
    {
        bool record = Tape.Prepare("Div", a, b);
        var y = Ops.Div(a.Value, b.Value);
        return record ? Tape.Record(new DivNode(a.Shape, b.Value, y), y, a, b) : new Variable(y);
    }

    // d(a/b)/da = 1/b, d(a/b)/db = -y/b: with t = gy/b, ga = t and gb = -t*y.
    sealed class DivNode(int[] aShape, Tensor b, Tensor y) : Node
    {
        protected internal override Tensor?[] Backward(Tensor gy)
        {
            var t = Ops.Div(gy, b);  // output shape
            Tensor? gb = NeedsGrad(1) ? Grads.ReduceTo(Ops.Zip(t, y, new NegMulOp(), "DivBackward"), b.Shape) : null;
            Tensor? ga = NeedsGrad(0) ? Grads.ReduceTo(t, aShape) : null;
            if (ga is null) t.Dispose();
            return [ga, gb];
        }
    }

    /// <summary>s * x.</summary>
    public static Variable Scale(Variable x, float s)
    {
        bool record = Tape.Prepare("Scale", x);
        var y = Ops.Scale(x.Value, s);
        return record ? Tape.Record(new ScaleNode(s), y, x) : new Variable(y);
    }

    sealed class ScaleNode(float s) : Node
    {
        protected internal override Tensor?[] Backward(Tensor gy) => [Ops.Scale(gy, s)];
    }

    /// <summary>x + c.</summary>
    public static Variable AddScalar(Variable x, float c)
    {
        bool record = Tape.Prepare("AddScalar", x);
        var y = Ops.AddScalar(x.Value, c);
        return record ? Tape.Record(new AddScalarNode(), y, x) : new Variable(y);
    }

    sealed class AddScalarNode : Node
    {
        protected internal override Tensor?[] Backward(Tensor gy) => [gy];
    }

    /// <summary>-x.</summary>
    public static Variable Neg(Variable x)
    {
        bool record = Tape.Prepare("Neg", x);
        var y = Ops.Neg(x.Value);
        return record ? Tape.Record(new NegNode(), y, x) : new Variable(y);
    }

    sealed class NegNode : Node
    {
        protected internal override Tensor?[] Backward(Tensor gy) => [Ops.Neg(gy)];
    }
}

// Differentiable unary functions and activations (Edm.Kernels/Elementwise.cs, Activations.cs).
// Each node saves the input or the output, whichever its derivative is cheaper in.
using Edm.Kernels;

namespace Edm.Autograd;

public static partial class Fn
{
    /// <summary>exp(x).</summary>
    public static Variable Exp(Variable x)
    {
        bool record = Tape.Prepare("Exp", x);
        var y = Ops.Exp(x.Value);
        return record ? Tape.Record(new ExpNode(y), y, x) : new Variable(y);
    }

    // d exp(x) = exp(x): saves the output.
    sealed class ExpNode(Tensor y) : Node
    {
        protected internal override Tensor?[] Backward(Tensor gy) => [Ops.Mul(gy, y)];
    }

    /// <summary>log(x) (natural).</summary>
    public static Variable Log(Variable x)
    {
        bool record = Tape.Prepare("Log", x);
        var y = Ops.Log(x.Value);
        return record ? Tape.Record(new LogNode(x.Value), y, x) : new Variable(y);
    }

    sealed class LogNode(Tensor x) : Node
    {
        protected internal override Tensor?[] Backward(Tensor gy) => [Ops.Div(gy, x)];
    }

    /// <summary>sqrt(x).</summary>
    public static Variable Sqrt(Variable x)
    {
        bool record = Tape.Prepare("Sqrt", x);
        var y = Ops.Sqrt(x.Value);
        return record ? Tape.Record(new SqrtNode(y), y, x) : new Variable(y);
    }

    // d sqrt(x) = 1 / (2 sqrt(x)): saves the output.
    sealed class SqrtNode(Tensor y) : Node
    {
        protected internal override Tensor?[] Backward(Tensor gy) => [Ops.Zip(gy, y, new HalfDivOp(), "SqrtBackward")];
    }

    /// <summary>x^2.</summary>
    public static Variable Square(Variable x)
    {
        bool record = Tape.Prepare("Square", x);
        var y = Ops.Square(x.Value);
        return record ? Tape.Record(new SquareNode(x.Value), y, x) : new Variable(y);
    }

    sealed class SquareNode(Tensor x) : Node
    {
        protected internal override Tensor?[] Backward(Tensor gy) => [Ops.Zip(gy, x, new TwiceMulOp(), "SquareBackward")];
    }

    /// <summary>GELU with the exact erf form, x Phi(x).</summary>
    public static Variable Gelu(Variable x)
    {
        bool record = Tape.Prepare("Gelu", x);
        var y = Ops.Gelu(x.Value);
        return record ? Tape.Record(new GeluNode(x.Value), y, x) : new Variable(y);
    }

    sealed class GeluNode(Tensor x) : Node
    {
        protected internal override Tensor?[] Backward(Tensor gy) => [Ops.GeluBackward(x, gy)];
    }

    /// <summary>GELU, tanh approximation.</summary>
    public static Variable GeluTanh(Variable x)
    {
        bool record = Tape.Prepare("GeluTanh", x);
        var y = Ops.GeluTanh(x.Value);
        return record ? Tape.Record(new GeluTanhNode(x.Value), y, x) : new Variable(y);
    }

    sealed class GeluTanhNode(Tensor x) : Node
    {
        protected internal override Tensor?[] Backward(Tensor gy) => [Ops.GeluTanhBackward(x, gy)];
    }

    /// <summary>SiLU, x sigmoid(x).</summary>
    public static Variable Silu(Variable x)
    {
        bool record = Tape.Prepare("Silu", x);
        var y = Ops.Silu(x.Value);
        return record ? Tape.Record(new SiluNode(x.Value), y, x) : new Variable(y);
    }

    sealed class SiluNode(Tensor x) : Node
    {
        protected internal override Tensor?[] Backward(Tensor gy) => [Ops.SiluBackward(x, gy)];
    }
}

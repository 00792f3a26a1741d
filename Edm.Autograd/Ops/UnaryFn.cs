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
    public static Variable Gelu(Variable x) => Activation<GeluOp, GeluGradOp>(x, "Gelu");

    /// <summary>GELU, tanh approximation.</summary>
    public static Variable GeluTanh(Variable x) => Activation<GeluTanhOp, GeluTanhGradOp>(x, "GeluTanh");

    /// <summary>ReLU, max(x, 0); the gradient at 0 is 0 (as PyTorch).</summary>
    public static Variable Relu(Variable x) => Activation<ReluOp, ReluGradOp>(x, "Relu");

    /// <summary>SiLU, x sigmoid(x).</summary>
    public static Variable Silu(Variable x) => Activation<SiluOp, SiluGradOp>(x, "Silu");

    // y = f(x) with f' applied by the kernels' (x, gy) -> gy f'(x) operator; saves x.
    static Variable Activation<TFwd, TGrad>(Variable x, string name)
        where TFwd : struct, IUnaryOp where TGrad : struct, IBinaryOp
    {
        bool record = Tape.Prepare(name, x);
        var y = Ops.Map(x.Value, new TFwd(), name);
        return record ? Tape.Record(new ActivationNode<TGrad>(x.Value, name), y, x) : new Variable(y);
    }

    sealed class ActivationNode<TGrad>(Tensor x, string name) : Node where TGrad : struct, IBinaryOp
    {
        public override string Name => name;
        protected internal override Tensor?[] Backward(Tensor gy) => [Ops.Zip(x, gy, new TGrad(), name + "Backward")];
    }
}

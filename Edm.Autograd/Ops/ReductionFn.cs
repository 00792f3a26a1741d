// Differentiable reductions (Edm.Kernels/Reductions.cs). Backward broadcasts the reduced
// gradient, viewed with kept (size-1) dimensions, back over the reduced axes.
using Edm.Kernels;

namespace Edm.Autograd;

public static partial class Fn
{
    /// <summary>Sum over <paramref name="axes"/> (all when null or empty).</summary>
    public static Variable Sum(Variable x, int[]? axes = null, bool keepDims = false)
    {
        bool record = Tape.Prepare("Sum", x);
        var (keep, _) = Grads.KeepDims("Sum", x.Shape, axes);
        var y = Ops.Sum(x.Value, axes, keepDims);
        return record ? Tape.Record(new SumNode(x.Value, keep, 1f), y, x) : new Variable(y);
    }

    /// <summary>Mean over <paramref name="axes"/> (all when null or empty).</summary>
    public static Variable Mean(Variable x, int[]? axes = null, bool keepDims = false)
    {
        bool record = Tape.Prepare("Mean", x);
        var (keep, count) = Grads.KeepDims("Mean", x.Shape, axes);
        var y = Ops.Mean(x.Value, axes, keepDims);
        return record ? Tape.Record(new SumNode(x.Value, keep, 1f / count), y, x) : new Variable(y);
    }

    // Sum and mean: gx = scale * broadcast(gy). x is kept only for its shape in the launch.
    sealed class SumNode(Tensor x, int[] keep, float scale) : Node
    {
        public override string Name => scale == 1f ? "Sum" : "Mean";

        protected internal override Tensor?[] Backward(Tensor gy)
        {
            using var g = gy.Reshape(keep);
            return [Grads.BroadcastTo(g, x, scale)];
        }
    }

    /// <summary>Sum of squares over <paramref name="axes"/> (all when null or empty).</summary>
    public static Variable SumSquares(Variable x, int[]? axes = null, bool keepDims = false)
    {
        bool record = Tape.Prepare("SumSquares", x);
        var (keep, _) = Grads.KeepDims("SumSquares", x.Shape, axes);
        var y = Ops.SumSquares(x.Value, axes, keepDims);
        return record ? Tape.Record(new SumSquaresNode(x.Value, keep), y, x) : new Variable(y);
    }

    sealed class SumSquaresNode(Tensor x, int[] keep) : Node
    {
        protected internal override Tensor?[] Backward(Tensor gy)
        {
            using var g = gy.Reshape(keep);
            return [Ops.Zip(x, g, new TwiceMulOp(), "SumSquaresBackward")];
        }
    }

    /// <summary>
    /// Max over <paramref name="axes"/> (all when null or empty). The gradient goes to the
    /// maximal elements, split evenly between ties.
    /// </summary>
    public static Variable Max(Variable x, int[]? axes = null, bool keepDims = false)
    {
        bool record = Tape.Prepare("Max", x);
        var (keep, _) = Grads.KeepDims("Max", x.Shape, axes);
        var y = Ops.Max(x.Value, axes, keepDims);
        return record ? Tape.Record(new MaxNode(x.Value, y, keep), y, x) : new Variable(y);
    }

    sealed class MaxNode(Tensor x, Tensor y, int[] keep) : Node
    {
        protected internal override Tensor?[] Backward(Tensor gy)
        {
            using var yKeep = y.Reshape(keep);
            using var mask = Ops.Zip(x, yKeep, new EqualMaskOp(), "MaxBackward");  // x's shape
            var axes = Enumerable.Range(0, keep.Length).Where(i => keep[i] == 1).ToArray();
            using var ties = Ops.Sum(mask, axes, keepDims: true);                     // keep shape
            using var g = gy.Reshape(keep);
            using var share = Ops.Div(g, ties);
            return [Ops.Mul(mask, share)];
        }
    }
}

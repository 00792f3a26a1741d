// Differentiable layout ops: reshape (a view), concat and slice (Edm.Kernels/Layout.cs).
using Edm.Kernels;

namespace Edm.Autograd;

public static partial class Fn
{
    /// <summary>The same elements with another shape (a view, no copy); one dimension may be -1.</summary>
    public static Variable Reshape(Variable x, params int[] shape)
    {
        bool record = Tape.Prepare("Reshape", x);
        var y = x.Value.Reshape(shape);
        return record ? Tape.Record(new ReshapeNode(x.Shape), y, x) : new Variable(y);
    }

    sealed class ReshapeNode(int[] xShape) : Node
    {
        protected internal override Tensor?[] Backward(Tensor gy) => [gy.Reshape(xShape)];
    }

    /// <summary>Concatenation along <paramref name="axis"/>.</summary>
    public static Variable Concat(int axis, params Variable[] xs)
    {
        bool record = Tape.Prepare("Concat", xs);
        var y = Ops.Concat(axis, xs.Select(x => x.Value).ToArray());
        int ax = Shapes.Axis("Concat", axis, y.Rank);
        return record ? Tape.Record(new ConcatNode(ax, xs.Select(x => x.Shape[ax]).ToArray()), y, xs) : new Variable(y);
    }

    // Each input's gradient is its slice of gy.
    sealed class ConcatNode(int axis, int[] lengths) : Node
    {
        protected internal override Tensor?[] Backward(Tensor gy)
        {
            var grads = new Tensor?[lengths.Length];
            int at = 0;
            for (int i = 0; i < lengths.Length; i++)
            {
                if (NeedsGrad(i)) grads[i] = Ops.Slice(gy, axis, at, lengths[i]);
                at += lengths[i];
            }
            return grads;
        }
    }

    /// <summary>x[..., start:start+length, ...] along <paramref name="axis"/>.</summary>
    public static Variable Slice(Variable x, int axis, int start, int length)
    {
        bool record = Tape.Prepare("Slice", x);
        var y = Ops.Slice(x.Value, axis, start, length);
        return record ? Tape.Record(new SliceNode(x.Shape, Shapes.Axis("Slice", axis, x.Shape.Length), start), y, x) : new Variable(y);
    }

    // Gradient: zeros with gy written into the sliced range.
    sealed class SliceNode(int[] xShape, int axis, int start) : Node
    {
        protected internal override Tensor?[] Backward(Tensor gy)
        {
            var gx = Tensor.Zeros(gy.Device, xShape);
            Ops.CopyToSlice(gy, gx, axis, start);
            return [gx];
        }
    }
}

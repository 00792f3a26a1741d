// Helpers for backward passes: undoing broadcasting (sum over the broadcast axes) and broadcasting
// a reduced gradient back over the reduced axes, plus the few fused binary operators the
// backwards of this folder use (one pass instead of two).
using Edm.Kernels;

namespace Edm.Autograd;

#pragma warning disable CS1591 // operator structs: the name says it all
/// <summary>b (the second argument, broadcast to the output shape).</summary>
public readonly struct RightOp : IBinaryOp { public float Apply(float a, float b) => b; }
/// <summary>s*b.</summary>
public readonly struct RightScaledOp(float s) : IBinaryOp { readonly float _s = s; public float Apply(float a, float b) => _s * b; }
/// <summary>2ab (square and sum-of-squares backward).</summary>
public readonly struct TwiceMulOp : IBinaryOp { public float Apply(float a, float b) => 2f * a * b; }
/// <summary>a / (2b) (sqrt backward, b = sqrt(x)).</summary>
public readonly struct HalfDivOp : IBinaryOp { public float Apply(float a, float b) => 0.5f * a / b; }
/// <summary>-ab (division backward for the divisor).</summary>
public readonly struct NegMulOp : IBinaryOp { public float Apply(float a, float b) => -a * b; }
/// <summary>a == b ? 1 : 0 (max backward mask).</summary>
public readonly struct EqualMaskOp : IBinaryOp { public float Apply(float a, float b) => a == b ? 1f : 0f; }
#pragma warning restore CS1591

/// <summary>Shape helpers for backward passes.</summary>
public static class Grads
{
    /// <summary>
    /// The gradient of a broadcast input: <paramref name="g"/> summed over the axes that
    /// broadcasting added or stretched. Borrows <paramref name="g"/>: returns it unchanged when
    /// the shapes are equal (the engine accepts that), else a new tensor.
    /// </summary>
    public static Tensor SumTo(Tensor g, int[] shape) => Shapes.Equal(g.Shape, shape) ? g : Ops.SumTo(g, shape);

    /// <summary>Like <see cref="SumTo"/> but consumes <paramref name="owned"/> (disposed when reduced).</summary>
    public static Tensor ReduceTo(Tensor owned, int[] shape)
    {
        if (Shapes.Equal(owned.Shape, shape)) return owned;
        using (owned) return Ops.SumTo(owned, shape);
    }

    /// <summary>
    /// The shape of <paramref name="shape"/> reduced over <paramref name="axes"/> with kept
    /// (size-1) dimensions; null or empty axes mean all. Also returns the reduced element count.
    /// </summary>
    public static (int[] KeepShape, int Count) KeepDims(string op, int[] shape, int[]? axes)
    {
        var keep = (int[])shape.Clone();
        int count = 1;
        if (axes is null || axes.Length == 0)
        {
            for (int i = 0; i < keep.Length; i++) { count *= keep[i]; keep[i] = 1; }
            return (keep, count);
        }
        foreach (int a in axes)
        {
            int ax = Shapes.Axis(op, a, shape.Length);
            if (keep[ax] == 1 && shape[ax] != 1) throw new ArgumentException($"{op}: axis {a} is listed twice in [{string.Join(", ", axes)}]");
            count *= keep[ax];
            keep[ax] = 1;
        }
        return (keep, count);
    }

    /// <summary>s * g broadcast to the shape of <paramref name="like"/> (read only to shape the launch).</summary>
    public static Tensor BroadcastTo(Tensor g, Tensor like, float s = 1f) =>
        s == 1f ? Ops.Zip(like, g, new RightOp(), "BroadcastTo") : Ops.Zip(like, g, new RightScaledOp(s), "BroadcastTo");
}

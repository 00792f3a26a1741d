// Elementwise ops: y = f(x), y = f(a, b) with NumPy broadcasting, where(c, a, b), axpy, fill.
// Layout: contiguous row-major tensors; a broadcast input is read through a StridedIndex with
// stride 0 along its broadcast dimensions. Operators are readonly structs passed as generic
// parameters (zero cost in both ILGPU kernels and the C# fast path).
// Variants:
//   v1 grid-stride kernel, one element per iteration (GPU: many threads; CPU accelerator: few)
//   v2 same-shape binary kernel that skips index decomposition
//   v3 CPU fast path: plain C# over the CPU accelerator's buffers, TensorPrimitives where it has
//      the op, Parallel.For over a few chunks
using System.Numerics;
using System.Numerics.Tensors;
using System.Runtime.InteropServices;
using System.Runtime.CompilerServices;
using ILGPU;
using ILGPU.Runtime;

namespace Edm.Kernels;

/// <summary>A scalar function applied elementwise.</summary>
public interface IUnaryOp
{
    /// <summary>f(x).</summary>
    float Apply(float x);
}
/// <summary>A scalar function of two arguments applied elementwise.</summary>
public interface IBinaryOp
{
    /// <summary>f(a, b).</summary>
    float Apply(float a, float b);
}
/// <summary>
/// Optional SIMD form of a unary operator for the CPU fast path (System.Numerics.Vector); must
/// compute the same function as the scalar Apply within float rounding.
/// </summary>
public interface IVectorUnaryOp
{
    /// <summary>f(x) lane by lane.</summary>
    Vector<float> Apply(Vector<float> x);
}
/// <summary>Optional SIMD form of a binary operator for the CPU fast path.</summary>
public interface IVectorBinaryOp
{
    /// <summary>f(a, b) lane by lane.</summary>
    Vector<float> Apply(Vector<float> a, Vector<float> b);
}

#pragma warning disable CS1591 // operator structs: the name says it all
public readonly struct ExpOp : IUnaryOp { public float Apply(float x) => MathF.Exp(x); }
public readonly struct LogOp : IUnaryOp { public float Apply(float x) => MathF.Log(x); }
public readonly struct SqrtOp : IUnaryOp { public float Apply(float x) => MathF.Sqrt(x); }
public readonly struct SquareOp : IUnaryOp { public float Apply(float x) => x * x; }
public readonly struct AbsOp : IUnaryOp { public float Apply(float x) => MathF.Abs(x); }
public readonly struct NegOp : IUnaryOp { public float Apply(float x) => -x; }
public readonly struct ScaleOp(float a) : IUnaryOp { readonly float _a = a; public float Apply(float x) => _a * x; }
public readonly struct AddScalarOp(float c) : IUnaryOp { readonly float _c = c; public float Apply(float x) => x + _c; }
public readonly struct ClampOp(float lo, float hi) : IUnaryOp
{
    readonly float _lo = lo, _hi = hi;
    public float Apply(float x) => x < _lo ? _lo : (x > _hi ? _hi : x);
}
public readonly struct AddOp : IBinaryOp { public float Apply(float a, float b) => a + b; }
public readonly struct SubOp : IBinaryOp { public float Apply(float a, float b) => a - b; }
public readonly struct MulOp : IBinaryOp { public float Apply(float a, float b) => a * b; }
public readonly struct DivOp : IBinaryOp { public float Apply(float a, float b) => a / b; }
public readonly struct AddScaledOp(float s) : IBinaryOp { public readonly float S = s; public float Apply(float a, float b) => (a + b) * S; }
#pragma warning restore CS1591

/// <summary>Elementwise kernels (grid-stride loops).</summary>
public sealed class ElementwiseKernels : IKernelFamily<ElementwiseKernels>
{
    internal readonly Action<AcceleratorStream, Index1D, ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>, int, int, StridedIndex, StridedIndex, StridedIndex> Where;
    internal readonly Action<AcceleratorStream, Index1D, ArrayView<float>, ArrayView<float>, int, int, float> Axpy;
    internal readonly Action<AcceleratorStream, Index1D, ArrayView<float>, int, int, float> Fill;

    ElementwiseKernels(Accelerator acc)
    {
        Where = acc.LoadAutoGroupedKernel<Index1D, ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>, int, int, StridedIndex, StridedIndex, StridedIndex>(ElementwiseKernels.WhereKernel);
        Axpy = acc.LoadAutoGroupedKernel<Index1D, ArrayView<float>, ArrayView<float>, int, int, float>(ElementwiseKernels.AxpyKernel);
        Fill = acc.LoadAutoGroupedKernel<Index1D, ArrayView<float>, int, int, float>(ElementwiseKernels.FillKernel);
    }

    /// <inheritdoc/>
    public static ElementwiseKernels Load(EdmDevice device) => new(device.Accelerator);

    /// <summary>y[i] = op(x[i]).</summary>
    public static void UnaryKernel<TOp>(Index1D tid, ArrayView<float> x, ArrayView<float> y, int n, int stride, TOp op)
        where TOp : struct, IUnaryOp
    {
        for (int i = tid; i < n; i += stride) y[i] = op.Apply(x[i]);
    }

    /// <summary>y[i] = op(a[i], b[i]) for equal shapes.</summary>
    public static void BinarySameKernel<TOp>(Index1D tid, ArrayView<float> a, ArrayView<float> b, ArrayView<float> y, int n, int stride, TOp op)
        where TOp : struct, IBinaryOp
    {
        for (int i = tid; i < n; i += stride) y[i] = op.Apply(a[i], b[i]);
    }

    /// <summary>y[i] = op(a[ia(i)], b[ib(i)]) with broadcasting.</summary>
    public static void BinaryBroadcastKernel<TOp>(Index1D tid, ArrayView<float> a, ArrayView<float> b, ArrayView<float> y, int n, int stride,
        StridedIndex ia, StridedIndex ib, TOp op)
        where TOp : struct, IBinaryOp
    {
        for (int i = tid; i < n; i += stride) y[i] = op.Apply(a[ia.Offset(i)], b[ib.Offset(i)]);
    }

    /// <summary>y[i] = c[ic(i)] != 0 ? a[ia(i)] : b[ib(i)].</summary>
    public static void WhereKernel(Index1D tid, ArrayView<float> c, ArrayView<float> a, ArrayView<float> b, ArrayView<float> y, int n, int stride,
        StridedIndex ic, StridedIndex ia, StridedIndex ib)
    {
        for (int i = tid; i < n; i += stride) y[i] = c[ic.Offset(i)] != 0f ? a[ia.Offset(i)] : b[ib.Offset(i)];
    }

    /// <summary>y[i] += alpha * x[i].</summary>
    public static void AxpyKernel(Index1D tid, ArrayView<float> x, ArrayView<float> y, int n, int stride, float alpha)
    {
        for (int i = tid; i < n; i += stride) y[i] += alpha * x[i];
    }

    /// <summary>y[i] = value.</summary>
    public static void FillKernel(Index1D tid, ArrayView<float> y, int n, int stride, float value)
    {
        for (int i = tid; i < n; i += stride) y[i] = value;
    }
}


/// <summary>Launchers for elementwise work. Inputs are never disposed; results are new tensors.</summary>
public static partial class Ops
{
    // Generic kernels are cached per operator type: one load per (device, TOp).
    sealed class UnaryKey<TOp> { public static readonly UnaryKey<TOp> Instance = new(); }
    sealed class BinarySameKey<TOp> { public static readonly BinarySameKey<TOp> Instance = new(); }
    sealed class BinaryBroadcastKey<TOp> { public static readonly BinaryBroadcastKey<TOp> Instance = new(); }

    internal static void RequireSameDevice(string op, Tensor a, Tensor b)
    {
        if (!ReferenceEquals(a.Device, b.Device))
            throw new ArgumentException($"{op}: tensors live on different devices ({a.Device.Spec} and {b.Device.Spec}); move one first");
    }

    /// <summary>y = op(x) elementwise into <paramref name="y"/> (same length; may alias x).</summary>
    public static void Map<TOp>(Tensor x, Tensor y, TOp op, string name = "Map") where TOp : struct, IUnaryOp
    {
        RequireSameDevice(name, x, y);
        if (x.Length != y.Length) throw new ArgumentException($"{name}: output has shape {y.ShapeString}, expected {x.ShapeString}");
        var dev = x.Device;
        int n = x.Length;
        if (dev.UseCpuFastPath)
        {
            CpuParallel.For(n, (s, c) => UnaryCpu(x.CpuSpan().Slice(s, c), y.CpuSpan().Slice(s, c), op));
            return;
        }
        var k = dev.Kernel(UnaryKey<TOp>.Instance, acc =>
            acc.LoadAutoGroupedKernel<Index1D, ArrayView<float>, ArrayView<float>, int, int, TOp>(ElementwiseKernels.UnaryKernel<TOp>));
        int t = dev.LaunchThreads(n);
        k(dev.Accelerator.DefaultStream, t, x.View, y.View, n, t, op);
    }

    /// <summary>Returns op(x) elementwise.</summary>
    public static Tensor Map<TOp>(Tensor x, TOp op, string name = "Map") where TOp : struct, IUnaryOp
    {
        var y = Tensor.Empty(x.Device, x.Shape);
        Map(x, y, op, name);
        return y;
    }

    /// <summary>Returns op(a, b) elementwise with NumPy broadcasting.</summary>
    public static Tensor Zip<TOp>(Tensor a, Tensor b, TOp op, string name = "Zip") where TOp : struct, IBinaryOp
    {
        RequireSameDevice(name, a, b);
        var shape = a.SameShape(b) ? a.Shape : Shapes.Broadcast(name, a.Shape, b.Shape);
        var y = Tensor.Empty(a.Device, shape);
        ZipInto(a, b, y, op, name);
        return y;
    }

    /// <summary>y = op(a, b) with broadcasting into an existing output of the broadcast shape (may alias a or b when shapes are equal).</summary>
    public static void ZipInto<TOp>(Tensor a, Tensor b, Tensor y, TOp op, string name = "Zip") where TOp : struct, IBinaryOp
    {
        RequireSameDevice(name, a, b);
        RequireSameDevice(name, a, y);
        var dev = a.Device;
        int n = y.Length;
        if (a.SameShape(b) && a.SameShape(y))
        {
            if (dev.UseCpuFastPath)
            {
                CpuParallel.For(n, (s, c) => BinaryCpu(a.CpuSpan().Slice(s, c), b.CpuSpan().Slice(s, c), y.CpuSpan().Slice(s, c), op));
                return;
            }
            var k = dev.Kernel(BinarySameKey<TOp>.Instance, acc =>
                acc.LoadAutoGroupedKernel<Index1D, ArrayView<float>, ArrayView<float>, ArrayView<float>, int, int, TOp>(ElementwiseKernels.BinarySameKernel<TOp>));
            int t = dev.LaunchThreads(n);
            k(dev.Accelerator.DefaultStream, t, a.View, b.View, y.View, n, t, op);
            return;
        }
        var shape = Shapes.Broadcast(name, a.Shape, b.Shape);
        Shapes.RequireEqual(name, "output", shape, y.Shape);
        var ia = StridedIndex.Broadcast(name, shape, a.Shape);
        var ib = StridedIndex.Broadcast(name, shape, b.Shape);
        if (dev.UseCpuFastPath)
        {
            BroadcastCpu(a, b, y, shape, ia, ib, op);
            return;
        }
        var kb = dev.Kernel(BinaryBroadcastKey<TOp>.Instance, acc =>
            acc.LoadAutoGroupedKernel<Index1D, ArrayView<float>, ArrayView<float>, ArrayView<float>, int, int, StridedIndex, StridedIndex, TOp>(ElementwiseKernels.BinaryBroadcastKernel<TOp>));
        int tb = dev.LaunchThreads(n);
        kb(dev.Accelerator.DefaultStream, tb, a.View, b.View, y.View, n, tb, ia, ib, op);
    }

    // Broadcast binary op in plain C#, by runs: the output's trailing dimensions over which each
    // operand is either whole (its own contiguous run) or entirely broadcast (one value) form a run
    // of length L; each run is one same-shape or span-scalar op (TensorPrimitives for + - * /), and
    // the operands' offsets are computed once per run instead of once per element. Covers bias
    // (1, C, 1, 1), per-sample (B, 1, 1, 1) and embedding (B, C, 1, 1) adds with long runs.
    static void BroadcastCpu<TOp>(Tensor a, Tensor b, Tensor y, int[] shape, StridedIndex ia, StridedIndex ib, TOp op) where TOp : struct, IBinaryOp
    {
        int rank = shape.Length, k = rank;
        bool aWhole = true, aOne = true, bWhole = true, bOne = true;       // over dims k..rank-1
        int pa = rank - a.Shape.Length, pb = rank - b.Shape.Length;
        while (k > 0)
        {
            int d = k - 1, da = d - pa >= 0 ? a.Shape[d - pa] : 1, db = d - pb >= 0 ? b.Shape[d - pb] : 1;
            bool aw = aWhole && da == shape[d], ao = aOne && da == 1, bw = bWhole && db == shape[d], bo = bOne && db == 1;
            if (!(aw || ao) || !(bw || bo)) break;
            (aWhole, aOne, bWhole, bOne) = (aw, ao, bw, bo);
            k--;
        }
        int run = 1;
        for (int d = k; d < rank; d++) run *= shape[d];
        int n = y.Length;
        if (run < 8)
        {
            CpuParallel.For(n, (s, c) =>
            {
                var av = a.CpuSpan(); var bv = b.CpuSpan(); var yv = y.CpuSpan();
                for (int i = s; i < s + c; i++) yv[i] = op.Apply(av[ia.Offset(i)], bv[ib.Offset(i)]);
            });
            return;
        }
        bool aScalar = !aWhole, bScalar = !bWhole;                          // a dimension of size 1 in both: whole wins
        CpuParallel.For(n / run, (s, c) =>
        {
            var av = a.CpuSpan(); var bv = b.CpuSpan(); var yv = y.CpuSpan();
            for (int r = s; r < s + c; r++)
            {
                int o = r * run, oa = ia.Offset(o), ob = ib.Offset(o);
                var ys = yv.Slice(o, run);
                if (!aScalar && !bScalar) BinaryCpu(av.Slice(oa, run), bv.Slice(ob, run), ys, op);
                else if (!aScalar) BinaryScalarCpu(av.Slice(oa, run), bv[ob], ys, op, scalarFirst: false);
                else if (!bScalar) BinaryScalarCpu(bv.Slice(ob, run), av[oa], ys, op, scalarFirst: true);
                else ys.Fill(op.Apply(av[oa], bv[ob]));
            }
        });
    }

    // y = op(x, c) (or op(c, x) with scalarFirst): TensorPrimitives for the four arithmetic ops.
    static void BinaryScalarCpu<TOp>(ReadOnlySpan<float> x, float c, Span<float> y, TOp op, bool scalarFirst) where TOp : struct, IBinaryOp
    {
        if (typeof(TOp) == typeof(AddOp)) TensorPrimitives.Add(x, c, y);
        else if (typeof(TOp) == typeof(MulOp)) TensorPrimitives.Multiply(x, c, y);
        else if (typeof(TOp) == typeof(SubOp) && !scalarFirst) TensorPrimitives.Subtract(x, c, y);
        else if (typeof(TOp) == typeof(SubOp)) TensorPrimitives.Subtract(c, x, y);
        else if (typeof(TOp) == typeof(DivOp) && !scalarFirst) TensorPrimitives.Divide(x, c, y);
        else if (typeof(TOp) == typeof(DivOp)) TensorPrimitives.Divide(c, x, y);
        else if (scalarFirst) for (int i = 0; i < x.Length; i++) y[i] = op.Apply(c, x[i]);
        else for (int i = 0; i < x.Length; i++) y[i] = op.Apply(x[i], c);
    }

    // Unary op in plain C#: the operator's SIMD form when it has one (v3), else a scalar loop.
    static void UnaryCpu<TOp>(ReadOnlySpan<float> x, Span<float> y, TOp op) where TOp : struct, IUnaryOp
    {
        int i = 0;
        if (op is IVectorUnaryOp vop && Vector.IsHardwareAccelerated)
        {
            var xv = MemoryMarshal.Cast<float, Vector<float>>(x);
            var yv = MemoryMarshal.Cast<float, Vector<float>>(y);
            for (int k = 0; k < xv.Length; k++) yv[k] = vop.Apply(xv[k]);
            i = xv.Length * Vector<float>.Count;
        }
        for (; i < x.Length; i++) y[i] = op.Apply(x[i]);
    }

    // Same-shape binary op in plain C#; TensorPrimitives for the four arithmetic ops, the SIMD form
    // of other operators when they have one.
    static void BinaryCpu<TOp>(ReadOnlySpan<float> a, ReadOnlySpan<float> b, Span<float> y, TOp op) where TOp : struct, IBinaryOp
    {
        if (typeof(TOp) == typeof(AddOp)) TensorPrimitives.Add(a, b, y);
        else if (typeof(TOp) == typeof(SubOp)) TensorPrimitives.Subtract(a, b, y);
        else if (typeof(TOp) == typeof(MulOp)) TensorPrimitives.Multiply(a, b, y);
        else if (typeof(TOp) == typeof(DivOp)) TensorPrimitives.Divide(a, b, y);
        else if (typeof(TOp) == typeof(AddScaledOp)) TensorPrimitives.AddMultiply(a, b, Unsafe.As<TOp, AddScaledOp>(ref op).S, y);
        else
        {
            int i = 0;
            if (op is IVectorBinaryOp vop && Vector.IsHardwareAccelerated)
            {
                var av = MemoryMarshal.Cast<float, Vector<float>>(a);
                var bv = MemoryMarshal.Cast<float, Vector<float>>(b);
                var yv = MemoryMarshal.Cast<float, Vector<float>>(y);
                for (int k = 0; k < yv.Length; k++) yv[k] = vop.Apply(av[k], bv[k]);
                i = yv.Length * Vector<float>.Count;
            }
            for (; i < y.Length; i++) y[i] = op.Apply(a[i], b[i]);
        }
    }

    /// <summary>a + b (broadcasting).</summary>
    public static Tensor Add(Tensor a, Tensor b) => Zip(a, b, new AddOp(), "Add");
    /// <summary>a - b (broadcasting).</summary>
    public static Tensor Sub(Tensor a, Tensor b) => Zip(a, b, new SubOp(), "Sub");
    /// <summary>
    /// (a + b) * s (broadcasting) in one pass: the residual "add the skip, then scale" of the U-Net
    /// blocks; rounds as Scale(Add(a, b), s) does (the sum is rounded, then the product).
    /// </summary>
    public static Tensor AddScaled(Tensor a, Tensor b, float s) => Zip(a, b, new AddScaledOp(s), "AddScaled");
    /// <summary>a * b (broadcasting).</summary>
    public static Tensor Mul(Tensor a, Tensor b) => Zip(a, b, new MulOp(), "Mul");
    /// <summary>a / b (broadcasting).</summary>
    public static Tensor Div(Tensor a, Tensor b) => Zip(a, b, new DivOp(), "Div");
    /// <summary>a * x.</summary>
    public static Tensor Scale(Tensor x, float a) => Map(x, new ScaleOp(a), "Scale");
    /// <summary>x + c.</summary>
    public static Tensor AddScalar(Tensor x, float c) => Map(x, new AddScalarOp(c), "AddScalar");
    /// <summary>exp(x).</summary>
    public static Tensor Exp(Tensor x) => Map(x, new ExpOp(), "Exp");
    /// <summary>ln(x).</summary>
    public static Tensor Log(Tensor x) => Map(x, new LogOp(), "Log");
    /// <summary>sqrt(x).</summary>
    public static Tensor Sqrt(Tensor x) => Map(x, new SqrtOp(), "Sqrt");
    /// <summary>x^2.</summary>
    public static Tensor Square(Tensor x) => Map(x, new SquareOp(), "Square");
    /// <summary>|x|.</summary>
    public static Tensor Abs(Tensor x) => Map(x, new AbsOp(), "Abs");
    /// <summary>-x.</summary>
    public static Tensor Neg(Tensor x) => Map(x, new NegOp(), "Neg");

    /// <summary>min(max(x, lo), hi).</summary>
    public static Tensor Clamp(Tensor x, float lo, float hi)
    {
        if (!(lo <= hi)) throw new ArgumentException($"Clamp: lo ({lo}) must be <= hi ({hi})");
        return Map(x, new ClampOp(lo, hi), "Clamp");
    }

    /// <summary>cond != 0 ? a : b, all three broadcast together.</summary>
    public static Tensor Where(Tensor cond, Tensor a, Tensor b)
    {
        const string name = "Where";
        RequireSameDevice(name, cond, a);
        RequireSameDevice(name, a, b);
        var shape = Shapes.Broadcast(name, Shapes.Broadcast(name, cond.Shape, a.Shape), b.Shape);
        var y = Tensor.Empty(a.Device, shape);
        var ic = StridedIndex.Broadcast(name, shape, cond.Shape);
        var ia = StridedIndex.Broadcast(name, shape, a.Shape);
        var ib = StridedIndex.Broadcast(name, shape, b.Shape);
        var dev = a.Device;
        int n = y.Length;
        if (dev.UseCpuFastPath)
        {
            CpuParallel.For(n, (s, c) =>
            {
                var cv = cond.CpuSpan(); var av = a.CpuSpan(); var bv = b.CpuSpan(); var yv = y.CpuSpan();
                for (int i = s; i < s + c; i++) yv[i] = cv[ic.Offset(i)] != 0f ? av[ia.Offset(i)] : bv[ib.Offset(i)];
            });
            return y;
        }
        int t = dev.LaunchThreads(n);
        dev.Kernels<ElementwiseKernels>().Where(dev.Accelerator.DefaultStream, t, cond.View, a.View, b.View, y.View, n, t, ic, ia, ib);
        return y;
    }

    /// <summary>y += a * x in place (same shape).</summary>
    public static void Axpy(float a, Tensor x, Tensor y)
    {
        RequireSameDevice("Axpy", x, y);
        Shapes.RequireEqual("Axpy", "y", x.Shape, y.Shape);
        var dev = x.Device;
        int n = x.Length;
        if (dev.UseCpuFastPath)
        {
            CpuParallel.For(n, (s, c) =>
            {
                var ys = y.CpuSpan().Slice(s, c);
                TensorPrimitives.MultiplyAdd(x.CpuSpan().Slice(s, c), a, ys, ys);
            });
            return;
        }
        int t = dev.LaunchThreads(n);
        dev.Kernels<ElementwiseKernels>().Axpy(dev.Accelerator.DefaultStream, t, x.View, y.View, n, t, a);
    }

    /// <summary>Sets every element to <paramref name="value"/> in place.</summary>
    public static void Fill(Tensor x, float value)
    {
        var dev = x.Device;
        int n = x.Length;
        if (dev.UseCpuFastPath)
        {
            CpuParallel.For(n, (s, c) => x.CpuSpan().Slice(s, c).Fill(value));
            return;
        }
        int t = dev.LaunchThreads(n);
        dev.Kernels<ElementwiseKernels>().Fill(dev.Accelerator.DefaultStream, t, x.View, n, t, value);
    }

    /// <summary>A new tensor with the same shape and contents.</summary>
    public static Tensor Copy(Tensor x)
    {
        var y = Tensor.Empty(x.Device, x.Shape);
        CopyInto(x, y);
        return y;
    }

    /// <summary>dst = src (same element count).</summary>
    public static void CopyInto(Tensor src, Tensor dst)
    {
        RequireSameDevice("CopyInto", src, dst);
        if (src.Length != dst.Length) throw new ArgumentException($"CopyInto: dst has shape {dst.ShapeString}, expected {src.ShapeString}");
        if (src.Device.UseCpuFastPath)
        {
            CpuParallel.For(src.Length, (s, c) => src.CpuSpan().Slice(s, c).CopyTo(dst.CpuSpan().Slice(s, c)));
            return;
        }
        src.View.CopyTo(dst.View);
    }
}

// Float64 references of the differentiable ops (Edm.Autograd/Ops/): forward and backward
// (vector-Jacobian product) as plain loops over row-major arrays, for GradCheck. Broadcasting
// follows NumPy: shapes aligned from the right, size-1 dimensions stretched.
using Edm.Autograd;
using Edm.Kernels;
using MathNet.Numerics;

namespace Edm.Verification;

/// <summary>Float64 forward and backward references of the differentiable ops.</summary>
public static class AutogradReference
{
    /// <summary>The reductions that have a differentiable op.</summary>
    public enum Reduction
    {
        /// <summary>Sum.</summary>
        Sum,
        /// <summary>Mean.</summary>
        Mean,
        /// <summary>Maximum.</summary>
        Max,
        /// <summary>Sum of squares.</summary>
        SumSquares,
    }

    // ---- broadcasting ----

    /// <summary>Offset in an input of shape <paramref name="input"/> of output element <paramref name="flat"/> (output shape <paramref name="output"/>).</summary>
    static int BroadcastOffset(int flat, int[] output, int[] input)
    {
        int off = 0, stride = 1;
        for (int d = output.Length - 1, di = input.Length - 1; d >= 0; d--, di--)
        {
            int idx = flat % output[d];
            flat /= output[d];
            if (di < 0) continue;
            if (input[di] != 1) off += idx * stride;
            stride *= input[di];
        }
        return off;
    }

    /// <summary>f(a, b) with broadcasting; y has the broadcast shape.</summary>
    public static RefTensor Binary(RefTensor a, RefTensor b, Func<double, double, double> f)
    {
        var shape = Shapes.Broadcast("reference", a.Shape, b.Shape);
        var y = RefTensor.Zeros(shape);
        for (int i = 0; i < y.Length; i++)
            y.Data[i] = f(a.Data[BroadcastOffset(i, shape, a.Shape)], b.Data[BroadcastOffset(i, shape, b.Shape)]);
        return y;
    }

    /// <summary>ga = sum over broadcast of gy df/da, gb likewise (the partial derivatives at (a, b)).</summary>
    public static RefTensor[] BinaryBackward(RefTensor a, RefTensor b, RefTensor gy,
        Func<double, double, double> dfda, Func<double, double, double> dfdb)
    {
        var ga = RefTensor.Zeros(a.Shape);
        var gb = RefTensor.Zeros(b.Shape);
        for (int i = 0; i < gy.Length; i++)
        {
            int ia = BroadcastOffset(i, gy.Shape, a.Shape), ib = BroadcastOffset(i, gy.Shape, b.Shape);
            double av = a.Data[ia], bv = b.Data[ib];
            ga.Data[ia] += gy.Data[i] * dfda(av, bv);
            gb.Data[ib] += gy.Data[i] * dfdb(av, bv);
        }
        return [ga, gb];
    }

    /// <summary>f(x) elementwise.</summary>
    public static RefTensor Unary(RefTensor x, Func<double, double> f) => new(x.Data.Select(f).ToArray(), x.Shape);

    /// <summary>gx = gy f'(x).</summary>
    public static RefTensor UnaryBackward(RefTensor x, RefTensor gy, Func<double, double> df) =>
        new(x.Data.Select((v, i) => gy.Data[i] * df(v)).ToArray(), x.Shape);

    // ---- activations: value and derivative ----

    /// <summary>x Phi(x) (exact GELU).</summary>
    public static double Gelu(double x) => 0.5 * x * (1 + SpecialFunctions.Erf(x / Math.Sqrt(2)));
    /// <summary>Phi(x) + x phi(x).</summary>
    public static double GeluGrad(double x) => 0.5 * (1 + SpecialFunctions.Erf(x / Math.Sqrt(2))) + x * Math.Exp(-0.5 * x * x) / Math.Sqrt(2 * Math.PI);

    const double GeluC = 0.044715;
    static readonly double Sqrt2OverPi = Math.Sqrt(2 / Math.PI);
    /// <summary>0.5 x (1 + tanh(sqrt(2/pi)(x + 0.044715 x^3))).</summary>
    public static double GeluTanh(double x) => 0.5 * x * (1 + Math.Tanh(Sqrt2OverPi * (x + GeluC * x * x * x)));
    /// <summary>Derivative of <see cref="GeluTanh"/>.</summary>
    public static double GeluTanhGrad(double x)
    {
        double t = Math.Tanh(Sqrt2OverPi * (x + GeluC * x * x * x));
        return 0.5 * (1 + t) + 0.5 * x * (1 - t * t) * Sqrt2OverPi * (1 + 3 * GeluC * x * x);
    }

    static double Sigmoid(double x) => 1 / (1 + Math.Exp(-x));
    /// <summary>x sigmoid(x).</summary>
    public static double Silu(double x) => x * Sigmoid(x);
    /// <summary>sigmoid(x) (1 + x (1 - sigmoid(x))).</summary>
    public static double SiluGrad(double x) => Sigmoid(x) * (1 + x * (1 - Sigmoid(x)));

    // ---- reductions ----

    static (bool[] Reduce, int[] Out, int[] Keep) Plan(int[] shape, int[]? axes, bool keepDims)
    {
        var reduce = new bool[shape.Length];
        if (axes is null || axes.Length == 0) Array.Fill(reduce, true);
        else foreach (int a in axes) reduce[a < 0 ? a + shape.Length : a] = true;
        var keep = shape.Select((d, i) => reduce[i] ? 1 : d).ToArray();
        var outShape = keepDims ? keep : shape.Where((_, i) => !reduce[i]).ToArray();
        if (outShape.Length == 0) outShape = [1];  // a full reduction gives shape (1), as Ops does
        return (reduce, outShape, keep);
    }

    /// <summary>The reduction over <paramref name="axes"/> (all when null or empty).</summary>
    public static RefTensor Reduce(RefTensor x, int[]? axes, bool keepDims, Reduction kind)
    {
        var (_, outShape, keep) = Plan(x.Shape, axes, keepDims);
        var y = new RefTensor(new double[Shapes.Count(keep)], outShape);
        if (kind == Reduction.Max) Array.Fill(y.Data, double.NegativeInfinity);
        for (int i = 0; i < x.Length; i++)
        {
            int o = BroadcastOffset(i, x.Shape, keep);
            double v = x.Data[i];
            y.Data[o] = kind switch
            {
                Reduction.Max => Math.Max(y.Data[o], v),
                Reduction.SumSquares => y.Data[o] + v * v,
                _ => y.Data[o] + v,
            };
        }
        if (kind == Reduction.Mean)
        {
            double count = (double)x.Length / y.Length;
            for (int o = 0; o < y.Length; o++) y.Data[o] /= count;
        }
        return y;
    }

    /// <summary>Backward of <see cref="Reduce"/>: gy (output shape) spread over the reduced axes.</summary>
    public static RefTensor ReduceBackward(RefTensor x, int[]? axes, RefTensor gy, Reduction kind)
    {
        var (_, _, keep) = Plan(x.Shape, axes, false);
        var gx = RefTensor.Zeros(x.Shape);
        double count = (double)x.Length / Shapes.Count(keep);
        var max = kind == Reduction.Max ? Reduce(x, axes, true, Reduction.Max) : null;
        var ties = new double[Shapes.Count(keep)];
        if (max is not null)
            for (int i = 0; i < x.Length; i++)
            {
                int o = BroadcastOffset(i, x.Shape, keep);
                if (x.Data[i] == max.Data[o]) ties[o]++;
            }
        for (int i = 0; i < x.Length; i++)
        {
            int o = BroadcastOffset(i, x.Shape, keep);
            double g = gy.Data[o];
            gx.Data[i] = kind switch
            {
                Reduction.Sum => g,
                Reduction.Mean => g / count,
                Reduction.SumSquares => 2 * x.Data[i] * g,
                _ => x.Data[i] == max!.Data[o] ? g / ties[o] : 0,
            };
        }
        return gx;
    }

    // ---- layout ----

    static (int Outer, int Inner) OuterInner(int[] shape, int axis)
    {
        int outer = 1, inner = 1;
        for (int i = 0; i < axis; i++) outer *= shape[i];
        for (int i = axis + 1; i < shape.Length; i++) inner *= shape[i];
        return (outer, inner);
    }

    /// <summary>Concatenation along <paramref name="axis"/>.</summary>
    public static RefTensor Concat(int axis, RefTensor[] xs)
    {
        var shape = (int[])xs[0].Shape.Clone();
        shape[axis] = xs.Sum(x => x.Shape[axis]);
        var y = RefTensor.Zeros(shape);
        var (outer, inner) = OuterInner(shape, axis);
        int at = 0;
        foreach (var x in xs)
        {
            int len = x.Shape[axis];
            for (int o = 0; o < outer; o++)
                Array.Copy(x.Data, o * len * inner, y.Data, (o * shape[axis] + at) * inner, len * inner);
            at += len;
        }
        return y;
    }

    /// <summary>Backward of <see cref="Concat"/>: each input's slice of gy.</summary>
    public static RefTensor[] ConcatBackward(int axis, RefTensor[] xs, RefTensor gy)
    {
        var grads = new RefTensor[xs.Length];
        int at = 0;
        for (int i = 0; i < xs.Length; i++)
        {
            grads[i] = Slice(gy, axis, at, xs[i].Shape[axis]);
            at += xs[i].Shape[axis];
        }
        return grads;
    }

    /// <summary>x[..., start:start+length, ...] along <paramref name="axis"/>.</summary>
    public static RefTensor Slice(RefTensor x, int axis, int start, int length)
    {
        var shape = (int[])x.Shape.Clone();
        shape[axis] = length;
        var y = RefTensor.Zeros(shape);
        var (outer, inner) = OuterInner(shape, axis);
        for (int o = 0; o < outer; o++)
            Array.Copy(x.Data, (o * x.Shape[axis] + start) * inner, y.Data, o * length * inner, length * inner);
        return y;
    }

    /// <summary>Backward of <see cref="Slice"/>: zeros with gy in the sliced range.</summary>
    public static RefTensor SliceBackward(RefTensor x, int axis, int start, RefTensor gy)
    {
        var gx = RefTensor.Zeros(x.Shape);
        int length = gy.Shape[axis];
        var (outer, inner) = OuterInner(gy.Shape, axis);
        for (int o = 0; o < outer; o++)
            Array.Copy(gy.Data, o * length * inner, gx.Data, (o * x.Shape[axis] + start) * inner, length * inner);
        return gx;
    }

    // ---- matrix product ----

    /// <summary>
    /// y = a b for a (M, K) or (Ba, M, K) and b (K, N) or (Bb, K, N); a batch of 1 (or a rank-2
    /// operand) broadcasts. y is (M, N) when both are rank 2, else (B, M, N).
    /// </summary>
    public static RefTensor MatMul(RefTensor a, RefTensor b)
    {
        var (batch, ba, bb, m, k, n) = MatMulDims(a, b);
        var y = a.Shape.Length == 2 && b.Shape.Length == 2 ? RefTensor.Zeros(m, n) : RefTensor.Zeros(batch, m, n);
        for (int t = 0; t < batch; t++)
        {
            int ao = (ba == 1 ? 0 : t) * m * k, bo = (bb == 1 ? 0 : t) * k * n, yo = t * m * n;
            for (int i = 0; i < m; i++)
                for (int j = 0; j < n; j++)
                {
                    double s = 0;
                    for (int p = 0; p < k; p++) s += a.Data[ao + i * k + p] * b.Data[bo + p * n + j];
                    y.Data[yo + i * n + j] = s;
                }
        }
        return y;
    }

    /// <summary>Gradients of <see cref="MatMul"/>: ga = gy b^T, gb = a^T gy, summed over the batch items an operand was broadcast to.</summary>
    public static RefTensor[] MatMulBackward(RefTensor a, RefTensor b, RefTensor gy)
    {
        var (batch, ba, bb, m, k, n) = MatMulDims(a, b);
        var ga = new RefTensor(new double[a.Data.Length], (int[])a.Shape.Clone());
        var gb = new RefTensor(new double[b.Data.Length], (int[])b.Shape.Clone());
        for (int t = 0; t < batch; t++)
        {
            int ao = (ba == 1 ? 0 : t) * m * k, bo = (bb == 1 ? 0 : t) * k * n, yo = t * m * n;
            for (int i = 0; i < m; i++)
                for (int j = 0; j < n; j++)
                {
                    double g = gy.Data[yo + i * n + j];
                    for (int p = 0; p < k; p++)
                    {
                        ga.Data[ao + i * k + p] += g * b.Data[bo + p * n + j];
                        gb.Data[bo + p * n + j] += a.Data[ao + i * k + p] * g;
                    }
                }
        }
        return [ga, gb];
    }

    static (int Batch, int Ba, int Bb, int M, int K, int N) MatMulDims(RefTensor a, RefTensor b)
    {
        int ba = a.Shape.Length == 3 ? a.Shape[0] : 1, bb = b.Shape.Length == 3 ? b.Shape[0] : 1;
        int m = a.Shape[^2], k = a.Shape[^1], n = b.Shape[^1];
        return (Math.Max(ba, bb), ba, bb, m, k, n);
    }
}

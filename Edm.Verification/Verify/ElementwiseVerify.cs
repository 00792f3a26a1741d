// verify rows for the foundation kernels (elementwise, activations, reductions, layout, RNG).
// Each check is a static method over explicit shapes so the tests run the same checks over
// more shapes and on both the CPU fast path and the ILGPU kernels.
using Edm.Verification;
using Edm.Kernels;
using R = Edm.Verification.ElementwiseReference;

namespace Edm.Verification;

/// <summary>Checks of the foundation kernels against float64 references.</summary>
public sealed class ElementwiseVerify : IVerifySuite
{
    /// <inheritdoc/>
    public string Family => "elementwise";

    const double Tol = 2e-6;

    /// <summary>Binary op names checked.</summary>
    public static readonly string[] BinaryOps = ["add", "sub", "mul", "div", "add_scaled"];
    /// <summary>Unary op names checked.</summary>
    public static readonly string[] UnaryOps = ["exp", "log", "sqrt", "square", "abs", "neg", "scale", "addscalar", "clamp", "gelu", "gelu_tanh", "silu", "relu"];
    /// <summary>Activation derivatives checked.</summary>
    public static readonly string[] GradOps = ["gelu_backward", "gelu_tanh_backward", "silu_backward", "relu_backward"];
    /// <summary>Reductions checked.</summary>
    public static readonly string[] ReduceKinds = ["sum", "mean", "max", "sumsq"];

    /// <inheritdoc/>
    public IEnumerable<VerifyRow> Run(EdmDevice d)
    {
        foreach (var op in BinaryOps)
        {
            yield return Binary(d, op, [3, 5, 7], [3, 5, 7]);
            yield return Binary(d, op, [2, 3, 17, 9], [3, 1, 1]);
        }
        foreach (var op in UnaryOps) yield return Unary(d, op, [1001, 3]);
        foreach (var op in GradOps) yield return Grad(d, op, [257, 5]);
        yield return Where(d, [4, 1, 9], [4, 7, 9], [7, 1]);
        yield return Axpy(d, [65537]);
        foreach (var k in ReduceKinds)
        {
            yield return Reduce(d, k, [3, 33, 7, 5], [0, 2, 3]);
            yield return Reduce(d, k, [5, 1031], [1]);
            yield return Reduce(d, k, [1 << 20], []);
        }
        yield return Concat(d, 1, [2, 3, 5], [2, 4, 5]);
        yield return Slice(d, 2, [3, 4, 11, 2], 3, 5);
        yield return Permute(d, [2, 3, 5, 7], [0, 3, 1, 2]);
        yield return RandomMoments(d, normal: true, n: 1 << 20);
        yield return RandomMoments(d, normal: false, n: 1 << 20);
        yield return RandomEqualsHost(d, normal: false, n: 1 << 16);
        yield return RandomEqualsHost(d, normal: true, n: 1 << 16);
    }

    static string S(int[] s) => Shapes.Format(s);

    /// <summary>Binary op with broadcasting.</summary>
    public static VerifyRow Binary(EdmDevice d, string op, int[] sa, int[] sb)
    {
        var a = Compare.Random((int)Shapes.Count(sa), 1, -2, 2);
        var b = Compare.Random((int)Shapes.Count(sb), 2, 0.5, 2); // away from 0 for div
        using var ta = Tensor.FromArray(d, a, sa);
        using var tb = Tensor.FromArray(d, b, sb);
        using var y = op switch
        {
            "add" => Ops.Add(ta, tb), "sub" => Ops.Sub(ta, tb), "mul" => Ops.Mul(ta, tb), "div" => Ops.Div(ta, tb),
            "add_scaled" => Ops.AddScaled(ta, tb, 0.7071068f),
            _ => throw new ArgumentException(op),
        };
        Func<double, double, double> f = op switch
        {
            "add" => (x, z) => x + z, "sub" => (x, z) => x - z, "mul" => (x, z) => x * z,
            "add_scaled" => (x, z) => (x + z) * (double)0.7071068f, _ => (x, z) => x / z,
        };
        return Compare.Row(op, $"{S(sa)} . {S(sb)}", y.ToArray(), R.Binary(R.D(a), sa, R.D(b), sb, f), Tol);
    }

    /// <summary>Unary op.</summary>
    public static VerifyRow Unary(EdmDevice d, string op, int[] shape)
    {
        bool positive = op is "log" or "sqrt";
        var x = Compare.Random((int)Shapes.Count(shape), 3, positive ? 0.01 : -4, 4);
        using var tx = Tensor.FromArray(d, x, shape);
        using var y = op switch
        {
            "exp" => Ops.Exp(tx), "log" => Ops.Log(tx), "sqrt" => Ops.Sqrt(tx), "square" => Ops.Square(tx),
            "abs" => Ops.Abs(tx), "neg" => Ops.Neg(tx), "scale" => Ops.Scale(tx, 1.5f), "addscalar" => Ops.AddScalar(tx, -0.25f),
            "clamp" => Ops.Clamp(tx, -1f, 2f), "gelu" => Ops.Gelu(tx), "gelu_tanh" => Ops.GeluTanh(tx), "silu" => Ops.Silu(tx), "relu" => Ops.Relu(tx),
            _ => throw new ArgumentException(op),
        };
        Func<double, double> f = op switch
        {
            "exp" => Math.Exp, "log" => Math.Log, "sqrt" => Math.Sqrt, "square" => v => v * v, "abs" => Math.Abs, "neg" => v => -v,
            "scale" => v => 1.5 * v, "addscalar" => v => v - 0.25, "clamp" => v => Math.Clamp(v, -1, 2),
            "gelu" => R.Gelu, "gelu_tanh" => R.GeluTanh, "relu" => v => Math.Max(v, 0), _ => R.Silu,
        };
        return Compare.Row(op, S(shape), y.ToArray(), x.Select(v => f(v)).ToArray(), Tol);
    }

    /// <summary>Activation derivative dy * f'(x).</summary>
    public static VerifyRow Grad(EdmDevice d, string op, int[] shape)
    {
        int n = (int)Shapes.Count(shape);
        var x = Compare.Random(n, 4, -5, 5);
        var dy = Compare.Random(n, 5, -1, 1);
        using var tx = Tensor.FromArray(d, x, shape);
        using var tdy = Tensor.FromArray(d, dy, shape);
        using var g = op switch
        {
            "gelu_backward" => Ops.GeluBackward(tx, tdy), "gelu_tanh_backward" => Ops.GeluTanhBackward(tx, tdy),
            "relu_backward" => Ops.ReluBackward(tx, tdy),
            _ => Ops.SiluBackward(tx, tdy),
        };
        Func<double, double> f = op switch { "gelu_backward" => R.GeluGrad, "gelu_tanh_backward" => R.GeluTanhGrad, "relu_backward" => v => v > 0 ? 1 : 0, _ => R.SiluGrad };
        return Compare.Row(op, S(shape), g.ToArray(), Enumerable.Range(0, n).Select(i => dy[i] * f(x[i])).ToArray(), Tol);
    }

    /// <summary>where(c, a, b) with broadcasting.</summary>
    public static VerifyRow Where(EdmDevice d, int[] sc, int[] sa, int[] sb)
    {
        var c = Compare.Random((int)Shapes.Count(sc), 6).Select(v => v > 0 ? 1f : 0f).ToArray();
        var a = Compare.Random((int)Shapes.Count(sa), 7);
        var b = Compare.Random((int)Shapes.Count(sb), 8);
        using var tc = Tensor.FromArray(d, c, sc);
        using var ta = Tensor.FromArray(d, a, sa);
        using var tb = Tensor.FromArray(d, b, sb);
        using var y = Ops.Where(tc, ta, tb);
        return Compare.Row("where", $"{S(sc)} ? {S(sa)} : {S(sb)}", y.ToArray(), R.Where(R.D(c), sc, R.D(a), sa, R.D(b), sb), 0);
    }

    /// <summary>y += a x.</summary>
    public static VerifyRow Axpy(EdmDevice d, int[] shape)
    {
        int n = (int)Shapes.Count(shape);
        var x = Compare.Random(n, 9); var y0 = Compare.Random(n, 10);
        using var tx = Tensor.FromArray(d, x, shape);
        using var ty = Tensor.FromArray(d, y0, shape);
        Ops.Axpy(-0.75f, tx, ty);
        return Compare.Row("axpy", S(shape), ty.ToArray(), Enumerable.Range(0, n).Select(i => y0[i] - 0.75 * x[i]).ToArray(), Tol);
    }

    /// <summary>Reduction over axes.</summary>
    public static VerifyRow Reduce(EdmDevice d, string kind, int[] shape, int[] axes)
    {
        int n = (int)Shapes.Count(shape);
        var x = Compare.Random(n, 11, -1, 1.5);
        using var tx = Tensor.FromArray(d, x, shape);
        using var y = kind switch
        {
            "sum" => Ops.Sum(tx, axes), "mean" => Ops.Mean(tx, axes), "max" => Ops.Max(tx, axes), _ => Ops.SumSquares(tx, axes),
        };
        var r = R.Reduce(R.D(x), shape, axes, kind);
        // float32 accumulation of R terms: rounding errors of a running sum grow like a random walk,
        // about eps sqrt(R) times sum |x| (sum of x^2 for sumsq; divided by R for the mean), so the
        // tolerance is 4 eps sqrt(R) (at least 1e-6) relative to that scale; max is exact.
        var absX = x.Select(v => kind == "sumsq" ? (double)v * v : Math.Abs((double)v)).ToArray();
        var scale = R.Reduce(absX, shape, axes, kind == "mean" ? "mean" : "sum");
        return Compare.Row(kind, $"{S(shape)} axes [{string.Join(",", axes)}]", y.ToArray(), r, kind == "max" ? 0 : Math.Max(1e-6, 4 * 5.96e-8 * Math.Sqrt((double)n / r.Length)),
            scale: scale.Select(v => v + 1e-30).ToArray());
    }

    /// <summary>Concat of two tensors.</summary>
    public static VerifyRow Concat(EdmDevice d, int axis, int[] s1, int[] s2)
    {
        var a = Compare.Random((int)Shapes.Count(s1), 12); var b = Compare.Random((int)Shapes.Count(s2), 13);
        using var ta = Tensor.FromArray(d, a, s1);
        using var tb = Tensor.FromArray(d, b, s2);
        using var y = Ops.Concat(axis, ta, tb);
        return Compare.Row("concat", $"{S(s1)} ++ {S(s2)} axis {axis}", y.ToArray(), R.Concat(axis, [(R.D(a), s1), (R.D(b), s2)]), 0);
    }

    /// <summary>Slice and its inverse, CopyToSlice.</summary>
    public static VerifyRow Slice(EdmDevice d, int axis, int[] shape, int start, int len)
    {
        var x = Compare.Random((int)Shapes.Count(shape), 14);
        using var tx = Tensor.FromArray(d, x, shape);
        using var y = Ops.Slice(tx, axis, start, len);
        var expect = R.Slice(R.D(x), shape, axis, start, len);
        var row = Compare.Row("slice", $"{S(shape)} axis {axis} [{start}, {start + len})", y.ToArray(), expect, 0);
        // Round trip: writing the slice into zeros and slicing again gives the slice back.
        using var z = Tensor.Zeros(d, shape);
        Ops.CopyToSlice(y, z, axis, start);
        using var back = Ops.Slice(z, axis, start, len);
        var row2 = Compare.Row("copy_to_slice", row.Shapes, back.ToArray(), expect, 0);
        return row.Passed ? row2 : row;
    }

    /// <summary>Permute against a coordinate-loop reference.</summary>
    public static VerifyRow Permute(EdmDevice d, int[] shape, int[] perm)
    {
        var x = Compare.Random((int)Shapes.Count(shape), 15);
        using var tx = Tensor.FromArray(d, x, shape);
        using var y = Ops.Permute(tx, perm);
        return Compare.Row("permute", $"{S(shape)} [{string.Join(",", perm)}]", y.ToArray(), R.Permute(R.D(x), shape, perm), 0);
    }

    /// <summary>
    /// Every element of a device fill against the host's Philox.Uniform / Philox.Normal for the same
    /// (seed, stream, index): docs/architecture.md promises the same numbers on every device. The
    /// tolerance (2e-6 (1 + |x|)) admits last-bit differences; the note gives the fraction of elements
    /// that are bitwise equal (all of them, where the device rounds +, *, /, sqrt and fma as IEEE does).
    /// </summary>
    public static VerifyRow RandomEqualsHost(EdmDevice d, bool normal, int n)
    {
        using var t = Tensor.Empty(d, n);
        if (normal) Ops.Normal(t, 99, 3); else Ops.Uniform(t, 99, 3);
        var v = t.ToArray();
        var host = new double[n];
        int same = 0;
        for (int i = 0; i < n; i++)
        {
            float h = normal ? Philox.Normal(99, 3, (uint)i) : Philox.Uniform(99, 3, (uint)i);
            host[i] = h;
            if (BitConverter.SingleToInt32Bits(h) == BitConverter.SingleToInt32Bits(v[i])) same++;
        }
        var row = Compare.Row(normal ? "normal = host" : "uniform = host", $"({n})", v, host, 2e-6);
        return row with { Note = $"{100.0 * same / n:F2}% bitwise equal" + (row.Note is null ? "" : "; " + row.Note) };
    }

    /// <summary>RNG: mean and variance within 6 standard errors; values depend only on (seed, index).</summary>
    public static VerifyRow RandomMoments(EdmDevice d, bool normal, int n)
    {
        using var t = Tensor.Empty(d, n);
        if (normal) Ops.Normal(t, 1234, 7); else Ops.Uniform(t, 1234, 7);
        var v = t.ToArray();
        double mean = v.Average(x => (double)x);
        double var_ = v.Sum(x => (x - mean) * (x - mean)) / (n - 1);
        double m0 = normal ? 0 : 0.5, v0 = normal ? 1 : 1.0 / 12;
        // standard error of the mean sqrt(v0/n); of the variance about v0 sqrt(2/n) (normal) / sqrt(0.8/n) (uniform: kurtosis 1.8)
        double zMean = Math.Abs(mean - m0) / Math.Sqrt(v0 / n);
        double zVar = Math.Abs(var_ - v0) / (v0 * Math.Sqrt((normal ? 2.0 : 0.8) / n));
        // Host value of element 12345 from the same (seed, stream): keyed, not launch-dependent.
        float host = normal ? Philox.Normal(1234, 7, 12345) : Philox.Uniform(1234, 7, 12345);
        double hostErr = Math.Abs(host - v[12345]);
        bool ok = zMean < 6 && zVar < 6 && hostErr <= 1e-6 && v.All(float.IsFinite) && (normal || v.All(x => x >= 0 && x < 1));
        return new VerifyRow(normal ? "rng_normal" : "rng_uniform", $"({n})", hostErr, Math.Max(zMean, zVar), 6, ok,
            $"mean {mean:F5} var {var_:F5} (z {zMean:F2}, {zVar:F2})");
    }
}

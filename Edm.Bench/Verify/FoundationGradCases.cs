// Gradient-check cases of the foundation ops (Edm.Autograd/Ops/: elementwise with broadcasting,
// activations, reductions, layout, matmul), run by `verify` (family autograd) and by
// Edm.Tests/Autograd/GradCheckTests.cs. Shapes include odd sizes, size-1 dimensions and
// broadcasting; inputs avoid the points where an op is not differentiable or not defined.
using Edm.Autograd;
using Edm.Kernels;
using R = Edm.Bench.Reference.AutogradReference;

namespace Edm.Bench.Verify;

/// <summary>Cases of the foundation ops: elementwise with broadcasting, activations, reductions, layout, matmul.</summary>
public sealed class FoundationGradCases : IGradCases
{
    static float[] Uniform(int n, int seed, double lo, double hi) => Compare.Random(n, seed, lo, hi);
    // Inputs bounded away from 0 (divisors, log, sqrt): |x| in [0.5, 1.5) with either sign.
    static float[] AwayFromZero(int n, int seed) => Uniform(n, seed, 0.5, 1.5).Select((v, i) => i % 3 == 1 ? -v : v).ToArray();
    static Func<int, float[]> Positive(int seed) => n => Uniform(n, seed, 0.5, 2);

    static GradCase BinaryCase(int[] sa, int[] sb, Func<Variable, Variable, Variable> fn, Func<double, double, double> f,
        Func<double, double, double> dfa, Func<double, double, double> dfb, bool divisor = false) =>
        new([sa, sb], v => fn(v[0], v[1]), x => R.Binary(x[0], x[1], f), (x, g) => R.BinaryBackward(x[0], x[1], g, dfa, dfb),
            divisor ? [n => Uniform(n, 1, -1, 1), n => AwayFromZero(n, 2)] : null);

    static GradCase UnaryCase(int[] s, Func<Variable, Variable> fn, Func<double, double> f, Func<double, double> df, Func<int, float[]>? input = null) =>
        new([s], v => fn(v[0]), x => R.Unary(x[0], f), (x, g) => [R.UnaryBackward(x[0], g, df)], input is null ? null : [input]);

    static GradCase ReduceCase(int[] s, int[]? axes, bool keep, R.Reduction kind) =>
        new([s], v => kind switch
            {
                R.Reduction.Sum => Fn.Sum(v[0], axes, keep),
                R.Reduction.Mean => Fn.Mean(v[0], axes, keep),
                R.Reduction.Max => Fn.Max(v[0], axes, keep),
                _ => Fn.SumSquares(v[0], axes, keep),
            },
            x => R.Reduce(x[0], axes, keep, kind), (x, g) => [R.ReduceBackward(x[0], axes, g, kind)]);

    static readonly int[][][] BroadcastPairs =
    [
        [[3, 5, 7], [3, 5, 7]], [[2, 3, 4], [3, 1]], [[4, 1], [1, 6]], [[5], [2, 3, 5]], [[1], [3, 7]], [[2, 1, 3], [2, 5, 1]],
    ];


    /// <inheritdoc/>
    public IReadOnlyDictionary<string, GradCase> Cases()
    {
        var c = new Dictionary<string, GradCase>();
        foreach (var p in BroadcastPairs)
        {
            string s = $"{Shapes.Format(p[0])}x{Shapes.Format(p[1])}";
            c[$"add {s}"] = BinaryCase(p[0], p[1], Fn.Add, (a, b) => a + b, (a, b) => 1, (a, b) => 1);
            c[$"sub {s}"] = BinaryCase(p[0], p[1], Fn.Sub, (a, b) => a - b, (a, b) => 1, (a, b) => -1);
            c[$"mul {s}"] = BinaryCase(p[0], p[1], Fn.Mul, (a, b) => a * b, (a, b) => b, (a, b) => a);
            c[$"div {s}"] = BinaryCase(p[0], p[1], Fn.Div, (a, b) => a / b, (a, b) => 1 / b, (a, b) => -a / (b * b), divisor: true);
        }
        int[] u = [5, 13];
        c["scale"] = UnaryCase(u, x => Fn.Scale(x, -1.75f), x => -1.75 * x, _ => -1.75);
        c["add_scalar"] = UnaryCase(u, x => Fn.AddScalar(x, 0.3f), x => x + (double)0.3f, _ => 1);
        c["neg"] = UnaryCase(u, Fn.Neg, x => -x, _ => -1);
        c["exp"] = UnaryCase(u, Fn.Exp, Math.Exp, Math.Exp);
        c["log"] = UnaryCase(u, Fn.Log, Math.Log, x => 1 / x, Positive(3));
        c["sqrt"] = UnaryCase(u, Fn.Sqrt, Math.Sqrt, x => 0.5 / Math.Sqrt(x), Positive(4));
        c["square"] = UnaryCase(u, Fn.Square, x => x * x, x => 2 * x);
        c["gelu"] = UnaryCase(u, Fn.Gelu, R.Gelu, R.GeluGrad, n => Uniform(n, 5, -3, 3));
        c["gelu_tanh"] = UnaryCase(u, Fn.GeluTanh, R.GeluTanh, R.GeluTanhGrad, n => Uniform(n, 6, -3, 3));
        c["silu"] = UnaryCase(u, Fn.Silu, R.Silu, R.SiluGrad, n => Uniform(n, 7, -4, 4));
        foreach (var kind in Enum.GetValues<R.Reduction>())
        {
            string k = kind.ToString().ToLowerInvariant();
            c[$"{k} all"] = ReduceCase([3, 5, 7], null, false, kind);
            c[$"{k} axis1 keep"] = ReduceCase([3, 5, 7], [1], true, kind);
            c[$"{k} axes0,2"] = ReduceCase([3, 5, 7], [0, 2], false, kind);
            c[$"{k} last"] = ReduceCase([2, 9], [-1], false, kind);
            c[$"{k} single"] = ReduceCase([1], null, false, kind);
        }
        // Reshape has no arithmetic: composed with a product so that a wrong gradient layout shows.
        c["reshape"] = new([[3, 4, 5], [12, 5]], v => Fn.Mul(Fn.Reshape(v[0], 12, -1), v[1]),
            x => R.Binary(new RefTensor(x[0].Data, [12, 5]), x[1], (a, b) => a * b),
            (x, g) => { var r = R.BinaryBackward(new RefTensor(x[0].Data, [12, 5]), x[1], g, (a, b) => b, (a, b) => a); return [new RefTensor(r[0].Data, [3, 4, 5]), r[1]]; });
        c["concat axis1"] = new([[2, 3, 4], [2, 1, 4], [2, 5, 4]], v => Fn.Concat(1, v), x => R.Concat(1, x), (x, g) => R.ConcatBackward(1, x, g));
        c["concat axis0"] = new([[1, 3], [4, 3]], v => Fn.Concat(0, v), x => R.Concat(0, x), (x, g) => R.ConcatBackward(0, x, g));
        c["slice axis1"] = new([[3, 9, 2]], v => Fn.Slice(v[0], 1, 2, 5), x => R.Slice(x[0], 1, 2, 5), (x, g) => [R.SliceBackward(x[0], 1, 2, g)]);
        c["slice last"] = new([[4, 7]], v => Fn.Slice(v[0], -1, 6, 1), x => R.Slice(x[0], 1, 6, 1), (x, g) => [R.SliceBackward(x[0], 1, 6, g)]);
        foreach (var (m, k, n) in new[] { (5, 7, 3), (1, 4, 1), (13, 17, 9) })
            c[$"matmul ({m},{k})x({k},{n})"] = new([[m, k], [k, n]], v => Fn.MatMul(v[0], v[1]), x => R.MatMul(x[0], x[1]), (x, g) => R.MatMulBackward(x[0], x[1], g));
        // Fan-in (x used three times) and an input that needs no gradient.
        c["fan-in x*x+exp(x)"] = new([[4, 6]], v => Fn.Add(Fn.Mul(v[0], v[0]), Fn.Exp(v[0])),
            x => R.Unary(x[0], a => a * a + Math.Exp(a)), (x, g) => [R.UnaryBackward(x[0], g, a => 2 * a + Math.Exp(a))]);
        c["mul with constant"] = BinaryCase([3, 4], [4], Fn.Mul, (a, b) => a * b, (a, b) => b, (a, b) => a) with { RequiresGrad = [true, false] };
        return c;
    }
}

// Inputs and case builders shared by the gradient-check case files (<Op>GradCases.cs): inputs
// avoid the points where an op is not differentiable or not defined.
using Edm.Autograd;
using R = Edm.Verification.AutogradReference;

namespace Edm.Verification;

/// <summary>Input generators and case builders for elementwise-style gradient checks.</summary>
public static class GradCaseInputs
{
    /// <summary>Uniform floats in [lo, hi).</summary>
    public static float[] Uniform(int n, int seed, double lo, double hi) => Compare.Random(n, seed, lo, hi);

    /// <summary>Inputs bounded away from 0 (divisors, log, sqrt): |x| in [0.5, 1.5) with either sign.</summary>
    public static float[] AwayFromZero(int n, int seed) => Uniform(n, seed, 0.5, 1.5).Select((v, i) => i % 3 == 1 ? -v : v).ToArray();

    /// <summary>Positive inputs in [0.5, 2).</summary>
    public static Func<int, float[]> Positive(int seed) => n => Uniform(n, seed, 0.5, 2);

    /// <summary>A broadcasting binary op: y = f(a, b) with partial derivatives dfa, dfb.</summary>
    public static GradCase Binary(int[] sa, int[] sb, Func<Variable, Variable, Variable> fn, Func<double, double, double> f,
        Func<double, double, double> dfa, Func<double, double, double> dfb, bool divisor = false) =>
        new([sa, sb], v => fn(v[0], v[1]), x => R.Binary(x[0], x[1], f), (x, g) => R.BinaryBackward(x[0], x[1], g, dfa, dfb),
            divisor ? [n => Uniform(n, 1, -1, 1), n => AwayFromZero(n, 2)] : null);

    /// <summary>A unary op: y = f(x) with derivative df.</summary>
    public static GradCase Unary(int[] s, Func<Variable, Variable> fn, Func<double, double> f, Func<double, double> df, Func<int, float[]>? input = null) =>
        new([s], v => fn(v[0]), x => R.Unary(x[0], f), (x, g) => [R.UnaryBackward(x[0], g, df)], input is null ? null : [input]);
}

// Gradient-check cases of the elementwise tape ops (Edm.Autograd/Ops/ElementwiseFn.cs, UnaryFn.cs):
// binary ops with broadcasting (add_scaled: the fused (a + b) s), scalar ops, exp/log/sqrt/square, fan-in and constant inputs. Run by
// `verify` (family autograd) and by Edm.Tests/Autograd/GradCheckTests.cs.
using Edm.Autograd;
using Edm.Kernels;
using static Edm.Verification.GradCaseInputs;

namespace Edm.Verification;

/// <summary>Cases of the elementwise ops.</summary>
public sealed class ElementwiseGradCases : IGradCases
{
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
            c[$"add {s}"] = Binary(p[0], p[1], Fn.Add, (a, b) => a + b, (a, b) => 1, (a, b) => 1);
            c[$"sub {s}"] = Binary(p[0], p[1], Fn.Sub, (a, b) => a - b, (a, b) => 1, (a, b) => -1);
            c[$"mul {s}"] = Binary(p[0], p[1], Fn.Mul, (a, b) => a * b, (a, b) => b, (a, b) => a);
            c[$"div {s}"] = Binary(p[0], p[1], Fn.Div, (a, b) => a / b, (a, b) => 1 / b, (a, b) => -a / (b * b), divisor: true);
            c[$"add_scaled {s}"] = Binary(p[0], p[1], (a, b) => Fn.AddScaled(a, b, 0.7071068f), (a, b) => (a + b) * (double)0.7071068f,
                (a, b) => 0.7071068f, (a, b) => 0.7071068f);
        }
        int[] u = [5, 13];
        c["scale"] = Unary(u, x => Fn.Scale(x, -1.75f), x => -1.75 * x, _ => -1.75);
        c["add_scalar"] = Unary(u, x => Fn.AddScalar(x, 0.3f), x => x + (double)0.3f, _ => 1);
        c["neg"] = Unary(u, Fn.Neg, x => -x, _ => -1);
        c["exp"] = Unary(u, Fn.Exp, Math.Exp, Math.Exp);
        c["log"] = Unary(u, Fn.Log, Math.Log, x => 1 / x, Positive(3));
        c["sqrt"] = Unary(u, Fn.Sqrt, Math.Sqrt, x => 0.5 / Math.Sqrt(x), Positive(4));
        c["square"] = Unary(u, Fn.Square, x => x * x, x => 2 * x);
        // Fan-in (x used three times) and an input that needs no gradient.
        c["fan-in x*x+exp(x)"] = new([[4, 6]], v => Fn.Add(Fn.Mul(v[0], v[0]), Fn.Exp(v[0])),
            x => AutogradReference.Unary(x[0], a => a * a + Math.Exp(a)), (x, g) => [AutogradReference.UnaryBackward(x[0], g, a => 2 * a + Math.Exp(a))]);
        c["mul with constant"] = Binary([3, 4], [4], Fn.Mul, (a, b) => a * b, (a, b) => b, (a, b) => a) with { RequiresGrad = [true, false] };
        return c;
    }
}

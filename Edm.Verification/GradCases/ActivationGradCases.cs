// Gradient-check cases of the activation tape ops (GELU erf and tanh forms, SiLU, ReLU), against the
// float64 references in References/AutogradReference.cs.
using Edm.Autograd;
using static Edm.Verification.GradCaseInputs;
using R = Edm.Verification.AutogradReference;

namespace Edm.Verification;

/// <summary>Cases of GELU and SiLU.</summary>
public sealed class ActivationGradCases : IGradCases
{
    /// <inheritdoc/>
    public IReadOnlyDictionary<string, GradCase> Cases()
    {
        int[] u = [5, 13];
        static float[] AwayFromZeroInput(int n) => AwayFromZero(n, 8);
        return new Dictionary<string, GradCase>
        {
            ["gelu"] = Unary(u, Fn.Gelu, R.Gelu, R.GeluGrad, n => Uniform(n, 5, -3, 3)),
            ["gelu_tanh"] = Unary(u, Fn.GeluTanh, R.GeluTanh, R.GeluTanhGrad, n => Uniform(n, 6, -3, 3)),
            ["silu"] = Unary(u, Fn.Silu, R.Silu, R.SiluGrad, n => Uniform(n, 7, -4, 4)),
            // Inputs away from the kink at 0, where finite differences are not the derivative.
            ["relu"] = Unary(u, Fn.Relu, v => Math.Max(v, 0), v => v > 0 ? 1 : 0, AwayFromZeroInput),
        };
    }
}

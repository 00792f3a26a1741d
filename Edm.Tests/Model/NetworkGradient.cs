using Edm.Autograd;
using Edm.Kernels;
using Edm.Model.Modules;
using Xunit;

namespace Edm.Tests.Model;

/// <summary>Finite-difference check of a network's parameter gradients, shared by the network tests.</summary>
internal static class NetworkGradient
{
    /// <summary>
    /// L = sum(F() * r) for a fixed random r; the analytic dL/dtheta of the named parameters (first,
    /// middle and last element each) against central differences of the float32 forward
    /// (h = 1e-2 on O(0.1) weights, tolerance 3% + 1e-3).
    /// </summary>
    public static void AssertMatchesFiniteDifferences(Module net, Func<Variable> forward, float[] r, int[] outShape, string[] names)
    {
        var d = net.Device;
        double Loss()
        {
            using var scope = new TensorScope();
            using var ng = Tape.NoGrad();
            var v = forward().Value.ToArray();
            double s = 0;
            for (int i = 0; i < v.Length; i++) s += v[i] * (double)r[i];
            return s;
        }
        using (var scope = new TensorScope())
        {
            net.ZeroGrad();
            Fn.Sum(Fn.Mul(forward(), new Variable(Tensor.FromArray(d, r, outShape)))).Backward();
        }
        var named = net.NamedParameters().ToDictionary(p => p.Name, p => p.Param);
        foreach (var name in names)
        {
            var p = named[name];
            var grad = p.Grad.ToArray();
            var values = p.Value.ToArray();
            foreach (int i in new[] { 0, values.Length / 2, values.Length - 1 })
            {
                float keep = values[i];
                const float h = 1e-2f;
                values[i] = keep + h; p.Value.CopyFrom(values); double lp = Loss();
                values[i] = keep - h; p.Value.CopyFrom(values); double lm = Loss();
                values[i] = keep; p.Value.CopyFrom(values);
                double num = (lp - lm) / (2 * h);
                Assert.True(Math.Abs(num - grad[i]) <= 0.03 * Math.Abs(num) + 1e-3 * (1 + Math.Abs(num)),
                    $"{name}[{i}]: numeric {num:G6} vs analytic {grad[i]:G6}");
            }
        }
    }
}

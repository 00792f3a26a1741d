// Gradient check of every differentiable op (Edm.Autograd/Ops/; the cases live in
// Edm.Verification/Verify/AutogradVerify.cs) on random shapes, odd sizes and broadcasting included:
// float64 reference gradients against finite differences, and the float32 tape gradients (CPU
// fast path and ILGPU kernels) against the float64 reference gradients.
using Edm.Autograd;
using Edm.Verification;
using Edm.Kernels;
using Xunit;
using R = Edm.Verification.AutogradReference;

namespace Edm.Tests.Autograd;

[Collection("cpu-device")]
public sealed class GradCheckTests(CpuDevice cpu) : IClassFixture<CpuDevice>
{
    readonly EdmDevice _d = cpu.Device;

    public static TheoryData<string> CaseNames() => new(AutogradVerify.Cases.Keys);

    [Theory, MemberData(nameof(CaseNames))]
    public void Op_gradients_match_float64_reference_and_finite_differences(string name)
    {
        foreach (bool fast in new[] { true, false })
        {
            _d.CpuFastPaths = fast;
            try
            {
                var r = AutogradVerify.Check(_d, name, AutogradVerify.Cases[name]);
                Assert.True(r.Passed, $"{(fast ? "cpu fast path" : "ilgpu kernels")}: {r}");
            }
            finally
            {
                _d.CpuFastPaths = true;
            }
        }
    }

    [Fact]
    public void Checker_catches_a_wrong_gradient()
    {
        // The reference backward is off by a factor 1.01: both checks must fail.
        var r = GradCheck.Run(_d, "wrong", [[3, 4]], v => Fn.Square(v[0]), x => R.Unary(x[0], a => a * a),
            (x, g) => [R.UnaryBackward(x[0], g, a => 2.02 * a)]);
        Assert.False(r.Passed);
        Assert.True(r.FdError > 1e-3 && r.GradError > 1e-3, r.ToString());
    }
}

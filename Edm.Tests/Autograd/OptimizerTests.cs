// Optimizer kernels (Edm.Kernels/Optimizers.cs) and the Adam/Training helpers, on both CPU paths.
using Edm.Autograd;
using Edm.Verification;
using Edm.Kernels;
using Xunit;

namespace Edm.Tests.Autograd;

[Collection("cpu-device")]
public sealed class OptimizerTests(CpuDevice fx) : IClassFixture<CpuDevice>
{
    readonly EdmDevice _device = fx.Device;

    void BothPaths(Action body)
    {
        try
        {
            foreach (bool fast in new[] { true, false })
            {
                _device.CpuFastPaths = fast;
                body();
            }
        }
        finally
        {
            _device.CpuFastPaths = true;
        }
    }

    [Theory]
    [InlineData(1)]
    [InlineData(257)]
    [InlineData(4099)]
    public void VerifyRowsPass(int n) => BothPaths(() =>
    {
        foreach (var row in new[] { OptimizerVerify.Adam(_device, n), OptimizerVerify.Ema(_device, n),
                                    OptimizerVerify.NanToNum(_device, n), OptimizerVerify.Norm(_device, n) })
            Assert.True(row.Passed, $"{row.Name} {row.Shapes} fast={_device.CpuFastPaths}: max abs {row.MaxAbsError}, tol {row.Tolerance}");
    });

    [Fact]
    public void AdamMatchesTextbookOverTenSteps() => BothPaths(() =>
    {
        const int n = 301;
        var p0 = Compare.Random(n, 11);
        using var w = Variable.Parameter(Tensor.FromArray(_device, p0, 7, 43));
        using var adam = new Adam([w], beta1: 0.8f, beta2: 0.95f, eps: 1e-6f);
        var pr = p0.Select(x => (double)x).ToArray();
        var mr = new double[n];
        var vr = new double[n];
        for (int t = 1; t <= 10; t++)
        {
            var g = Compare.Random(n, 200 + t, -3, 3);
            w.Grad.CopyFrom(g);
            float lr = 0.01f * t / 10;  // a ramp-up: the rate changes each step
            adam.Step(lr);
            OptimizerReference.AdamStep(pr, g, mr, vr, lr, 0.8f, 0.95f, 1e-6f, t);
        }
        Assert.Equal(10, adam.StepCount);
        var got = w.Value.ToArray();
        for (int i = 0; i < n; i++) Assert.True(Math.Abs(got[i] - pr[i]) <= 1e-5 * (1 + Math.Abs(pr[i])), $"p[{i}] {got[i]} vs {pr[i]}");
        // The parameters really moved (about lr per step): the test would catch a no-op kernel.
        Assert.True(Math.Abs(got[0] - p0[0]) > 0.01);
    });

    [Fact]
    public void TrainingHelpersOverParameterLists() => BothPaths(() =>
    {
        using var a = Variable.Parameter(Tensor.FromArray(_device, Compare.Random(5, 1), 5));
        using var b = Variable.Parameter(Tensor.FromArray(_device, Compare.Random(6, 2), 2, 3));
        a.Grad.CopyFrom([1, float.NaN, float.PositiveInfinity, float.NegativeInfinity, -2]);
        b.Grad.CopyFrom([3, 0, 0, 0, 0, 4]);
        Edm.Autograd.Training.NanToNumGrads([a, b]);
        Assert.Equal([1, 0, 1e5f, -1e5f, -2], a.Grad.ToArray());
        Assert.Equal(Math.Sqrt(1 + 1e10 + 1e10 + 4 + 9 + 16), Edm.Autograd.Training.GradNorm([a, b]), 6);

        var pa = a.Value.ToArray();
        using var ea = new Variable(Tensor.Zeros(_device, 5));
        Edm.Autograd.Training.EmaUpdate([ea], [a], 0.75f);
        var e = ea.Value.ToArray();
        for (int i = 0; i < 5; i++) Assert.Equal(0.25 * pa[i], e[i], 6);
    });

    [Fact]
    public void BadInputNamesTheProblem()
    {
        using var p = Tensor.Zeros(_device, 4);
        using var g = Tensor.Zeros(_device, 5);
        var ex = Assert.Throws<ArgumentException>(() => Ops.AdamStep(p, g, p, p, 1e-3f, 0.9f, 0.999f, 1e-8f, 1));
        Assert.Contains("AdamStep: grad has shape (5), expected (4)", ex.Message);
        ex = Assert.Throws<ArgumentException>(() => Ops.AdamStep(p, p, p, p, 1e-3f, 0.9f, 0.999f, 1e-8f, 0));
        Assert.Contains("steps count from 1", ex.Message);
        ex = Assert.Throws<ArgumentException>(() => Ops.EmaUpdate([p], [p, p], 0.9f));
        Assert.Contains("must pair up", ex.Message);
        using var frozen = new Variable(Tensor.Zeros(_device, 3));
        ex = Assert.Throws<ArgumentException>(() => new Adam([frozen]));
        Assert.Contains("not a trainable leaf", ex.Message);
    }
}

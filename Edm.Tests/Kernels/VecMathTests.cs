using System.Numerics;
using System.Runtime.Intrinsics;
using Edm.Kernels;
using Xunit;

namespace Edm.Tests.Kernels;

public sealed class VecMathTests
{
    static double Ulps(float got, double want)
    {
        float w = (float)want;
        double ulp = MathF.BitIncrement(MathF.Abs(w)) - MathF.Abs(w);
        return Math.Abs(got - want) / ulp;
    }

    [Fact]
    public void ExpIsWithinTwoUlpsOverTheFiniteRange()
    {
        // Both widths: Vector<float> (the AVX2/SSE path) always, Vector512 where the CPU has it.
        double worst = 0, worst512 = 0;
        var lanes = new float[Vector<float>.Count];
        for (double v = -87.3; v < 88.72; v += 0.00731)
        {
            float f = (float)v;
            double want = Math.Exp(f);
            worst = Math.Max(worst, Ulps(VecMath.Exp(new Vector<float>(f))[0], want));
            if (Vector512.IsHardwareAccelerated) worst512 = Math.Max(worst512, Ulps(VecMath.Exp(Vector512.Create(f)).GetElement(0), want));
        }
        Assert.True(worst <= 2, $"Vector<float> exp: {worst:F2} ulp");
        Assert.True(worst512 <= 2, $"Vector512 exp: {worst512:F2} ulp");
    }

    [Theory]
    [InlineData(float.PositiveInfinity, float.PositiveInfinity)]
    [InlineData(float.NegativeInfinity, 0f)]
    [InlineData(89f, float.PositiveInfinity)]
    [InlineData(-104f, 0f)]
    [InlineData(0f, 1f)]
    public void ExpEdgeValues(float x, float want)
    {
        Assert.Equal(want, VecMath.Exp(new Vector<float>(x))[0]);
        Assert.Equal(want, VecMath.Exp(Vector512.Create(x)).GetElement(0));
    }

    [Fact]
    public void ExpPropagatesNaN()
    {
        Assert.True(float.IsNaN(VecMath.Exp(new Vector<float>(float.NaN))[0]));
        Assert.True(float.IsNaN(VecMath.Exp(Vector512.Create(float.NaN)).GetElement(0)));
    }

    [Fact]
    public void RowHelpersMatchScalarExp()
    {
        int n = 37;   // a vector body and a scalar tail
        var row = TestData.Random(n, 3, -5, 5);
        var m = TestData.Random(n, 4, -1, 1);
        var sum = TestData.Random(n, 5);
        var r1 = (float[])row.Clone();
        var s1 = (float[])sum.Clone();
        VecMath.ExpSubAccumulate(r1, m, s1);
        var r2 = (float[])row.Clone();
        VecMath.ExpSub(r2, m);
        for (int i = 0; i < n; i++)
        {
            double e = Math.Exp(row[i] - m[i]);
            Assert.True(Math.Abs(r1[i] - e) <= 3e-7 * e, $"ExpSubAccumulate[{i}] = {r1[i]}, want {e}");
            Assert.Equal(r1[i], r2[i]);
            Assert.Equal(sum[i] + r1[i], s1[i]);
        }
    }
}

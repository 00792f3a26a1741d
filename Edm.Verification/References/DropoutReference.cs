// float64 reference for inverted dropout (Edm.Kernels/Dropout.cs): keep element i when
// Philox.Uniform(seed, stream, i) >= p (the foundation's generator, evaluated on the host).
using Edm.Kernels;

namespace Edm.Verification;

/// <summary>Dropout in double precision.</summary>
public static class DropoutReference
{
    /// <summary>y (any shape, flat) = x * keep / (1 - p); the backward is the same map on gy.</summary>
    public static double[] Apply(double[] x, double p, ulong seed, ulong stream)
    {
        var y = new double[x.Length];
        for (int i = 0; i < x.Length; i++)
            y[i] = Philox.Uniform(seed, stream, (uint)i) >= (float)p ? x[i] / (1 - p) : 0;
        return y;
    }
}

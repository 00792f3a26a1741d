// Counter-based random numbers: Philox4x32-10 (Salmon et al., "Parallel random numbers: as easy
// as 1, 2, 3", SC 2011). Element i of a tensor filled with (seed, stream) takes the counter
// (i, 0, stream_lo, stream_hi) under the key (seed_lo, seed_hi), so its value depends only on
// (seed, stream, i): the same on every device and for every launch size or batch size.
// Uniform: the top 24 bits of word 0, in [0, 1). Normal: Box-Muller on words 0 and 1, its log and
// cos evaluated in double from +, -, *, / and sqrt, so that every device gives the same floats except
// where a fused multiply-add moves a double across a float rounding boundary (about 1e-8 of values).
// Per-sample variant: row b of the leading axis uses key seeds[b] and counter index = the element's
// index within its row, so sample b's numbers do not depend on the batch it is in.
// Variants: v1 grid-stride kernel; v2 CPU fast path (the same scalar functions in plain C#).
using System.Runtime.CompilerServices;
using ILGPU;
using ILGPU.Runtime;

namespace Edm.Kernels;

/// <summary>Philox4x32-10 and the float transforms built on it (usable in kernels and on the host).</summary>
public static class Philox
{
    const uint M0 = 0xD2511F53, M1 = 0xCD9E8D57, W0 = 0x9E3779B9, W1 = 0xBB67AE85;

    /// <summary>The 4x32 output block for a counter and key.</summary>
    public static (uint, uint, uint, uint) Block(uint c0, uint c1, uint c2, uint c3, uint k0, uint k1)
    {
        for (int round = 0; round < 10; round++)
        {
            ulong p0 = (ulong)M0 * c0;
            ulong p1 = (ulong)M1 * c2;
            uint hi0 = (uint)(p0 >> 32), lo0 = (uint)p0;
            uint hi1 = (uint)(p1 >> 32), lo1 = (uint)p1;
            uint n0 = hi1 ^ c1 ^ k0, n2 = hi0 ^ c3 ^ k1;
            c0 = n0; c1 = lo1; c2 = n2; c3 = lo0;
            k0 += W0; k1 += W1;
        }
        return (c0, c1, c2, c3);
    }

    /// <summary>Uniform in [0, 1) for element <paramref name="index"/> of (seed, stream).</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static float Uniform(ulong seed, ulong stream, uint index)
    {
        var (w0, _, _, _) = Block(index, 0, (uint)stream, (uint)(stream >> 32), (uint)seed, (uint)(seed >> 32));
        return (w0 >> 8) * (1f / 16777216f);
    }

    /// <summary>Standard normal for element <paramref name="index"/> of (seed, stream) (Box-Muller).</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static float Normal(ulong seed, ulong stream, uint index)
    {
        var (w0, w1, _, _) = Block(index, 0, (uint)stream, (uint)(stream >> 32), (uint)seed, (uint)(seed >> 32));
        float u1 = ((w0 >> 8) + 1) * (1f / 16777216f); // (0, 1]: log is finite
        return (float)(Math.Sqrt(-2.0 * Log(u1)) * Cos2Pi(w1 >> 8));
    }

    // Box-Muller's log and cos are evaluated in double from +, -, *, / and sqrt alone, then rounded
    // once to float: a GPU's MathF.Log/Cos are approximate instructions (PTX lg2.approx, cos.approx;
    // ILGPU has no intrinsic for MathF.FusedMultiplyAdd), which made CUDA's normals differ from the
    // host's (up to ~1e-4 absolute near u1 = 1, where sqrt(-2 log u1) amplifies log's error). In
    // double the only device difference left is that ptxas fuses a product and the following sum
    // (one rounding instead of two, about 1e-16 relative): the float results differ only when the
    // double result lies within that distance of a float rounding boundary (about 1e-8 of the values).

    /// <summary>ln u for a positive normal float: u = m 2^e, m in [sqrt(1/2), sqrt(2)), ln m = 2 atanh((m-1)/(m+1)).</summary>
    public static double Log(float u)
    {
        uint bits = Interop.FloatAsInt(u);
        int e = (int)((bits >> 23) & 0xFF) - 127;
        double m = Interop.IntAsFloat((bits & 0x7FFFFFu) | 0x3F800000u); // [1, 2)
        if (m > 1.4142135623730951) { m *= 0.5; e++; }
        double s = (m - 1.0) / (m + 1.0);                                 // |s| <= 0.1716
        double z = s * s;
        // 2 s (1 + z/3 + ... + z^8/17): the next term is below 1e-15 relative.
        double p = 1.0 / 17;
        p = p * z + 1.0 / 15; p = p * z + 1.0 / 13; p = p * z + 1.0 / 11; p = p * z + 1.0 / 9;
        p = p * z + 1.0 / 7; p = p * z + 1.0 / 5; p = p * z + 1.0 / 3; p = p * z + 1.0;
        return e * 0.69314718055994531 + 2.0 * s * p;
    }

    /// <summary>
    /// cos(2 pi k / 2^24) for 0 &lt;= k &lt; 2^24: the quadrant from k's top two bits, the rest folded to
    /// an angle x in [0, pi/4] (r and 1 - r are exact), then Taylor polynomials for sin x and cos x
    /// (truncation below 1e-15).
    /// </summary>
    public static double Cos2Pi(uint k)
    {
        uint quadrant = k >> 22;
        double r = (k & 0x3FFFFF) * (1.0 / 4194304.0);  // [0, 1): angle r pi/2 within the quadrant
        bool folded = r > 0.5;
        double x = (folded ? 1.0 - r : r) * 1.5707963267948966; // [0, pi/4]
        double z = x * x;
        double sp = -1.0 / 1307674368000;                          // -1/15!
        sp = sp * z + 1.0 / 6227020800; sp = sp * z - 1.0 / 39916800; sp = sp * z + 1.0 / 362880;
        sp = sp * z - 1.0 / 5040; sp = sp * z + 1.0 / 120; sp = sp * z - 1.0 / 6; sp = sp * z + 1.0;
        double sin = x * sp;
        double cp = 1.0 / 87178291200;                             // 1/14!
        cp = cp * z - 1.0 / 479001600; cp = cp * z + 1.0 / 3628800; cp = cp * z - 1.0 / 40320;
        cp = cp * z + 1.0 / 720; cp = cp * z - 1.0 / 24; cp = cp * z + 0.5;
        double cos = 1.0 - z * cp;
        double c = folded ? sin : cos, sn = folded ? cos : sin; // cos and sin of r pi/2
        return quadrant == 0 ? c : quadrant == 1 ? -sn : quadrant == 2 ? -c : sn;
    }
}

/// <summary>Random-fill kernels.</summary>
public sealed class RandomKernels : IKernelFamily<RandomKernels>
{
    internal readonly Action<AcceleratorStream, Index1D, ArrayView<float>, int, int, ulong, ulong, int> Fill;
    internal readonly Action<AcceleratorStream, Index1D, ArrayView<float>, ArrayView<ulong>, int, int, int, ulong> NormalPerRow;
    RandomKernels(Accelerator acc)
    {
        Fill = acc.LoadAutoGroupedKernel<Index1D, ArrayView<float>, int, int, ulong, ulong, int>(RandomKernels.FillKernel);
        NormalPerRow = acc.LoadAutoGroupedKernel<Index1D, ArrayView<float>, ArrayView<ulong>, int, int, int, ulong>(RandomKernels.NormalPerRowKernel);
    }
    /// <inheritdoc/>
    public static RandomKernels Load(EdmDevice device) => new(device.Accelerator);

    /// <summary>x[i] = normal ? Normal(seed, stream, i) : Uniform(seed, stream, i).</summary>
    public static void FillKernel(Index1D tid, ArrayView<float> x, int n, int stride, ulong seed, ulong stream, int normal)
    {
        for (int i = tid; i < n; i += stride)
            x[i] = normal != 0 ? Philox.Normal(seed, stream, (uint)i) : Philox.Uniform(seed, stream, (uint)i);
    }

    /// <summary>x[b, j] = Normal(seeds[b], stream, j) for rows of length rowLength.</summary>
    public static void NormalPerRowKernel(Index1D tid, ArrayView<float> x, ArrayView<ulong> seeds, int n, int rowLength, int stride, ulong stream)
    {
        for (int i = tid; i < n; i += stride)
        {
            int b = i / rowLength;
            x[i] = Philox.Normal(seeds[b], stream, (uint)(i - b * rowLength));
        }
    }
}


public static partial class Ops
{
    /// <summary>Fills x with uniform [0, 1) numbers keyed by (seed, stream, element index).</summary>
    public static void Uniform(Tensor x, ulong seed, ulong stream = 0) => RandomFill(x, seed, stream, normal: false);

    /// <summary>Fills x with standard normal numbers keyed by (seed, stream, element index).</summary>
    public static void Normal(Tensor x, ulong seed, ulong stream = 0) => RandomFill(x, seed, stream, normal: true);

    static void RandomFill(Tensor x, ulong seed, ulong stream, bool normal)
    {
        var dev = x.Device;
        int n = x.Length;
        if (dev.UseCpuFastPath)
        {
            CpuParallel.For(n, (s, c) =>
            {
                var xs = x.CpuSpan();
                for (int i = s; i < s + c; i++)
                    xs[i] = normal ? Philox.Normal(seed, stream, (uint)i) : Philox.Uniform(seed, stream, (uint)i);
            }, minChunk: 4096);
            return;
        }
        int t = dev.LaunchThreads(n);
        dev.Kernels<RandomKernels>().Fill(dev.Accelerator.DefaultStream, t, x.View, n, t, seed, stream, normal ? 1 : 0);
    }

    /// <summary>
    /// Fills x (B, ...) with standard normals where row b is keyed by seeds[b]: sample b gets the
    /// same numbers whatever batch it is generated in.
    /// </summary>
    public static void NormalPerSample(Tensor x, ulong[] seeds, ulong stream = 0)
    {
        if (x.Rank == 0 || seeds.Length != x.Shape[0])
            throw new ArgumentException($"NormalPerSample: {seeds.Length} seeds for a tensor of shape {x.ShapeString}; need one per row of axis 0");
        var dev = x.Device;
        int n = x.Length, row = n / x.Shape[0];
        if (dev.UseCpuFastPath)
        {
            CpuParallel.For(n, (s, c) =>
            {
                var xs = x.CpuSpan();
                for (int i = s; i < s + c; i++)
                {
                    int b = i / row;
                    xs[i] = Philox.Normal(seeds[b], stream, (uint)(i - b * row));
                }
            }, minChunk: 4096);
            return;
        }
        using var seedBuf = dev.Accelerator.Allocate1D(seeds);
        int t = dev.LaunchThreads(n);
        dev.Kernels<RandomKernels>().NormalPerRow(dev.Accelerator.DefaultStream, t, x.View, seedBuf.View, n, row, t, stream);
        dev.Synchronize(); // seedBuf is freed on return
    }
}

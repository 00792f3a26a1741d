// `verify` rows of the optimizer family (Edm.Kernels/Optimizers.cs) against the float64
// references in Edm.Verification/References/OptimizerReference.cs. On the CPU accelerator the plain
// C# fast path and, with verify --no-fast-paths, the ILGPU kernels are checked.
using Edm.Verification;
using Edm.Kernels;

namespace Edm.Verification;

/// <summary>Adam, EMA, nan_to_num and global norm against float64 references.</summary>
public sealed class OptimizerVerify : IVerifySuite
{
    /// <inheritdoc/>
    public string Family => "optimizers";

    /// <inheritdoc/>
    public IEnumerable<VerifyRow> Run(EdmDevice device)
    {
        // The ILGPU CPU accelerator runs kernels slowly (verify --no-fast-paths): small sizes there.
        int[] sizes = device.IsCpu && !device.CpuFastPaths ? [1, 257, 4099] : [1, 257, 100_003, 1 << 20];
        foreach (int n in sizes)
        {
            yield return Adam(device, n);
            yield return Ema(device, n);
            yield return NanToNum(device, n);
            yield return Norm(device, n);
        }
    }

    /// <summary>Five Adam steps with a changing learning rate; compares the parameters.</summary>
    public static VerifyRow Adam(EdmDevice device, int n, string tag = "")
    {
        var p0 = Compare.Random(n, 1);
        using var p = Tensor.FromArray(device, p0, n);
        using var m = Tensor.Zeros(device, n);
        using var v = Tensor.Zeros(device, n);
        using var g = Tensor.Zeros(device, n);
        var pr = p0.Select(x => (double)x).ToArray();
        var mr = new double[n];
        var vr = new double[n];
        for (int t = 1; t <= 5; t++)
        {
            var gh = Compare.Random(n, 100 + t, -2, 2);
            g.CopyFrom(gh);
            float lr = 1e-3f * t;  // ramp-up: the rate changes every step
            Ops.AdamStep(p, g, m, v, lr, 0.9f, 0.999f, 1e-8f, t);
            OptimizerReference.AdamStep(pr, gh, mr, vr, lr, 0.9, 0.999, 1e-8, t);
        }
        return Compare.Row("adam x5" + tag, $"({n})", p.ToArray(), pr, 1e-5);
    }

    /// <summary>One EMA update.</summary>
    public static VerifyRow Ema(EdmDevice device, int n, string tag = "")
    {
        var e0 = Compare.Random(n, 2);
        var ph = Compare.Random(n, 3);
        using var e = Tensor.FromArray(device, e0, n);
        using var p = Tensor.FromArray(device, ph, n);
        Ops.EmaUpdate([e], [p], 0.999f);
        var er = e0.Select(x => (double)x).ToArray();
        OptimizerReference.Ema(er, ph, 0.999f);
        return Compare.Row("ema" + tag, $"({n})", e.ToArray(), er, 1e-6);
    }

    /// <summary>nan_to_num on data salted with NaN and infinities.</summary>
    public static VerifyRow NanToNum(EdmDevice device, int n, string tag = "")
    {
        var x = Compare.Random(n, 4, -10, 10);
        for (int i = 0; i < n; i += 3) x[i] = (i / 3 % 3) switch { 0 => float.NaN, 1 => float.PositiveInfinity, _ => float.NegativeInfinity };
        using var t = Tensor.FromArray(device, x, n);
        Ops.NanToNumInPlace(t);
        return Compare.Row("nan_to_num" + tag, $"({n})", t.ToArray(), OptimizerReference.NanToNum(x), 0);
    }

    /// <summary>Global norm over three tensors of different sizes.</summary>
    public static VerifyRow Norm(EdmDevice device, int n, string tag = "")
    {
        var xs = new[] { Compare.Random(n, 5), Compare.Random(n / 2 + 1, 6, -3, 3), Compare.Random(7, 7) };
        var ts = xs.Select(x => Tensor.FromArray(device, x, x.Length)).ToArray();
        try
        {
            double got = Ops.GlobalNorm(ts);
            return Compare.Row("global_norm" + tag, $"({n})+({n / 2 + 1})+(7)", [(float)got], [OptimizerReference.GlobalNorm(xs)], 1e-6);
        }
        finally
        {
            foreach (var t in ts) t.Dispose();
        }
    }
}

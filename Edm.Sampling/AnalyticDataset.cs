// Analytic data distributions whose ideal denoiser D(x; sigma) is known in closed form
// (docs/formulas.md section 8): an isotropic Gaussian N(mu, s^2 I), an isotropic Gaussian mixture
// sum_k w_k N(mu_k, s_k^2 I), and a finite point set (the mixture with s_k = 0 and equal weights).
// Every parameter is a float32 value held as a double, so the float32 device denoisers and the
// float64 host reference see exactly the same distribution.
namespace Edm.Sampling;

/// <summary>The kind of analytic dataset.</summary>
public enum DatasetKind
{
    /// <summary>N(mu, s^2 I): exact ODE solution known.</summary>
    Gaussian,
    /// <summary>An isotropic Gaussian mixture.</summary>
    Mixture,
    /// <summary>The empirical distribution of a finite point set.</summary>
    Points,
}

/// <summary>An isotropic Gaussian mixture (K components in dimension D), the common form of all three datasets.</summary>
public sealed class AnalyticDataset
{
    /// <summary>Names of the dataset kinds as the CLI spells them.</summary>
    public static readonly string[] Names = ["gaussian", "mixture", "points"];

    /// <summary>Kind.</summary>
    public DatasetKind Kind { get; }
    /// <summary>Name ("gaussian", "mixture", "points").</summary>
    public string Name => Names[(int)Kind];
    /// <summary>Dimension D.</summary>
    public int Dim { get; }
    /// <summary>Component means mu_k, K x D row-major. // (K, D)</summary>
    public double[] Means { get; }
    /// <summary>Component variances s_k^2 (0 for points). // (K)</summary>
    public double[] Variances { get; }
    /// <summary>Component log weights ln w_k (normalised). // (K)</summary>
    public double[] LogWeights { get; }
    /// <summary>Number of components K.</summary>
    public int Count => Variances.Length;

    AnalyticDataset(DatasetKind kind, int dim, double[] means, double[] variances, double[] logWeights)
    {
        Kind = kind;
        Dim = dim;
        Means = means;
        Variances = variances;
        LogWeights = logWeights;
    }

    /// <summary>Parses a dataset name; throws listing the allowed ones.</summary>
    public static DatasetKind Parse(string name) =>
        Array.IndexOf(Names, name.Trim().ToLowerInvariant()) is int i and >= 0
            ? (DatasetKind)i
            : throw new ArgumentException($"unknown dataset '{name}'; allowed: {string.Join(", ", Names)}");

    /// <summary>N(mu, s^2 I) with the given mean (rounded to float32) and standard deviation.</summary>
    public static AnalyticDataset Gaussian(double[] mu, double std)
    {
        if (!(std > 0)) throw new ArgumentException($"Gaussian std = {std} is invalid; allowed: std > 0");
        return new(DatasetKind.Gaussian, mu.Length, mu.Select(F32).ToArray(), [F32(std) * F32(std)], [0]);
    }

    /// <summary>
    /// A reproducible dataset of a kind: gaussian N(mu, 0.5^2 I) with mu_e ~ N(0, 0.5^2);
    /// mixture of <paramref name="count"/> equally weighted components N(mu_k, 0.2^2 I), mu_k ~ N(0, I);
    /// points: <paramref name="count"/> points y_k ~ N(0, 0.5^2 I). All from <see cref="DetRandom"/>.
    /// </summary>
    public static AnalyticDataset Create(DatasetKind kind, int dim, int count, ulong seed = 1)
    {
        if (dim < 1) throw new ArgumentException($"dimension {dim} is invalid; allowed: dim >= 1");
        if (count < 1) throw new ArgumentException($"count {count} is invalid; allowed: count >= 1");
        switch (kind)
        {
            case DatasetKind.Gaussian:
            {
                var mu = new double[dim];
                for (int e = 0; e < dim; e++) mu[e] = 0.5 * DetRandom.Normal(seed, 101, e);
                return Gaussian(mu, 0.5);
            }
            case DatasetKind.Mixture:
            case DatasetKind.Points:
            {
                double scale = kind == DatasetKind.Mixture ? 1.0 : 0.5;
                var means = new double[(long)count * dim];
                for (long i = 0; i < means.Length; i++) means[i] = F32(scale * DetRandom.Normal(seed, 102, i));
                double var = kind == DatasetKind.Mixture ? F32(0.2) * F32(0.2) : 0;
                var variances = Enumerable.Repeat(var, count).ToArray();
                var logW = Enumerable.Repeat(-Math.Log(count), count).ToArray();
                return new(kind, dim, means, variances, logW);
            }
            default:
                throw new ArgumentException($"unknown dataset kind {kind}");
        }
    }

    /// <summary>
    /// Unit-normal latents for samples with seeds seeds[b], as float32 values held in doubles:
    /// element e of sample b is <see cref="DetRandom.Normal"/>(seeds[b], 0, e). // (B, D)
    /// </summary>
    public double[] Latents(ulong[] seeds)
    {
        var z = new double[(long)seeds.Length * Dim];
        for (int b = 0; b < seeds.Length; b++)
            for (int e = 0; e < Dim; e++) z[(long)b * Dim + e] = F32(DetRandom.Normal(seeds[b], 0, e));
        return z;
    }

    /// <summary>Standard deviation of the data per element, sqrt(E||y - E y||^2 / D).</summary>
    public double DataStd()
    {
        int k = Count, d = Dim;
        var mean = new double[d];
        for (int c = 0; c < k; c++)
            for (int e = 0; e < d; e++) mean[e] += Math.Exp(LogWeights[c]) * Means[c * d + e];
        double v = 0;
        for (int c = 0; c < k; c++)
        {
            double w = Math.Exp(LogWeights[c]), dist = 0;
            for (int e = 0; e < d; e++) { double t = Means[c * d + e] - mean[e]; dist += t * t; }
            v += w * (dist / d + Variances[c]);
        }
        return Math.Sqrt(v);
    }

    static double F32(double v) => (float)v;
}

/// <summary>
/// A counter-based deterministic random source for host-side data (datasets, latents of the
/// bench): value (seed, stream, index) is a pure function, so host and device runs can share it.
/// SplitMix64 finalizer for the bits, Box-Muller for the normal.
/// </summary>
public static class DetRandom
{
    static ulong Mix(ulong z)
    {
        z += 0x9E3779B97F4A7C15UL;
        z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9UL;
        z = (z ^ (z >> 27)) * 0x94D049BB133111EBUL;
        return z ^ (z >> 31);
    }

    /// <summary>A uniform double in (0, 1) for (seed, stream, index).</summary>
    public static double Uniform(ulong seed, ulong stream, long index, int lane = 0)
    {
        ulong h = Mix(Mix(Mix(seed) ^ stream) ^ (ulong)index);
        h = Mix(h ^ (ulong)lane);
        return ((h >> 11) + 0.5) * (1.0 / (1UL << 53));
    }

    /// <summary>A standard normal for (seed, stream, index) by Box-Muller.</summary>
    public static double Normal(ulong seed, ulong stream, long index)
    {
        double u1 = Uniform(seed, stream, index, 0), u2 = Uniform(seed, stream, index, 1);
        return Math.Sqrt(-2 * Math.Log(u1)) * Math.Cos(2 * Math.PI * u2);
    }
}

// The Frechet distance between two Gaussians fitted to feature vectors: the FID of Heusel et al.
// 2017 when the features are Inception-v3 pool3 activations (the paper's Fig. 2 and Table 2 are in
// FID), and the same statistic over any feature network.
//   FD = |mu1 - mu2|^2 + tr(S1) + tr(S2) - 2 tr((S1 S2)^(1/2))
// computed in float64. tr((S1 S2)^(1/2)) is the sum of the square roots of the eigenvalues of
// S1^(1/2) S2 S1^(1/2), which is symmetric positive semi-definite (S1 S2 itself is not symmetric),
// so both steps are symmetric eigen-decompositions (MathNet.Numerics): S1^(1/2) = V diag(sqrt l) V^T.
// Eigenvalues below zero are rounding (the matrices are PSD); they are clipped to 0 and counted, so
// a caller can report when that happened (singular covariances, fewer images than features), and
// eigenvalues within d x eps of zero (relative to the largest) count as zero.
// Statistics: mu = mean of the rows, S = the unbiased covariance (ddof 1, as numpy.cov), the layout
// of NVlabs/edm's reference .npz files (float64 "mu" (D) and "sigma" (D, D)).
using Edm.Model.IO;
using MathNet.Numerics.LinearAlgebra;

namespace Edm.Model.Metrics;

/// <summary>The mean and covariance of a set of feature vectors (float64).</summary>
/// <param name="Mu">Mean (D).</param>
/// <param name="Sigma">Covariance (D, D), row-major.</param>
/// <param name="Dim">Feature dimension D.</param>
public sealed record FeatureStatistics(double[] Mu, double[] Sigma, int Dim)
{
    /// <summary>Statistics of <paramref name="count"/> rows of <paramref name="dim"/> features (row-major).</summary>
    public static FeatureStatistics Of(ReadOnlySpan<float> features, int count, int dim)
    {
        if (dim < 1) throw new ArgumentException($"FeatureStatistics: feature dimension {dim} must be >= 1");
        if (count < 2) throw new ArgumentException($"FeatureStatistics: {count} feature vector(s); a covariance needs at least 2");
        if (features.Length != (long)count * dim) throw new ArgumentException($"FeatureStatistics: {features.Length} values, expected {count} x {dim}");
        var mu = new double[dim];
        for (int n = 0; n < count; n++)
            for (int i = 0; i < dim; i++) mu[i] += features[n * dim + i];
        for (int i = 0; i < dim; i++) mu[i] /= count;
        var centred = Matrix<double>.Build.Dense(count, dim);
        for (int n = 0; n < count; n++)
            for (int i = 0; i < dim; i++) centred[n, i] = features[n * dim + i] - mu[i];
        var cov = centred.TransposeThisAndMultiply(centred) / (count - 1);
        return new FeatureStatistics(mu, cov.ToRowMajorArray(), dim);
    }

    /// <summary>Writes "mu" and "sigma" as float64 arrays in a .npz (NVlabs/edm's reference layout).</summary>
    public void Save(string path) => Npz.Write(path, new Dictionary<string, Npz.NdArray>
    {
        ["mu"] = new([Dim], Mu),
        ["sigma"] = new([Dim, Dim], Sigma),
    });

    /// <summary>Reads a reference .npz: "mu" (D) and "sigma" (D, D), finite; throws <see cref="InvalidDataException"/> naming what is wrong.</summary>
    public static FeatureStatistics Load(string path)
    {
        var arrays = Npz.Read(path);
        if (!arrays.TryGetValue("mu", out var mu) || !arrays.TryGetValue("sigma", out var sigma))
            throw new InvalidDataException($"'{path}' lacks the arrays 'mu' and 'sigma' (has: {string.Join(", ", arrays.Keys.Order())}); not FID reference statistics");
        if (mu.Shape.Length != 1) throw new InvalidDataException($"'{path}': mu has shape ({string.Join(", ", mu.Shape)}), expected (D)");
        int d = mu.Shape[0];
        if (sigma.Shape.Length != 2 || sigma.Shape[0] != d || sigma.Shape[1] != d)
            throw new InvalidDataException($"'{path}': sigma has shape ({string.Join(", ", sigma.Shape)}), expected ({d}, {d}) to match mu");
        if (mu.Data.Any(v => !double.IsFinite(v)) || sigma.Data.Any(v => !double.IsFinite(v)))
            throw new InvalidDataException($"'{path}': mu or sigma holds a non-finite value");
        return new FeatureStatistics(mu.Data, sigma.Data, d);
    }
}

/// <summary>A Frechet distance and how many eigenvalues had to be clipped to zero to compute it.</summary>
/// <param name="Distance">The Frechet distance (float64).</param>
/// <param name="ClippedEigenvalues">Negative eigenvalues (rounding of singular or near-singular covariances) set to 0.</param>
/// <param name="LargestClipped">The most negative of them relative to the largest eigenvalue (0 when none).</param>
public sealed record FrechetResult(double Distance, int ClippedEigenvalues, double LargestClipped);

/// <summary>The Frechet distance between Gaussians N(mu1, S1) and N(mu2, S2).</summary>
public static class FrechetDistance
{
    /// <summary>FD of two feature statistics of one dimension.</summary>
    public static FrechetResult Compute(FeatureStatistics a, FeatureStatistics b)
    {
        if (a.Dim != b.Dim)
            throw new ArgumentException($"FrechetDistance: the statistics have {a.Dim} and {b.Dim} features; both must come from the same feature network");
        int d = a.Dim;
        var s1 = Matrix<double>.Build.DenseOfRowMajor(d, d, a.Sigma);
        var s2 = Matrix<double>.Build.DenseOfRowMajor(d, d, b.Sigma);
        double meanTerm = 0;
        for (int i = 0; i < d; i++) meanTerm += (a.Mu[i] - b.Mu[i]) * (a.Mu[i] - b.Mu[i]);
        int clipped = 0;
        double worst = 0;
        var root1 = SymmetricSqrt(Symmetrise(s1), ref clipped, ref worst);
        var m = Symmetrise(root1 * s2 * root1);
        var evd = m.Evd(Symmetricity.Symmetric);
        double scale = Math.Max(evd.EigenValues.Real().Maximum(), double.Epsilon), floor = RoundingFloor(scale, d);
        double traceRoot = 0;
        foreach (var l in evd.EigenValues.Real())
        {
            if (l < 0) { clipped++; worst = Math.Min(worst, l / scale); }
            if (l > floor) traceRoot += Math.Sqrt(l);
        }
        double fd = meanTerm + s1.Trace() + s2.Trace() - 2 * traceRoot;
        return new FrechetResult(fd, clipped, worst);
    }

    static Matrix<double> Symmetrise(Matrix<double> m) => (m + m.Transpose()) / 2;

    /// <summary>
    /// Eigenvalues at or below d x eps x the largest are rounding of zero (a singular covariance) and
    /// are taken as 0: their square roots (about sqrt(eps)) would otherwise add up to a visible bias.
    /// </summary>
    static double RoundingFloor(double largest, int d) => largest * d * (Math.BitIncrement(1.0) - 1.0);

    /// <summary>V diag(sqrt(max(l, 0))) V^T of a symmetric matrix, counting the clipped eigenvalues.</summary>
    static Matrix<double> SymmetricSqrt(Matrix<double> s, ref int clipped, ref double worst)
    {
        var evd = s.Evd(Symmetricity.Symmetric);
        var l = evd.EigenValues.Real();
        double scale = Math.Max(l.Maximum(), double.Epsilon), floor = RoundingFloor(scale, l.Count);
        var root = Vector<double>.Build.Dense(l.Count, i => l[i] > floor ? Math.Sqrt(l[i]) : 0);
        for (int i = 0; i < l.Count; i++)
            if (l[i] < 0) { clipped++; worst = Math.Min(worst, l[i] / scale); }
        var v = evd.EigenVectors;
        return v * Matrix<double>.Build.DenseOfDiagonalVector(root) * v.Transpose();
    }
}

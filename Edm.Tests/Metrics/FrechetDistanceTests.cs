using System.IO.Compression;
using System.Text;
using Edm.Model.IO;
using Edm.Model.Metrics;
using Edm.Tests.Data;
using Xunit;

namespace Edm.Tests.Metrics;

// The Frechet distance against closed forms, and the .npz files NVlabs/edm's reference statistics
// use, byte for byte against .npy files written by hand from NumPy's format description.
public sealed class FrechetDistanceTests
{
    static FeatureStatistics Diagonal(double[] mu, double[] variances)
    {
        int d = mu.Length;
        var sigma = new double[d * d];
        for (int i = 0; i < d; i++) sigma[i * d + i] = variances[i];
        return new FeatureStatistics(mu, sigma, d);
    }

    static float[] Gaussian(int n, int d, int seed, double shift = 0, double scale = 1)
    {
        var rng = new Random(seed);
        var x = new float[n * d];
        for (int i = 0; i < x.Length; i++)
        {
            double u1 = 1 - rng.NextDouble(), u2 = rng.NextDouble();
            x[i] = (float)(shift + scale * Math.Sqrt(-2 * Math.Log(u1)) * Math.Cos(2 * Math.PI * u2) * (1 + (i % d) * 0.1));
        }
        return x;
    }

    [Fact]
    public void Known_gaussians_give_the_closed_form()
    {
        // Commuting (diagonal) covariances: FD = |mu1 - mu2|^2 + sum_i (sqrt(a_i) - sqrt(b_i))^2.
        var a = Diagonal([0, 1, 2], [1, 4, 9]);
        var b = Diagonal([1, 1, 0], [4, 1, 0.25]);
        double expected = (1 + 0 + 4) + Math.Pow(1 - 2, 2) + Math.Pow(2 - 1, 2) + Math.Pow(3 - 0.5, 2);
        var r = FrechetDistance.Compute(a, b);
        Assert.Equal(expected, r.Distance, 1e-10);
        Assert.Equal(0, r.ClippedEigenvalues);
        // A rotated pair (non-commuting): S1 = R diag(1, 4) R^T vs S2 = diag(1, 4) gives tr((S1 S2)^(1/2)) from
        // the 2x2 formula sqrt(tr(M) + 2 sqrt(det M)) with M = S1 S2 (det M >= 0).
        double c = Math.Cos(0.3), s = Math.Sin(0.3);
        double[] s1 = [c * c * 1 + s * s * 4, c * s * (1 - 4), c * s * (1 - 4), s * s * 1 + c * c * 4];
        var rotated = new FeatureStatistics([0, 0], s1, 2);
        var axis = Diagonal([0, 0], [1, 4]);
        double m00 = s1[0] * 1, m01 = s1[1] * 4, m10 = s1[2] * 1, m11 = s1[3] * 4;
        double traceRoot = Math.Sqrt(m00 + m11 + 2 * Math.Sqrt(m00 * m11 - m01 * m10));
        Assert.Equal(5 + 5 - 2 * traceRoot, FrechetDistance.Compute(rotated, axis).Distance, 1e-10);
    }

    [Fact]
    public void Distance_to_itself_is_zero_and_the_distance_is_symmetric()
    {
        var a = FeatureStatistics.Of(Gaussian(500, 6, 1), 500, 6);
        var b = FeatureStatistics.Of(Gaussian(400, 6, 2, shift: 0.3, scale: 1.2), 400, 6);
        Assert.InRange(FrechetDistance.Compute(a, a).Distance, -1e-9, 1e-9);
        Assert.Equal(FrechetDistance.Compute(a, b).Distance, FrechetDistance.Compute(b, a).Distance, 1e-9);
        Assert.True(FrechetDistance.Compute(a, b).Distance > 0.1);
        Assert.Throws<ArgumentException>(() => FrechetDistance.Compute(a, Diagonal([0, 0], [1, 1])));
    }

    [Fact]
    public void Singular_covariances_from_fewer_samples_than_features_stay_finite_and_are_reported()
    {
        // 5 samples of 12 features: rank-4 covariances, their square roots through clipped eigenvalues.
        var a = FeatureStatistics.Of(Gaussian(5, 12, 3), 5, 12);
        var b = FeatureStatistics.Of(Gaussian(5, 12, 4), 5, 12);
        var self = FrechetDistance.Compute(a, a);
        double trace = Enumerable.Range(0, 12).Sum(i => a.Sigma[i * 12 + i]);
        Assert.InRange(self.Distance, -1e-9 * trace, 1e-9 * trace);
        var r = FrechetDistance.Compute(a, b);
        Assert.True(double.IsFinite(r.Distance) && r.Distance > 0);
        Assert.True(r.ClippedEigenvalues >= 0);
        Assert.InRange(r.LargestClipped, -1e-8, 0);
    }

    [Fact]
    public void Statistics_are_the_mean_and_unbiased_covariance()
    {
        float[] x = [1, 2, 3, 6, 5, 10];  // 3 rows of 2
        var s = FeatureStatistics.Of(x, 3, 2);
        Assert.Equal([3, 6], s.Mu);
        // columns (1, 3, 5) and (2, 6, 10): var 4 and 16, cov 8 (ddof 1, as numpy.cov)
        Assert.Equal([4, 8, 8, 16], s.Sigma.Select(v => Math.Round(v, 12)));
    }

    static byte[] HandMadeNpy(string shape, double[] values)
    {
        // NumPy format 1.0: magic, version, uint16 header length, the dict padded with spaces to a
        // 64-byte boundary and ended by a newline, then little-endian float64 values.
        string dict = "{'descr': '<f8', 'fortran_order': False, 'shape': " + shape + ", }";
        int pad = 64 - (10 + dict.Length + 1) % 64;
        if (pad == 64) pad = 0;
        string header = dict + new string(' ', pad) + "\n";
        var bytes = new List<byte> { 0x93 };
        bytes.AddRange(Encoding.ASCII.GetBytes("NUMPY"));
        bytes.AddRange([1, 0, (byte)(header.Length & 0xFF), (byte)(header.Length >> 8)]);
        bytes.AddRange(Encoding.ASCII.GetBytes(header));
        foreach (var v in values) bytes.AddRange(BitConverter.GetBytes(v));
        return bytes.ToArray();
    }

    [Fact]
    public void Npz_files_hold_npy_entries_as_numpy_writes_them()
    {
        using var tmp = new TempDir();
        var stats = new FeatureStatistics([0.5, -1.25], [2, 0.1, 0.1, 3], 2);
        var path = tmp["ref.npz"];
        stats.Save(path);
        using (var zip = ZipFile.OpenRead(path))
        {
            Assert.Equal(["mu.npy", "sigma.npy"], zip.Entries.Select(e => e.FullName).Order());
            byte[] Entry(string name) { using var s = zip.GetEntry(name)!.Open(); using var ms = new MemoryStream(); s.CopyTo(ms); return ms.ToArray(); }
            Assert.Equal(HandMadeNpy("(2,)", [0.5, -1.25]), Entry("mu.npy"));
            Assert.Equal(HandMadeNpy("(2, 2)", [2, 0.1, 0.1, 3]), Entry("sigma.npy"));
        }
        var back = FeatureStatistics.Load(path);
        Assert.Equal(stats.Mu, back.Mu);
        Assert.Equal(stats.Sigma, back.Sigma);
        // A hand-made archive (deflated, as numpy.savez_compressed writes) loads too.
        var other = tmp["other.npz"];
        using (var zip = ZipFile.Open(other, ZipArchiveMode.Create))
        {
            foreach (var (name, shape, values) in new[] { ("mu", "(2,)", new[] { 1.0, 2.0 }), ("sigma", "(2, 2)", new[] { 1.0, 0, 0, 1 }) })
            {
                using var s = zip.CreateEntry(name + ".npy", CompressionLevel.Optimal).Open();
                s.Write(HandMadeNpy(shape, values));
            }
        }
        Assert.Equal([1.0, 2.0], FeatureStatistics.Load(other).Mu);
    }

    [Fact]
    public void The_cli_compares_two_files_and_refuses_mismatched_or_broken_ones()
    {
        using var tmp = new TempDir();
        var a = tmp["a.npz"];
        var b = tmp["b.npz"];
        Diagonal([0, 1, 2], [1, 4, 9]).Save(a);
        Diagonal([1, 1, 0], [4, 1, 0.25]).Save(b);
        var (code, output, err) = CliProcess.Run("fid", "compare", a, b);
        Assert.True(code == 0, err);
        Assert.Equal(13.25, double.Parse(output.Trim(), System.Globalization.CultureInfo.InvariantCulture), 1e-6);
        var four = tmp["four.npz"];
        Diagonal([0, 0, 0, 0], [1, 1, 1, 1]).Save(four);
        (code, _, err) = CliProcess.Run("fid", "compare", a, four);
        Assert.Equal(2, code);
        Assert.Contains("3 features", err);
        var notNpz = tmp["x.npz"];
        File.WriteAllText(notNpz, "not a zip");
        (code, _, err) = CliProcess.Run("fid", "compare", a, notNpz);
        Assert.Equal(2, code);
        Assert.StartsWith("error:", err);
        var noSigma = tmp["mu-only.npz"];
        Npz.Write(noSigma, new Dictionary<string, Npz.NdArray> { ["mu"] = new([3], [0, 0, 0]) });
        (code, _, err) = CliProcess.Run("fid", "compare", a, noSigma);
        Assert.Equal(2, code);
        Assert.Contains("'mu' and 'sigma'", err);
    }
}

// `fid compare A.npz B.npz`: the Frechet distance between two feature statistics files (float64
// "mu" and "sigma", the layout of NVlabs/edm's fid.py reference files), computed in float64 with
// symmetric eigen-decompositions (Edm.Model/Metrics/FrechetDistance.cs). It reports when negative
// eigenvalues (rounding of singular covariances) were clipped to zero.
// The feature networks that make such files from images (`fid ref`, `fid calc`) are not built yet.
using System.CommandLine;
using System.Globalization;
using Edm.Model.Metrics;

namespace Edm.Bench.Cli;

/// <summary>The fid command.</summary>
public sealed class FidCommand : IBenchCommand
{
    /// <inheritdoc/>
    public Command Build()
    {
        var a = new Argument<string>("A.npz") { Description = "Feature statistics (mu, sigma), e.g. a reference .npz" };
        var b = new Argument<string>("B.npz") { Description = "Feature statistics of the same feature network" };
        var compare = new Command("compare", "Frechet distance between two feature statistics files (.npz with float64 mu and sigma)");
        compare.Arguments.Add(a);
        compare.Arguments.Add(b);
        compare.SetAction(p => CliErrors.Guard(() =>
        {
            var sa = Load(p.GetValue(a)!);
            var sb = Load(p.GetValue(b)!);
            if (sa.Dim != sb.Dim)
                throw new UsageException($"'{p.GetValue(a)}' has {sa.Dim} features and '{p.GetValue(b)}' has {sb.Dim}; both must come from the same feature network");
            var r = FrechetDistance.Compute(sa, sb);
            Console.WriteLine(r.Distance.ToString("F6", CultureInfo.InvariantCulture));
            if (r.ClippedEigenvalues > 0)
                Console.Error.WriteLine($"note: {r.ClippedEigenvalues} negative eigenvalue(s) clipped to 0 (the most negative {r.LargestClipped:E2} of the largest): singular covariances, e.g. fewer images than features");
            return 0;
        }));
        var cmd = new Command("fid", "Frechet distance of feature statistics (FID with Inception features)");
        cmd.Subcommands.Add(compare);
        return cmd;
    }

    static FeatureStatistics Load(string path)
    {
        try { return FeatureStatistics.Load(path); }
        catch (InvalidDataException e) { throw new UsageException(e.Message); }
    }
}

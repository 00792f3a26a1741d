// Outputs of `fig2`: the CSV (one row per point), the printed table (one row per formulation and
// chain step, one column per NFE) and the plot in the layout of the paper's Fig. 2: one panel per
// formulation, FID against NFE on log scales, one line per chain step and EDM's sampler in each panel.
using System.Globalization;
using System.Text;
using Edm.Sampling;
using ScottPlot;

namespace Edm.Bench.Cli;

/// <summary>One measured point of the Fig. 2 study.</summary>
/// <param name="Formulation">VP, VE, iDDPM or EDM (<see cref="Fig2Variant.Formulation"/>).</param>
/// <param name="Sampler">The chain step's id (<see cref="Fig2Variant.Sampler"/>).</param>
/// <param name="RequestedNfe">The --nfe value the point belongs to.</param>
/// <param name="Steps">Sampler steps N.</param>
/// <param name="Nfe">Denoiser evaluations actually made (Heun: 2N - 1, one below an even request).</param>
/// <param name="Images">Images the FID was computed from.</param>
/// <param name="Fid">The Frechet distance to the reference statistics.</param>
public sealed record Fig2Point(string Formulation, string Sampler, int RequestedNfe, int Steps, int Nfe, int Images, double Fid);

/// <summary>Writes and prints the results of a fig2 run.</summary>
public static class Fig2Report
{
    static readonly string[] Order = [.. Fig2Chain.Formulations, Fig2Chain.Edm];

    // Rows in the paper's order: VP, VE, iDDPM (each chain in order), then EDM; NFE ascending.
    static IEnumerable<Fig2Point> Sorted(IEnumerable<Fig2Point> points) => points
        .OrderBy(p => Array.IndexOf(Order, p.Formulation))
        .ThenBy(p => p.Sampler == Fig2Chain.EdmSampler ? 0 : Array.IndexOf(Fig2Chain.Samplers, p.Sampler))
        .ThenBy(p => p.RequestedNfe);

    /// <summary>The CSV text: formulation, sampler, steps, nfe (actually used), images, fid.</summary>
    public static string Csv(IEnumerable<Fig2Point> points)
    {
        var sb = new StringBuilder("formulation,sampler,steps,nfe,images,fid\n");
        foreach (var p in Sorted(points))
            sb.Append(CultureInfo.InvariantCulture, $"{p.Formulation},{p.Sampler},{p.Steps},{p.Nfe},{p.Images},{p.Fid:F6}\n");
        return sb.ToString();
    }

    /// <summary>The printed table: FID per formulation and chain step (rows) and requested NFE (columns).</summary>
    public static string Table(IReadOnlyList<Fig2Point> points, int[] nfes)
    {
        var sb = new StringBuilder();
        sb.Append($"{"formulation",-11} {"sampler",-21}");
        foreach (int n in nfes) sb.Append($" {"NFE=" + n,9}");
        sb.Append('\n');
        bool reduced = false;
        foreach (var g in Sorted(points).GroupBy(p => (p.Formulation, p.Sampler)))
        {
            sb.Append($"{g.Key.Formulation,-11} {Fig2Chain.Label(g.Key.Sampler),-21}");
            foreach (int n in nfes)
            {
                var p = g.FirstOrDefault(q => q.RequestedNfe == n);
                bool mark = p is not null && p.Nfe != n;
                reduced |= mark;
                sb.Append(p is null ? $" {"",9}" : $" {p.Fid.ToString("F2", CultureInfo.InvariantCulture) + (mark ? "*" : ""),9}");
            }
            sb.Append('\n');
        }
        if (reduced) sb.Append("(* Heun at an even NFE: N = NFE / 2 steps, 2N - 1 = NFE - 1 evaluations)\n");
        return sb.ToString();
    }

    // The axes hold log10 values; ticks sit at the given values and are labelled with them.
    static void LogTicks(ScottPlot.IAxis axis, IEnumerable<double> values)
    {
        var ticks = new ScottPlot.TickGenerators.NumericManual();
        foreach (double v in values) ticks.AddMajor(Math.Log10(v), v.ToString("G4", CultureInfo.InvariantCulture));
        axis.TickGenerator = ticks;
    }

    // 1, 2, 5, 10, 20, 50, ... covering [10^lo, 10^hi] (to the axis' padding of 0.1); 1, 1.5, 2, 3, ...
    // when the range is under a decade and a half, so that a narrow panel still has several ticks.
    static IEnumerable<double> OneTwoFive(double lo, double hi)
    {
        double[] mantissas = hi - lo >= 1.5 ? [1, 2, 5] : [1, 1.5, 2, 3, 4, 5, 6, 7, 8, 9];
        for (int e = (int)Math.Floor(lo) - 1; e <= (int)Math.Ceiling(hi); e++)
            foreach (double m in mantissas)
                if (Math.Log10(m) + e >= lo - 0.1 && Math.Log10(m) + e <= hi + 0.1) yield return m * Math.Pow(10, e);
    }

    /// <summary>
    /// The figure: three panels side by side (VP, VE, iDDPM), log10 FID against log10 NFE (the NFE
    /// actually used), one line per chain step and EDM's sampler (dashed) in each; the same FID
    /// range in every panel.
    /// </summary>
    public static void WritePlot(string path, IReadOnlyList<Fig2Point> points, int[] nfes, int images)
    {
        var shown = points.Where(p => p.Fid > 0 && double.IsFinite(p.Fid)).ToList();
        var multiplot = new Multiplot();
        multiplot.AddPlots(Fig2Chain.Formulations.Length);
        multiplot.Layout = new ScottPlot.MultiplotLayouts.Columns();
        double lo = shown.Count > 0 ? Math.Log10(shown.Min(p => p.Fid)) : 0, hi = shown.Count > 0 ? Math.Log10(shown.Max(p => p.Fid)) : 1;
        var palette = new ScottPlot.Palettes.Category10();
        for (int f = 0; f < Fig2Chain.Formulations.Length; f++)
        {
            var plt = multiplot.GetPlot(f);
            string formulation = Fig2Chain.Formulations[f];
            void Line(string form, string sampler, Color color, bool dashed)
            {
                var pts = shown.Where(p => p.Formulation == form && p.Sampler == sampler).OrderBy(p => p.Nfe).ToArray();
                if (pts.Length == 0) return;
                var sc = plt.Add.Scatter(pts.Select(p => Math.Log10(p.Nfe)).ToArray(), pts.Select(p => Math.Log10(p.Fid)).ToArray(), color);
                sc.LegendText = Fig2Chain.Label(sampler);
                sc.MarkerSize = dashed ? 4 : 7;
                sc.LineWidth = 2;
                if (dashed) sc.LinePattern = LinePattern.Dashed;
            }
            for (int s = 0; s < Fig2Chain.Samplers.Length; s++) Line(formulation, Fig2Chain.Samplers[s], palette.GetColor(s), false);
            Line(Fig2Chain.Edm, Fig2Chain.EdmSampler, Colors.Black, true);
            LogTicks(plt.Axes.Bottom, nfes.Select(n => (double)n));
            LogTicks(plt.Axes.Left, OneTwoFive(lo, hi));
            plt.Axes.SetLimitsY(lo - 0.1, hi + 0.1);
            plt.XLabel("NFE (log scale)");
            plt.YLabel("FID (log scale)");
            plt.Title($"{formulation} ({images} images)");
            plt.ShowLegend(Alignment.LowerLeft);  // FID falls with NFE: the lower left is the emptiest corner
        }
        // A temporary name that still ends in .png, then a rename: a reader never sees half a file.
        string full = Path.GetFullPath(path), tmp = Path.Combine(Path.GetDirectoryName(full)!, $".fig2.tmp-{Environment.ProcessId}.png");
        multiplot.SavePng(tmp, 1800, 600);
        File.Move(tmp, full, overwrite: true);
    }
}

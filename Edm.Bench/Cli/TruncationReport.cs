// Outputs of the truncation bench: the printed tables, summary.json, CSV per curve and the PNG
// plots (ScottPlot 5: log10 of the values on linear axes with log-style tick labels).
using System.Globalization;
using System.Text;
using System.Text.Json;
using ScottPlot;

namespace Edm.Verification;

/// <summary>Writes and prints the results of a truncation run.</summary>
public static class TruncationReport
{
    static string G(double v) => v.ToString("0.00e+0", CultureInfo.InvariantCulture);

    /// <summary>The global-error table (one row per dataset/solver/discretization, one column per N), the orders, a local-error digest.</summary>
    public static string Table(CurveSet set, IReadOnlyList<OrderRow> orders)
    {
        var sb = new StringBuilder();
        var steps = set.Global.Select(p => p.Steps).Distinct().Order().ToArray();
        if (steps.Length > 0)
        {
            sb.Append("Global error: RMS |x_N - x_ref(0)| (NFE = N for euler, euler_ancestral, dpmpp_2m, lms; 2N-1 for heun, midpoint, ralston, dpm_2)\n");
            sb.Append($"{"dataset",-9} {"solver",-15} {"disc",-6}");
            foreach (int n in steps) sb.Append($" {"N=" + n,10}");
            sb.Append($" {"order",7}\n");
            foreach (var g in set.Global.GroupBy(p => (p.Dataset, p.Solver, p.Discretization)))
            {
                sb.Append($"{g.Key.Dataset,-9} {g.Key.Solver,-15} {g.Key.Discretization,-6}");
                foreach (int n in steps)
                {
                    var p = g.FirstOrDefault(q => q.Steps == n);
                    sb.Append(p is null ? $" {"",10}" : $" {G(p.RmsError) + (p.RmsError > p.Floor ? "" : "*"),10}");
                }
                var o = orders.FirstOrDefault(r => r.Dataset == g.Key.Dataset && r.Solver == g.Key.Solver && r.Discretization == g.Key.Discretization);
                sb.Append(o is null ? $" {"-",7}\n" : $" {o.Order,7:F2}\n");
            }
            sb.Append("(* = below the float32 floor; order = -slope of ln error vs ln NFE over the largest 3 N above the floor)\n");
        }
        if (set.Local.Count > 0)
        {
            sb.Append("\nLocal error (one step from the exact trajectory), edm discretization: min / max over the steps i < N-1, and max/min ratio\n");
            sb.Append($"{"dataset",-9} {"solver",-8} {"rho",5} {"min",10} {"max",10} {"ratio",10}\n");
            foreach (var g in set.Local.GroupBy(p => (p.Dataset, p.Solver, p.Rho)))
            {
                // The last step (to sigma = 0) is Euler for every solver; leave it out of the digest.
                var pts = g.Where(p => p.Step < g.Max(q => q.Step)).ToList();
                if (pts.Count == 0) continue;
                double min = pts.Min(p => p.Error), max = pts.Max(p => p.Error);
                sb.Append($"{g.Key.Dataset,-9} {g.Key.Solver,-8} {g.Key.Rho,5:G3} {G(min),10} {G(max),10} {G(max / min),10}\n");
            }
        }
        return sb.ToString();
    }

    /// <summary>Writes summary.json (schema of issue 5).</summary>
    public static string WriteSummary(string folder, string device, CurveSet set, IReadOnlyList<OrderRow> orders, ReferenceComparison? cmp, string? referenceNote, TruncationConfig cfg, double seconds)
    {
        var doc = new Dictionary<string, object?>
        {
            ["device"] = device,
            ["config"] = new Dictionary<string, object>
            {
                ["datasets"] = cfg.Datasets, ["dim"] = cfg.Dim, ["count"] = cfg.Count, ["batch"] = cfg.Batch, ["seed"] = cfg.Seed,
                ["sigma_min"] = cfg.SigmaMin, ["sigma_max"] = cfg.SigmaMax, ["local_steps"] = cfg.LocalSteps, ["floor_factor"] = cfg.FloorFactor,
                ["stochastic_note"] = "euler_ancestral runs at eta = 0 (its deterministic limit, equal to Euler); churn is 0",
            },
            ["global"] = set.Global.Select(p => new Dictionary<string, object>
            {
                ["dataset"] = p.Dataset, ["solver"] = p.Solver, ["discretization"] = p.Discretization, ["rho"] = p.Rho,
                ["steps"] = p.Steps, ["nfe"] = p.Nfe, ["rms_error"] = p.RmsError, ["floor"] = p.Floor,
            }).ToList(),
            ["order"] = orders.Select(o => new Dictionary<string, object>
            {
                ["dataset"] = o.Dataset, ["solver"] = o.Solver, ["discretization"] = o.Discretization, ["order"] = o.Order,
                ["from_steps"] = o.FromSteps, ["to_steps"] = o.ToSteps,
            }).ToList(),
            ["local"] = set.Local.Select(p => new Dictionary<string, object>
            {
                ["dataset"] = p.Dataset, ["solver"] = p.Solver, ["rho"] = p.Rho, ["step"] = p.Step, ["sigma"] = p.Sigma,
                ["error"] = p.Error, ["floor"] = p.Floor,
            }).ToList(),
            ["reference_max_rel_deviation"] = cmp?.MaxRelDeviation,
            ["reference_compared_points"] = cmp?.Compared,
            ["reference_worst_point"] = cmp?.Worst,
            ["reference_below_floor"] = cmp?.BelowFloor,
            ["reference_note"] = referenceNote,
            ["seconds"] = seconds,
        };
        string path = Path.Combine(folder, "summary.json");
        File.WriteAllText(path, JsonSerializer.Serialize(doc, new JsonSerializerOptions { WriteIndented = true }));
        return path;
    }

    /// <summary>PNG plots: global error vs NFE per dataset (log-log), local error vs sigma per dataset and solver (one line per rho).</summary>
    public static List<string> WritePlots(string folder, CurveSet set)
    {
        var paths = new List<string>();
        foreach (var ds in set.Global.Select(p => p.Dataset).Distinct())
        {
            var plt = new Plot();
            foreach (var g in set.Global.Where(p => p.Dataset == ds).GroupBy(p => (p.Solver, p.Discretization)))
            {
                var pts = g.Where(p => p.RmsError > 0).OrderBy(p => p.Nfe).ToArray();
                var sc = plt.Add.Scatter(pts.Select(p => Math.Log10(p.Nfe)).ToArray(), pts.Select(p => Math.Log10(p.RmsError)).ToArray());
                sc.LegendText = $"{g.Key.Solver}/{g.Key.Discretization}";
                sc.MarkerSize = 4;
            }
            LogAxes(plt, "NFE", "RMS global error");
            plt.Title($"Global error vs NFE ({ds})");
            plt.ShowLegend(Edge.Right);
            string path = Path.Combine(folder, $"global_{ds}.png");
            plt.SavePng(path, 1400, 800);
            paths.Add(path);
        }
        foreach (var g in set.Local.GroupBy(p => (p.Dataset, p.Solver)))
        {
            var plt = new Plot();
            foreach (var r in g.GroupBy(p => p.Rho))
            {
                var pts = r.Where(p => p.Error > 0 && p.Sigma > 0).OrderBy(p => p.Sigma).ToArray();
                var sc = plt.Add.Scatter(pts.Select(p => Math.Log10(p.Sigma)).ToArray(), pts.Select(p => Math.Log10(p.Error)).ToArray());
                sc.LegendText = $"rho = {r.Key:G3}";
                sc.MarkerSize = 4;
            }
            LogAxes(plt, "sigma (step start)", "RMS local error");
            plt.Title($"Local error vs sigma, {g.Key.Solver} ({g.Key.Dataset})");
            plt.ShowLegend(Edge.Right);
            string path = Path.Combine(folder, $"local_{g.Key.Dataset}_{g.Key.Solver}.png");
            plt.SavePng(path, 1000, 700);
            paths.Add(path);
        }
        return paths;
    }

    static void LogAxes(Plot plt, string x, string y)
    {
        foreach (var axis in new ScottPlot.IAxis[] { plt.Axes.Bottom, plt.Axes.Left })
        {
            axis.TickGenerator = new ScottPlot.TickGenerators.NumericAutomatic
            {
                MinorTickGenerator = new ScottPlot.TickGenerators.LogMinorTickGenerator(),
                IntegerTicksOnly = true,
                LabelFormatter = v => "1e" + v.ToString("0", CultureInfo.InvariantCulture),
            };
        }
        plt.XLabel(x + " (log10)");
        plt.YLabel(y + " (log10)");
    }
}

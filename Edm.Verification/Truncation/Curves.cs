// The curves of the truncation-error bench, their CSV form (docs/reference-curves/), the order fit
// and the comparison of a run against reference curves.
using System.Globalization;
using System.Text;

namespace Edm.Verification;

/// <summary>One point of a global-error curve: RMS distance between x_N and the reference solution.</summary>
public sealed record GlobalPoint(string Dataset, string Solver, string Discretization, double Rho, int Steps, int Nfe, double RmsError, double Floor);

/// <summary>One point of a local-error curve: one step from x(t_i) to t_{i+1} vs the exact x(t_{i+1}).</summary>
public sealed record LocalPoint(string Dataset, string Solver, double Rho, int Step, double Sigma, double Error, double Floor);

/// <summary>A fitted order of convergence: -slope of ln error vs ln NFE over the asymptotic range.</summary>
public sealed record OrderRow(string Dataset, string Solver, string Discretization, double Order, int FromSteps, int ToSteps);

/// <summary>All curves of a run.</summary>
public sealed class CurveSet
{
    /// <summary>Global-error points.</summary>
    public List<GlobalPoint> Global { get; } = new();
    /// <summary>Local-error points.</summary>
    public List<LocalPoint> Local { get; } = new();

    /// <summary>
    /// Orders per (dataset, solver, discretization): least-squares slope over the (up to) three
    /// largest-N points whose error is above the floor (the asymptotic range, before rounding).
    /// </summary>
    public List<OrderRow> Orders()
    {
        var rows = new List<OrderRow>();
        foreach (var g in Global.GroupBy(p => (p.Dataset, p.Solver, p.Discretization)))
        {
            var pts = g.OrderBy(p => p.Steps).Where(p => p.RmsError > p.Floor).ToList();
            if (pts.Count < 2) continue;
            var fit = pts.Skip(Math.Max(0, pts.Count - 3)).ToList();
            double mx = fit.Average(p => Math.Log(p.Nfe)), my = fit.Average(p => Math.Log(p.RmsError));
            double sxy = fit.Sum(p => (Math.Log(p.Nfe) - mx) * (Math.Log(p.RmsError) - my));
            double sxx = fit.Sum(p => (Math.Log(p.Nfe) - mx) * (Math.Log(p.Nfe) - mx));
            if (sxx == 0) continue;
            rows.Add(new OrderRow(g.Key.Dataset, g.Key.Solver, g.Key.Discretization, -sxy / sxx, fit[0].Steps, fit[^1].Steps));
        }
        return rows;
    }

    static string F(double v) => v.ToString("R", CultureInfo.InvariantCulture);

    /// <summary>Writes global_{dataset}.csv and local_{dataset}.csv into a folder; returns the paths.</summary>
    public List<string> WriteCsv(string folder)
    {
        Directory.CreateDirectory(folder);
        var paths = new List<string>();
        foreach (var ds in Global.Select(p => p.Dataset).Concat(Local.Select(p => p.Dataset)).Distinct())
        {
            var sb = new StringBuilder("dataset,solver,discretization,rho,steps,nfe,rms_error,floor\n");
            foreach (var p in Global.Where(p => p.Dataset == ds))
                sb.Append($"{p.Dataset},{p.Solver},{p.Discretization},{F(p.Rho)},{p.Steps},{p.Nfe},{F(p.RmsError)},{F(p.Floor)}\n");
            string g = Path.Combine(folder, $"global_{ds}.csv");
            File.WriteAllText(g, sb.ToString());
            paths.Add(g);
            sb = new StringBuilder("dataset,solver,rho,step,sigma,error,floor\n");
            foreach (var p in Local.Where(p => p.Dataset == ds))
                sb.Append($"{p.Dataset},{p.Solver},{F(p.Rho)},{p.Step},{F(p.Sigma)},{F(p.Error)},{F(p.Floor)}\n");
            string l = Path.Combine(folder, $"local_{ds}.csv");
            File.WriteAllText(l, sb.ToString());
            paths.Add(l);
        }
        return paths;
    }

    /// <summary>
    /// Reads every global_*.csv and local_*.csv of a folder. A malformed row (or bytes that are not
    /// UTF-8) is an <see cref="InvalidDataException"/> naming the file, the line and what was expected.
    /// </summary>
    public static CurveSet ReadCsv(string folder)
    {
        var set = new CurveSet();
        foreach (var file in Directory.GetFiles(folder, "global_*.csv").Order())
            foreach (var (c, at) in Rows(file, 8, "dataset,solver,discretization,rho,steps,nfe,error,floor"))
                set.Global.Add(new GlobalPoint(c[0], c[1], c[2], D(c[3], at), I(c[4], at), I(c[5], at), D(c[6], at), D(c[7], at)));
        foreach (var file in Directory.GetFiles(folder, "local_*.csv").Order())
            foreach (var (c, at) in Rows(file, 7, "dataset,solver,rho,steps,sigma,error,floor"))
                set.Local.Add(new LocalPoint(c[0], c[1], D(c[2], at), I(c[3], at), D(c[4], at), D(c[5], at), D(c[6], at)));
        return set;
    }

    static IEnumerable<(string[] Cells, string At)> Rows(string file, int columns, string layout)
    {
        int n = 1;
        // Strict UTF-8: a byte that is not UTF-8 is a corrupt file, not a character to replace.
        string[] lines;
        try { lines = File.ReadAllLines(file, new System.Text.UTF8Encoding(false, throwOnInvalidBytes: true)); }
        catch (System.Text.DecoderFallbackException e) { throw new InvalidDataException($"{file}: not UTF-8 text ({e.Message})", e); }
        foreach (var line in lines.Skip(1))
        {
            n++;
            if (line.Length == 0) continue;
            var c = line.Split(',');
            string at = $"{file} line {n}";
            if (c.Length != columns) throw new InvalidDataException($"{at}: {c.Length} columns, expected {columns} ({layout})");
            yield return (c, at);
        }
    }

    static double D(string s, string at) => double.TryParse(s, NumberStyles.Float, CultureInfo.InvariantCulture, out double v) ? v
        : throw new InvalidDataException($"{at}: '{s}' is not a number");

    static int I(string s, string at) => int.TryParse(s, NumberStyles.Integer, CultureInfo.InvariantCulture, out int v) ? v
        : throw new InvalidDataException($"{at}: '{s}' is not an integer");
}

/// <summary>Result of comparing a run's curves with reference curves.</summary>
public sealed record ReferenceComparison(double MaxRelDeviation, int Compared, int Missing, List<string> BelowFloor, string? Worst)
{
    /// <summary>
    /// Relative deviation |run - ref| / ref over the points present in both whose reference error
    /// is above its floor; points below the floor are listed, not compared.
    /// </summary>
    public static ReferenceComparison Compare(CurveSet run, CurveSet reference)
    {
        var gRef = reference.Global.ToDictionary(p => (p.Dataset, p.Solver, p.Discretization, p.Rho, p.Steps));
        var lRef = reference.Local.ToDictionary(p => (p.Dataset, p.Solver, p.Rho, p.Step));
        double max = 0;
        int compared = 0, missing = 0;
        string? worst = null;
        var below = new List<string>();
        void Point(string name, double got, double refErr, double floor)
        {
            if (!(refErr > floor)) { below.Add(name); return; }
            double dev = Math.Abs(got - refErr) / refErr;
            compared++;
            if (!(dev <= max)) { max = dev; worst = name; }
        }
        foreach (var p in run.Global)
        {
            if (!gRef.TryGetValue((p.Dataset, p.Solver, p.Discretization, p.Rho, p.Steps), out var r)) { missing++; continue; }
            Point($"global {p.Dataset}/{p.Solver}/{p.Discretization}/N={p.Steps}", p.RmsError, r.RmsError, r.Floor);
        }
        foreach (var p in run.Local)
        {
            if (!lRef.TryGetValue((p.Dataset, p.Solver, p.Rho, p.Step), out var r)) { missing++; continue; }
            Point($"local {p.Dataset}/{p.Solver}/rho={p.Rho}/i={p.Step}", p.Error, r.Error, r.Floor);
        }
        return new ReferenceComparison(max, compared, missing, below, worst);
    }
}

// The `verify` command's building blocks: each op family contributes one IVerifySuite (a file in
// Edm.Verification/Verify/), discovered by reflection, that runs its kernels on random data (odd sizes
// included) and compares them with a float64 reference.
using Edm.Kernels;

namespace Edm.Verification;

/// <summary>One checked kernel: the table row printed by `verify`.</summary>
public sealed record VerifyRow(string Name, string Shapes, double MaxAbsError, double MaxRelError, double Tolerance, bool Passed, string? Note = null);

/// <summary>A family's kernel checks. Implementations need a public parameterless constructor.</summary>
public interface IVerifySuite
{
    /// <summary>Family name, e.g. "elementwise".</summary>
    string Family { get; }
    /// <summary>Runs every check on the device.</summary>
    IEnumerable<VerifyRow> Run(EdmDevice device);
}

/// <summary>The verify suites of this library.</summary>
public static class VerifySuites
{
    /// <summary>Every IVerifySuite in this assembly, ordered by family (elementwise first, tf32 last).</summary>
    public static IReadOnlyList<IVerifySuite> All() => typeof(IVerifySuite).Assembly.GetTypes()
        .Where(t => typeof(IVerifySuite).IsAssignableFrom(t) && t is { IsAbstract: false, IsInterface: false })
        .Select(t => (IVerifySuite)Activator.CreateInstance(t)!)
        .OrderBy(s => s.Family == "elementwise" ? "" : s.Family == "tf32" ? "\uffff" : s.Family).ToList();
}

/// <summary>Comparison helpers: |got - ref| &lt;= atol + rtol |ref| (llm.c style).</summary>
public static class Compare
{
    /// <summary>
    /// Compares float32 results with a float64 reference and makes a row. Pass test, elementwise:
    /// |got - ref| &lt;= tol * scale_i, where scale_i = 1 + |ref_i| unless <paramref name="scale"/>
    /// gives it (reductions pass sum |x| of the reduced elements: float32 accumulation error grows
    /// with it). The reported relative error is normwise: max |got - ref| / max |ref|.
    /// </summary>
    public static VerifyRow Row(string name, string shapes, ReadOnlySpan<float> got, ReadOnlySpan<double> reference, double tol,
        string? note = null, double[]? scale = null)
    {
        if (got.Length != reference.Length)
            return new VerifyRow(name, shapes, double.NaN, double.NaN, tol, false, $"length {got.Length} vs reference {reference.Length}");
        double maxAbs = 0, maxRef = 0;
        bool ok = true;
        int firstBad = -1;
        for (int i = 0; i < got.Length; i++)
        {
            double r = reference[i];
            if (double.IsNaN(r)) continue;
            if (!float.IsFinite(got[i]) && double.IsFinite(r)) { ok = false; maxAbs = double.NaN; if (firstBad < 0) firstBad = i; continue; }
            double e = Math.Abs(got[i] - r);
            maxAbs = Math.Max(maxAbs, e);
            maxRef = Math.Max(maxRef, Math.Abs(r));
            if (e > tol * (scale is null ? 1 + Math.Abs(r) : scale[i])) { ok = false; if (firstBad < 0) firstBad = i; }
        }
        if (!ok && note is null && firstBad >= 0) note = $"first mismatch at {firstBad}: got {got[firstBad]}, ref {reference[firstBad]}";
        double rel = maxRef > 0 ? maxAbs / maxRef : maxAbs;
        // A reference that is ~0 everywhere makes the normwise relative error meaningless: say why the row passes.
        if (ok && note is null && rel > tol && maxRef <= 1e-6)
            note = $"max |ref| = {maxRef:E1}, at the rounding level: the relative error is meaningless here; passes on |got - ref| <= tol (1 + |ref|)";
        return new VerifyRow(name, shapes, maxAbs, rel, tol, ok, note);
    }

    /// <summary>Deterministic random floats in [lo, hi) (never all zeros).</summary>
    public static float[] Random(int n, int seed, double lo = -1, double hi = 1)
    {
        var rng = new System.Random(seed);
        var a = new float[n];
        for (int i = 0; i < n; i++) a[i] = (float)(lo + (hi - lo) * rng.NextDouble());
        return a;
    }
}

// The `verify` command's building blocks: each op family contributes one IVerifySuite (a file in
// Edm.Bench/Verify/), discovered by reflection, that runs its kernels on random data (odd sizes
// included) and compares them with a float64 reference.
using Edm.Kernels;

namespace Edm.Bench.Verify;

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

/// <summary>Comparison helpers: |got - ref| &lt;= atol + rtol |ref| (llm.c style).</summary>
public static class Compare
{
    /// <summary>
    /// Compares float32 results with a float64 reference and makes a row. The relative error is
    /// max |got-ref| / max(|ref|, 1e-30) over elements; the pass test is elementwise
    /// |got-ref| &lt;= tol * (1 + |ref|).
    /// </summary>
    public static VerifyRow Row(string name, string shapes, ReadOnlySpan<float> got, ReadOnlySpan<double> reference, double tol, string? note = null)
    {
        if (got.Length != reference.Length)
            return new VerifyRow(name, shapes, double.NaN, double.NaN, tol, false, $"length {got.Length} vs reference {reference.Length}");
        double maxAbs = 0, maxRel = 0;
        bool ok = true;
        for (int i = 0; i < got.Length; i++)
        {
            double r = reference[i];
            double e = Math.Abs(got[i] - r);
            if (double.IsNaN(got[i]) && !double.IsNaN(r)) { ok = false; maxAbs = double.NaN; continue; }
            if (double.IsNaN(r)) continue;
            maxAbs = Math.Max(maxAbs, e);
            maxRel = Math.Max(maxRel, e / Math.Max(Math.Abs(r), 1e-30));
            if (e > tol * (1 + Math.Abs(r))) ok = false;
        }
        return new VerifyRow(name, shapes, maxAbs, maxRel, tol, ok, note);
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

// verify rows for Gemm (MatMul / MatMulInto) and Linear against the float64 references.
// On the CPU accelerator the rows run the C# fast path; rows marked "kernel" switch fast paths off
// to run the ILGPU kernels (tiled and naive) at tiny sizes (grouped kernels are slow there).
using Edm.Verification;
using Edm.Kernels;

namespace Edm.Verification;

/// <summary>
/// The TF32 tensor-core GEMM and implicit-GEMM convolutions (CUDA only; no rows elsewhere: the CPU
/// accelerator's emulation of them is checked by tests). Its own family, run last: a fault in a
/// kernel never run before on a GPU (the first run's TF32 kernel read past shared memory) leaves the
/// CUDA context unusable, and every later suite would fail with it.
/// </summary>
public sealed class Tf32Verify : IVerifySuite
{
    /// <inheritdoc/>
    public string Family => "tf32";

    /// <inheritdoc/>
    public IEnumerable<VerifyRow> Run(EdmDevice d)
    {
        if (d.Kind != DeviceKind.Cuda) yield break;
        yield return GemmVerify.Tf32(d, 0, 0, 300, 257, 129, false, false);
        yield return GemmVerify.Tf32(d, 0, 0, 130, 200, 77, true, false);
        yield return GemmVerify.Tf32(d, 3, 1, 140, 135, 19, true, true);
        yield return GemmVerify.Tf32(d, 0, 0, 512, 512, 512, false, true);
        foreach (var row in Conv2dVerify.Tf32(d, 4, 37, 12, 11, 130, 3)) yield return row;
        foreach (var row in Conv2dVerify.Tf32(d, 3, 20, 8, 8, 36, 1)) yield return row;
    }
}

/// <summary>Checks of Gemm and Linear.</summary>
public sealed class GemmVerify : IVerifySuite
{
    /// <inheritdoc/>
    public string Family => "gemm";

    /// <inheritdoc/>
    public IEnumerable<VerifyRow> Run(EdmDevice d)
    {
        yield return MatMul(d, 0, 0, 64, 64, 64, false, false, GemmVariant.Tiled);
        yield return MatMul(d, 0, 0, 127, 33, 300, false, false, GemmVariant.Tiled);
        yield return MatMul(d, 0, 0, 65, 70, 129, true, false, GemmVariant.Tiled);
        yield return MatMul(d, 0, 0, 65, 70, 129, false, true, GemmVariant.Tiled);
        yield return MatMul(d, 4, 1, 17, 29, 23, true, true, GemmVariant.Tiled);
        yield return MatMul(d, 0, 0, 127, 33, 300, false, false, GemmVariant.Naive);
        yield return MatMul(d, 0, 0, 300, 257, 129, false, false, GemmVariant.Tiled128);
        yield return MatMul(d, 0, 0, 130, 200, 77, true, false, GemmVariant.Tiled128);
        yield return MatMul(d, 0, 0, 129, 131, 40, false, true, GemmVariant.Tiled128);
        yield return MatMul(d, 3, 1, 140, 135, 19, true, true, GemmVariant.Tiled128);
        yield return MatMul(d, 0, 0, 300, 257, 129, false, false, GemmVariant.Tiled128V);
        yield return MatMul(d, 0, 0, 130, 200, 77, true, false, GemmVariant.Tiled128V);
        yield return MatMul(d, 0, 0, 129, 131, 40, false, true, GemmVariant.Tiled128V);
        yield return MatMul(d, 3, 1, 140, 135, 19, true, true, GemmVariant.Tiled128V);
        yield return ReduceBatch(d, 5, 19, 37, 41);
        yield return Linear(d, 7, 129, 67);
        if (d.IsCpu)
        {
            // The GPU-style kernels themselves, on the CPU accelerator at tiny sizes.
            var keep = d.CpuFastPaths;
            d.CpuFastPaths = false;
            try
            {
                yield return MatMul(d, 2, 1, 9, 67, 18, false, true, GemmVariant.Tiled, " kernel");
                yield return MatMul(d, 0, 0, 9, 13, 17, true, false, GemmVariant.Naive, " kernel");
                yield return MatMul(d, 2, 1, 130, 20, 11, false, true, GemmVariant.Tiled128, " kernel");
                yield return MatMul(d, 0, 0, 9, 140, 13, true, false, GemmVariant.Tiled128, " kernel");
                yield return MatMul(d, 2, 1, 130, 20, 11, false, true, GemmVariant.Tiled128V, " kernel");
                yield return MatMul(d, 0, 0, 9, 140, 13, true, false, GemmVariant.Tiled128V, " kernel");
                yield return ReduceBatch(d, 2, 7, 9, 5, " kernel");
                yield return Linear(d, 3, 18, 6, " kernel");
            }
            finally { d.CpuFastPaths = keep; }
        }
    }

    static int[] Shape(int batch, int r, int c) => batch == 0 ? [r, c] : [batch, r, c];

    /// <summary>op(A) op(B) for batchA/batchB 0 (rank 2) or a batch (1 broadcasts) vs float64.</summary>
    public static VerifyRow MatMul(EdmDevice d, int batchA, int batchB, int m, int n, int k, bool ta, bool tb, GemmVariant variant, string tag = "")
    {
        int ba = Math.Max(1, batchA), bb = Math.Max(1, batchB), bt = Math.Max(ba, bb);
        var a = Compare.Random(ba * m * k, 1);
        var b = Compare.Random(bb * k * n, 2);
        using var tA = Tensor.FromArray(d, a, Shape(batchA, ta ? k : m, ta ? m : k));
        using var tB = Tensor.FromArray(d, b, Shape(batchB, tb ? n : k, tb ? k : n));
        using var c = Tensor.Empty(d, batchA == 0 && batchB == 0 ? [m, n] : [bt, m, n]);
        Ops.MatMulInto(tA, tB, c, ta, tb, variant: variant);
        var r = GemmReference.MatMul(Array.ConvertAll(a, v => (double)v), Array.ConvertAll(b, v => (double)v), ba, bb, m, n, k, ta, tb);
        string name = $"matmul{(ta ? " A^T" : "")}{(tb ? " B^T" : "")} {variant.ToString().ToLowerInvariant()}{tag}";
        return Compare.Row(name, $"{tA.ShapeString} x {tB.ShapeString}", c.ToArray(), r, 1e-5 * Math.Sqrt(k));
    }

    /// <summary>x rounded to TF32 as cvt.rna.tf32.f32 does: 10 mantissa bits, to nearest, ties away from zero.</summary>
    public static float RoundTf32(float x)
    {
        if (!float.IsFinite(x)) return x;
        int bits = BitConverter.SingleToInt32Bits(x);
        return BitConverter.Int32BitsToSingle((bits + 0x1000) & ~0x1FFF);
    }

    /// <summary>
    /// The TF32 kernel (variant 4, CUDA) against the float64 product of the inputs rounded to TF32 (so
    /// only float32 accumulation error remains: tolerance 1e-5 sqrt(K)). The note gives the error
    /// against the unrounded float64 product, against the 128x128 SIMT kernel, and of the swapped A
    /// fragment layout (a diagnostic: that layout must fail).
    /// </summary>
    public static VerifyRow Tf32(EdmDevice d, int batchA, int batchB, int m, int n, int k, bool ta, bool tb)
    {
        int ba = Math.Max(1, batchA), bb = Math.Max(1, batchB), bt = Math.Max(ba, bb);
        var a = Compare.Random(ba * m * k, 1);
        var b = Compare.Random(bb * k * n, 2);
        using var tA = Tensor.FromArray(d, a, Shape(batchA, ta ? k : m, ta ? m : k));
        using var tB = Tensor.FromArray(d, b, Shape(batchB, tb ? n : k, tb ? k : n));
        int[] cShape = batchA == 0 && batchB == 0 ? [m, n] : [bt, m, n];
        using var c = Tensor.Empty(d, cShape);
        using var simt = Tensor.Empty(d, cShape);
        using var swapped = Tensor.Empty(d, cShape);
        Ops.MatMulInto(tA, tB, c, ta, tb, variant: GemmVariant.Tf32);
        Ops.MatMulInto(tA, tB, simt, ta, tb, variant: GemmVariant.Tiled128);
        try
        {
            GemmKernels.Tf32SwapADiagnostic = true;
            Ops.MatMulInto(tA, tB, swapped, ta, tb, variant: GemmVariant.Tf32);
        }
        finally { GemmKernels.Tf32SwapADiagnostic = false; }
        double[] D(float[] x, bool round) => Array.ConvertAll(x, v => (double)(round ? RoundTf32(v) : v));
        var rounded = GemmReference.MatMul(D(a, true), D(b, true), ba, bb, m, n, k, ta, tb);
        var exact = GemmReference.MatMul(D(a, false), D(b, false), ba, bb, m, n, k, ta, tb);
        var got = c.ToArray();
        static double MaxDiff(float[] x, double[] y) { double e = 0; for (int i = 0; i < x.Length; i++) e = Math.Max(e, Math.Abs(x[i] - y[i])); return e; }
        var simtD = Array.ConvertAll(simt.ToArray(), v => (double)v);
        string note = $"vs unrounded inputs {MaxDiff(got, exact):E1}, vs tiled128 {MaxDiff(got, simtD):E1}; swapped A layout {MaxDiff(swapped.ToArray(), rounded):E1}";
        var row = Compare.Row($"matmul{(ta ? " A^T" : "")}{(tb ? " B^T" : "")} tf32", $"{tA.ShapeString} x {tB.ShapeString}", got, rounded, 1e-5 * Math.Sqrt(k));
        return row with { Note = row.Note is null ? note : row.Note + "; " + note };
    }

    /// <summary>C = 0.5 sum_b A_b B_b^T - C (a weight-gradient-like batch reduction) vs float64.</summary>
    public static VerifyRow ReduceBatch(EdmDevice d, int bt, int m, int n, int k, string tag = "")
    {
        var a = Compare.Random(bt * m * k, 3);
        var b = Compare.Random(bt * n * k, 4);
        var c0 = Compare.Random(m * n, 5);
        using var tA = Tensor.FromArray(d, a, bt, m, k);
        using var tB = Tensor.FromArray(d, b, bt, n, k);
        using var c = Tensor.FromArray(d, c0, m, n);
        Ops.MatMulInto(tA, tB, c, transB: true, alpha: 0.5f, beta: -1f);
        var full = GemmReference.MatMul(Array.ConvertAll(a, v => (double)v), Array.ConvertAll(b, v => (double)v), bt, bt, m, n, k, false, true);
        var r = new double[m * n];
        for (int i = 0; i < r.Length; i++)
        {
            r[i] = -c0[i];
            for (int j = 0; j < bt; j++) r[i] += 0.5 * full[j * m * n + i];
        }
        return Compare.Row($"matmul-into reduce-batch{tag}", $"sum_{bt} ({m}, {k}) x ({n}, {k})^T", c.ToArray(), r, 1e-5 * Math.Sqrt(bt * k));
    }

    /// <summary>Linear forward and its three backward pieces, checked together (worst row reported).</summary>
    public static VerifyRow Linear(EdmDevice d, int n, int inF, int outF, string tag = "")
    {
        var x = Compare.Random(n * inF, 6);
        var w = Compare.Random(outF * inF, 7);
        var bias = Compare.Random(outF, 8);
        var dy = Compare.Random(n * outF, 9);
        using var tx = Tensor.FromArray(d, x, n, inF);
        using var tw = Tensor.FromArray(d, w, outF, inF);
        using var tb = Tensor.FromArray(d, bias, outF);
        using var tdy = Tensor.FromArray(d, dy, n, outF);
        double[] D(float[] v) => Array.ConvertAll(v, f => (double)f);
        using var y = Ops.Linear(tx, tw, tb);
        using var dx = Ops.LinearBackwardData(tdy, tw);
        using var dw = Ops.LinearBackwardWeight(tdy, tx);
        using var db = Ops.LinearBackwardBias(tdy);
        var (rdx, rdw, rdb) = GemmReference.LinearBackward(D(x), D(w), D(dy), n, inF, outF);
        string shapes = $"x ({n}, {inF}), W ({outF}, {inF})";
        return Worst($"linear fwd+bwd{tag}", shapes,
            Compare.Row("y", shapes, y.ToArray(), GemmReference.Linear(D(x), D(w), D(bias), n, inF, outF), 1e-5 * Math.Sqrt(inF)),
            Compare.Row("dx", shapes, dx.ToArray(), rdx, 1e-5 * Math.Sqrt(outF)),
            Compare.Row("dW", shapes, dw.ToArray(), rdw, 1e-5 * Math.Sqrt(n)),
            Compare.Row("db", shapes, db.ToArray(), rdb, 1e-5 * Math.Sqrt(n)));
    }

    /// <summary>Folds several rows of one op into one: passes only if all pass; errors are the worst; the note names failures.</summary>
    public static VerifyRow Worst(string name, string shapes, params VerifyRow[] rows)
    {
        var failed = rows.Where(r => !r.Passed).Select(r => r.Name + (r.Note is null ? "" : $" ({r.Note})")).ToList();
        return new VerifyRow(name, shapes, rows.Max(r => r.MaxAbsError), rows.Max(r => r.MaxRelError), rows.Max(r => r.Tolerance),
            failed.Count == 0, failed.Count == 0 ? $"parts: {string.Join(", ", rows.Select(r => r.Name))}" : "failed: " + string.Join("; ", failed));
    }
}

// Self-attention over the U-Nets' packed qkv layout (docs/formulas.md section 7), without the
// permutes and slices that the (..., N, d) layout of Attention.cs needs. The qkv convolution's output
// viewed as (BH, d, 3, N) holds, per head, Q(c, i) = qkv[bh, c, 0, i], K(c, j) = qkv[bh, c, 1, j] and
// V(c, j) = qkv[bh, c, 2, j] (NVlabs/edm's reshape of the 1x1 conv output); the output is channel-major
// (BH, d, N), so that a reshape gives (B, C, H, W) again. Same mathematics as Attention.cs:
//   S = scale Q^T K (N x N, scale = 1/sqrt(d) by default), P = softmax over keys, O^T = V P^T,
//   lse[i] = log sum_j exp(S[i, j]) saved for the backward (P recomputed as exp(S - lse)).
//
// Variants:
//   1. float64 reference: Attention's (Edm.Verification/References/AttentionReference.cs) on q, k, v
//      taken out of the packed layout.
//   2. CPU fast path, per head with the CPU GEMM on the scores transposed, S^T (keys x queries), so
//      that every operand is read in place from the packed layout and the output is channel-major:
//      S^T = scale K^T Q; a column softmax (vectors run along the queries); O^T = V P^T.
//      Backward with D_i = sum_c dO^T[c, i] O^T[c, i]: dP^T = V^T dO^T, dS^T = P^T * (dP^T - D),
//      dQ = scale K dS^T, dK = scale Q dS, dV = dO^T P, written into the packed gradient (BH, d, 3, N).
//      Two N x N matrices per worker; every output element written once (deterministic).
//   3. Kernel path (GPUs, the CPU accelerator): the layout changed to (3, BH, N, d) by Permute and the
//      (..., N, d) attention kernels of Attention.cs run on views of it; the output permuted back.
using System.Numerics;
using System.Numerics.Tensors;

namespace Edm.Kernels;

public static partial class Ops
{
    /// <summary>
    /// Self-attention on the packed layout: <paramref name="qkv"/> (BH, d, 3, N) holds Q, K and V in
    /// its dimension 2; returns O (BH, d, N) (channel-major) and lse (BH, N). Equal to
    /// <see cref="AttentionForward"/> on q = qkv[:, :, 0, :]^T and so on, with O transposed.
    /// </summary>
    /// <param name="qkv">(BH, d, 3, N), contiguous.</param>
    /// <param name="scale">Score scale; default 1/sqrt(d).</param>
    public static AttentionOutput QkvAttentionForward(Tensor qkv, float? scale = null)
    {
        var (bh, d, n, sc) = QkvValidate("QkvAttention", qkv, scale);
        var device = qkv.Device;
        if (!device.UseCpuFastPath)
        {
            using var t = Permute(qkv, 2, 0, 3, 1);                        // (3, BH, N, d)
            using var q = QkvPart(t, 0, bh, n, d);
            using var k = QkvPart(t, 1, bh, n, d);
            using var v = QkvPart(t, 2, bh, n, d);
            var r = AttentionForward(q, k, v, sc);
            using (r.O) return new AttentionOutput(Permute(r.O, 0, 2, 1), r.Lse);
        }
        var o = Tensor.Empty(device, bh, d, n);
        var lse = Tensor.Empty(device, bh, n);
        QkvForwardCpu(qkv, o, lse, bh, d, n, sc);
        return new AttentionOutput(o, lse);
    }

    /// <summary>Backward of <see cref="QkvAttentionForward"/>: the gradient of qkv, (BH, d, 3, N).</summary>
    /// <param name="qkv">The forward's input (BH, d, 3, N).</param>
    /// <param name="o">The forward's output (BH, d, N).</param>
    /// <param name="lse">The forward's log-sum-exp (BH, N).</param>
    /// <param name="dO">Gradient of o, (BH, d, N).</param>
    /// <param name="scale">The forward's scale (default 1/sqrt(d)).</param>
    public static Tensor QkvAttentionBackward(Tensor qkv, Tensor o, Tensor lse, Tensor dO, float? scale = null)
    {
        var (bh, d, n, sc) = QkvValidate("QkvAttentionBackward", qkv, scale);
        Shapes.RequireEqual("QkvAttentionBackward", "o", [bh, d, n], o.Shape);
        Shapes.RequireEqual("QkvAttentionBackward", "dO", [bh, d, n], dO.Shape);
        Shapes.RequireEqual("QkvAttentionBackward", "lse", [bh, n], lse.Shape);
        var device = qkv.Device;
        if (!device.UseCpuFastPath)
        {
            using var t = Permute(qkv, 2, 0, 3, 1);
            using var q = QkvPart(t, 0, bh, n, d);
            using var k = QkvPart(t, 1, bh, n, d);
            using var v = QkvPart(t, 2, bh, n, d);
            using var oT = Permute(o, 0, 2, 1);
            using var gT = Permute(dO, 0, 2, 1);
            var g = AttentionBackward(q, k, v, oT, lse, gT, sc);
            using (g.DQ) using (g.DK) using (g.DV)
            {
                using var dq = g.DQ.Reshape(1, bh, n, d);
                using var dk = g.DK.Reshape(1, bh, n, d);
                using var dv = g.DV.Reshape(1, bh, n, d);
                using var stacked = Concat(0, dq, dk, dv);
                return Permute(stacked, 1, 3, 0, 2);                        // (3, BH, N, d) -> (BH, d, 3, N)
            }
        }
        var dqkv = Tensor.Empty(device, bh, d, 3, n);
        QkvBackwardCpu(qkv, o, lse, dO, dqkv, bh, d, n, sc);
        return dqkv;
    }

    static (int BH, int D, int N, float Scale) QkvValidate(string op, Tensor qkv, float? scale)
    {
        if (qkv.Rank != 4 || qkv.Shape[2] != 3 || qkv.Length == 0)
            throw new ArgumentException($"{op}: qkv has shape {qkv.ShapeString}; expected (BH, d, 3, N) with BH, d, N >= 1");
        int d = qkv.Shape[1];
        if (d > AttentionMaxHeadDim)
            throw new ArgumentException($"{op}: head dimension d = {d} (qkv {qkv.ShapeString}); allowed: 1..{AttentionMaxHeadDim}");
        float sc = scale ?? 1f / MathF.Sqrt(d);
        if (!float.IsFinite(sc)) throw new ArgumentException($"{op}: scale = {sc}; allowed: a finite number");
        return (qkv.Shape[0], d, qkv.Shape[3], sc);
    }

    /// <summary>Part p (0 q, 1 k, 2 v) of the permuted (3, BH, N, d) tensor as a (BH, N, d) view.</summary>
    static Tensor QkvPart(Tensor t, int p, int bh, int n, int d)
    {
        using var row = t.Narrow0(p, 1);
        return row.Reshape(bh, n, d);
    }

    static unsafe void QkvForwardCpu(Tensor qkv, Tensor o, Tensor lse, int bh, int d, int n, float scale)
    {
        int cores = Environment.ProcessorCount, ld = 3 * n;
        // S^T (n keys, n queries) = scale K^T Q: A(j, c) = K(c, j) at c*3n + n + j; B(c, i) = Q(c, i) at c*3n + i.
        var gs = new GemmShape(n, n, d, 1, 0, 0, 1, ld, 0, ld, 1, 0, n, scale, 0f);
        // O^T (d, n) = V (d, n keys) P^T (n keys, n queries).
        var go = new GemmShape(d, n, n, 1, 0, 0, ld, 1, 0, n, 1, 0, n, 1f, 0f);
        fixed (float* px = qkv.CpuSpan(), po = o.CpuSpan(), pl = lse.CpuSpan())
        {
            nint ax = (nint)px, ao = (nint)po, al = (nint)pl;
            void Head(int h, int threads)
            {
                var arr = System.Buffers.ArrayPool<float>.Shared.Rent(n * n + 2 * n);
                try
                {
                    fixed (float* ps = arr)
                    {
                        float* x = (float*)ax + (long)h * d * ld;
                        GemmHost(x + n, x, ps, gs, threads);
                        ColumnSoftmax(ps, n, n, new Span<float>(ps + n * n, n), new Span<float>(ps + n * n + n, n),
                            new Span<float>((float*)al + (long)h * n, n));
                        GemmHost(x + 2 * n, ps, (float*)ao + (long)h * d * n, go, threads);
                    }
                }
                finally { System.Buffers.ArrayPool<float>.Shared.Return(arr); }
            }
            if (bh >= cores && cores > 1)
                Parallel.For(0, bh, new ParallelOptions { MaxDegreeOfParallelism = cores }, h => Head(h, 1));
            else
                for (int h = 0; h < bh; h++) Head(h, cores);
        }
    }

    /// <summary>
    /// In place, for a (rows keys x cols queries) score matrix: every column becomes its softmax over
    /// the rows; lse[i] = max + log(sum). Vectors run along a row (the queries), so each pass is a
    /// stream of row vectors. <paramref name="m"/> and <paramref name="l"/> are scratch of cols floats.
    /// </summary>
    static unsafe void ColumnSoftmax(float* s, int rows, int cols, Span<float> m, Span<float> l, Span<float> lse)
    {
        new ReadOnlySpan<float>(s, cols).CopyTo(m);
        for (int j = 1; j < rows; j++) TensorPrimitives.Max(m, new ReadOnlySpan<float>(s + (long)j * cols, cols), m);
        l.Clear();
        for (int j = 0; j < rows; j++) VecMath.ExpSubAccumulate(new Span<float>(s + (long)j * cols, cols), m, l);
        for (int i = 0; i < cols; i++) lse[i] = m[i] + MathF.Log(l[i]);
        TensorPrimitives.Reciprocal(l, l);
        for (int j = 0; j < rows; j++)
        {
            var row = new Span<float>(s + (long)j * cols, cols);
            TensorPrimitives.Multiply(row, l, row);
        }
    }

    static unsafe void QkvBackwardCpu(Tensor qkv, Tensor o, Tensor lse, Tensor dO, Tensor dqkv, int bh, int d, int n, float scale)
    {
        int cores = Environment.ProcessorCount, ld = 3 * n;
        var gS = new GemmShape(n, n, d, 1, 0, 0, 1, ld, 0, ld, 1, 0, n, scale, 0f);      // S^T = scale K^T Q
        var gDp = new GemmShape(n, n, d, 1, 0, 0, 1, ld, 0, n, 1, 0, n, 1f, 0f);         // dP^T = V^T dO^T
        var gDq = new GemmShape(d, n, n, 1, 0, 0, ld, 1, 0, n, 1, 0, ld, scale, 0f);     // dQ = scale K dS^T
        var gDk = new GemmShape(d, n, n, 1, 0, 0, ld, 1, 0, 1, n, 0, ld, scale, 0f);     // dK = scale Q dS
        var gDv = new GemmShape(d, n, n, 1, 0, 0, n, 1, 0, 1, n, 0, ld, 1f, 0f);         // dV = dO^T P
        fixed (float* px = qkv.CpuSpan(), po = o.CpuSpan(), pl = lse.CpuSpan(), pg = dO.CpuSpan(), pd = dqkv.CpuSpan())
        {
            nint ax = (nint)px, ao = (nint)po, al = (nint)pl, ag = (nint)pg, ad = (nint)pd;
            void Head(int h, int threads)
            {
                var pArr = System.Buffers.ArrayPool<float>.Shared.Rent(n * n + n);
                var dsArr = System.Buffers.ArrayPool<float>.Shared.Rent(n * n);
                try
                {
                    fixed (float* pp = pArr, pds = dsArr)
                    {
                        float* x = (float*)ax + (long)h * d * ld, oh = (float*)ao + (long)h * d * n, gh = (float*)ag + (long)h * d * n;
                        float* dx = (float*)ad + (long)h * d * ld;
                        var lh = new ReadOnlySpan<float>((float*)al + (long)h * n, n);
                        GemmHost(x + n, x, pp, gS, threads);
                        GemmHost(x + 2 * n, gh, pds, gDp, threads);
                        // D_i = sum_c dO^T[c, i] O^T[c, i], along the queries.
                        var dRow = new Span<float>(pp + n * n, n);
                        dRow.Clear();
                        for (int c = 0; c < d; c++)
                            TensorPrimitives.MultiplyAdd(new ReadOnlySpan<float>(gh + (long)c * n, n), new ReadOnlySpan<float>(oh + (long)c * n, n), dRow, dRow);
                        for (int j = 0; j < n; j++)
                        {
                            var prow = new Span<float>(pp + (long)j * n, n);
                            var dsrow = new Span<float>(pds + (long)j * n, n);
                            VecMath.ExpSub(prow, lh);
                            TensorPrimitives.Subtract(dsrow, dRow, dsrow);
                            TensorPrimitives.Multiply(dsrow, prow, dsrow);
                        }
                        GemmHost(x + n, pds, dx, gDq, threads);
                        GemmHost(x, pds, dx + n, gDk, threads);
                        GemmHost(gh, pp, dx + 2 * n, gDv, threads);
                    }
                }
                finally
                {
                    System.Buffers.ArrayPool<float>.Shared.Return(pArr);
                    System.Buffers.ArrayPool<float>.Shared.Return(dsArr);
                }
            }
            if (bh >= cores && cores > 1)
                Parallel.For(0, bh, new ParallelOptions { MaxDegreeOfParallelism = cores }, h => Head(h, 1));
            else
                for (int h = 0; h < bh; h++) Head(h, cores);
        }
    }
}

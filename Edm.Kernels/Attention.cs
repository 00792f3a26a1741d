// Multi-head scaled dot-product attention (Vaswani et al. 2017), the self-attention of the EDM
// U-Nets (docs/formulas.md section 7: softmax in fp32). Per head (b, h), with Q (Nq, d), K and V (Nk, d):
//   S = scale * Q K^T (scale = 1/sqrt(d) by default),  P = softmax_rows(S),  O = P V,
//   lse[i] = log sum_j exp(S[i, j])  (saved: P is recomputed as exp(S - lse) in the backward).
// Backward with Di = sum_c dO[i, c] O[i, c]:
//   dV = P^T dO,  dP = dO V^T,  dS = P * (dP - D),  dQ = scale * dS K,  dK = scale * dS^T Q.
// Layout: Q (..., Nq, d), K and V (..., Nk, d) contiguous with equal leading dimensions (B, heads)
// or (B*heads); O (..., Nq, d); lse (..., Nq). Head dimension d in 1..MaxHeadDim.
//
// Variants:
//   1. float64 loops (Edm.Verification/References/AttentionReference.cs): the full Nq x Nk matrix per head.
//   2. CPU fast path: per head as GEMMs with the CPU GEMM (forward: S = scale Q K^T, row softmax,
//      O = P V; backward: P from lse, dV = P^T dO, dP = dO V^T, dS, dQ = scale dS K, dK = scale dS^T Q),
//      Nq x Nk matrices per worker.
//   3. ILGPU kernels, flash-style (Dao et al. 2022): nothing of size Nq x Nk is stored. Forward: one
//      group of 128 threads per tile of br query rows; it streams tiles of bc keys and values
//      through shared memory, keeps the running row max m and sum l (online softmax: on a new
//      maximum, l and the output accumulator are rescaled by exp(m_old - m_new)), each thread
//      holding up to 32 output elements in local memory. Backward: a per-row D kernel, a dQ kernel
//      (one group per query tile, streaming K and V) and a dK/dV kernel (one group per key tile,
//      streaming Q and dO), recomputing P from lse; no atomics, so results are deterministic.
//      Tile sizes follow d: br*d <= 4096 floats (2048 in the backward), shared rows padded to d+1
//      floats so that threads reading different rows hit different banks.
using System.Numerics.Tensors;
using ILGPU;
using ILGPU.Algorithms;
using ILGPU.Runtime;

namespace Edm.Kernels;

/// <summary>Sizes and tiling of one attention launch (a kernel argument; public because ILGPU's generated launchers need it).</summary>
public readonly struct AttentionShape(int bh, int nq, int nk, int d, int br, int bc, float scale)
{
    /// <summary>Heads (B*heads), query rows, key rows, head dimension.</summary>
    public readonly int BH = bh, Nq = nq, Nk = nk, D = d;
    /// <summary>Rows per tile of the tiled dimension (queries, or keys in the dK/dV kernel).</summary>
    public readonly int Br = br;
    /// <summary>Rows per tile of the streamed dimension.</summary>
    public readonly int Bc = bc;
    /// <summary>Score scale (1/sqrt(d) by default).</summary>
    public readonly float Scale = scale;
    /// <summary>Number of tiles of Br rows along a dimension of length n.</summary>
    public int Tiles(int n) => (n + Br - 1) / Br;
}

/// <summary>Attention kernels: flash-style forward, backward (D, dQ, dK/dV).</summary>
public sealed class AttentionKernels : IKernelFamily<AttentionKernels>
{
    /// <summary>Threads per group of the tiled kernels.</summary>
    internal const int GroupSize = 128;
    /// <summary>Floats per shared Q/K/V tile in the forward (before padding), and in the backward.</summary>
    internal const int TileCap = 4096, TileCapBackward = 2048;
    /// <summary>Floats of the shared score tile (br * bc), forward and backward.</summary>
    internal const int ScoreCap = 2048, ScoreCapBackward = 1024;
    /// <summary>Most rows in a tile (also the size of per-row shared arrays and the row padding).</summary>
    internal const int MaxRows = 64;
    const int Acc = TileCap / GroupSize, AccBackward = TileCapBackward / GroupSize;

    internal readonly Action<KernelConfig, ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>, AttentionShape> Forward;
    internal readonly Action<Index1D, ArrayView<float>, ArrayView<float>, ArrayView<float>, int, int, int> RowDot;
    internal readonly Action<KernelConfig, ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>, AttentionShape> BackwardQ;
    internal readonly Action<KernelConfig, ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>, AttentionShape> BackwardKV;

    internal readonly Action<KernelConfig, ArrayView<float>, ArrayView<float>, int, int> SoftmaxLse;
    internal readonly Action<Index1D, ArrayView<float>, ArrayView<float>, int, int, int> ExpMinusRow;
    internal readonly Action<Index1D, ArrayView<float>, ArrayView<float>, ArrayView<float>, int, int, int> ScoreGrad;

    AttentionKernels(Accelerator a)
    {
        SoftmaxLse = a.LoadStreamKernel<ArrayView<float>, ArrayView<float>, int, int>(SoftmaxLseKernel);
        ExpMinusRow = a.LoadAutoGroupedStreamKernel<Index1D, ArrayView<float>, ArrayView<float>, int, int, int>(ExpMinusRowKernel);
        ScoreGrad = a.LoadAutoGroupedStreamKernel<Index1D, ArrayView<float>, ArrayView<float>, ArrayView<float>, int, int, int>(ScoreGradKernel);
        Forward = a.LoadStreamKernel<ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>, AttentionShape>(ForwardKernel);
        RowDot = a.LoadAutoGroupedStreamKernel<Index1D, ArrayView<float>, ArrayView<float>, ArrayView<float>, int, int, int>(RowDotKernel);
        BackwardQ = a.LoadStreamKernel<ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>, AttentionShape>(BackwardQKernel);
        BackwardKV = a.LoadStreamKernel<ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>, AttentionShape>(BackwardKVKernel);
    }

    /// <inheritdoc/>
    public static AttentionKernels Load(EdmDevice device) => new(device.Accelerator);

    /// <summary>
    /// GEMM path, forward: each row of the scores s (rows x cols) becomes its softmax, in place, and
    /// lse[row] = max + log(sum exp(s - max)). One group per row (GroupReduction.SoftmaxStats, as
    /// the softmax kernel), grid-stride over rows.
    /// </summary>
    static void SoftmaxLseKernel(ArrayView<float> s, ArrayView<float> lse, int rows, int cols)
    {
        var scratch = SharedMemory.Allocate<float>(GroupReduction.ScratchSize);
        int t = Group.IdxX;
        for (int row = Grid.IdxX; row < rows; row += Grid.DimX)
        {
            int b = row * cols;
            var (rowMax, sum) = GroupReduction.SoftmaxStats(scratch, s, b, cols);
            float inv = 1f / sum;
            for (int j = t; j < cols; j += GroupReduction.GroupSize)
                s[b + j] = XMath.Exp(s[b + j] - rowMax) * inv;
            if (t == 0) lse[row] = rowMax + XMath.Log(sum);
        }
    }

    /// <summary>GEMM path, backward: p = exp(s - lse[row]) in place (the forward's probabilities recomputed from the scores).</summary>
    static void ExpMinusRowKernel(Index1D tid, ArrayView<float> s, ArrayView<float> lse, int n, int cols, int stride)
    {
        for (int i = tid; i < n; i += stride) s[i] = XMath.Exp(s[i] - lse[i / cols]);
    }

    /// <summary>GEMM path, backward: dS = P (dP - D_row) in place of dP, D_row = dO_row . O_row.</summary>
    static void ScoreGradKernel(Index1D tid, ArrayView<float> p, ArrayView<float> dp, ArrayView<float> dRow, int n, int cols, int stride)
    {
        for (int i = tid; i < n; i += stride) dp[i] = p[i] * (dp[i] - dRow[i / cols]);
    }

    /// <summary>Tile rows (tiled, streamed) for head dimension d within the given capacities.</summary>
    internal static (int Tiled, int Streamed) TileRows(int d, int tileCap, int scoreCap)
    {
        int dp = 1;
        while (dp < d) dp <<= 1;
        int tiled = Math.Min(MaxRows, tileCap / dp);
        int streamed = Math.Min(Math.Min(MaxRows, tileCap / dp), scoreCap / tiled);
        return (tiled, streamed);
    }

    /// Copies rows [row0, row0+valid) of a (n, d) matrix into a shared tile with row stride d+1;
    /// rows past `valid` (up to `rows`) are zero.
    static void LoadTile(ArrayView<float> src, int row0, int valid, int rows, int d, ArrayView<float> tile)
    {
        int ld = d + 1;
        for (int e = Group.IdxX; e < rows * d; e += GroupSize)
        {
            int r = e / d, c = e - r * d;
            tile[r * ld + c] = r < valid ? src[(row0 + r) * d + c] : 0f;
        }
    }

    /// Dot product of row a of tile A with row b of tile B (both with row stride d+1).
    static float TileDot(ArrayView<float> tileA, int a, ArrayView<float> tileB, int b, int d)
    {
        int ld = d + 1;
        float acc = 0f;
        for (int k = 0; k < d; k++) acc += tileA[a * ld + k] * tileB[b * ld + k];
        return acc;
    }

    /// Forward: one group per tile of Br query rows of one head; streams Bc keys/values at a time.
    static void ForwardKernel(ArrayView<float> q, ArrayView<float> k, ArrayView<float> v, ArrayView<float> o,
        ArrayView<float> lse, AttentionShape s)
    {
        var qs = SharedMemory.Allocate<float>(TileCap + MaxRows);
        var kvs = SharedMemory.Allocate<float>(TileCap + MaxRows);
        var ss = SharedMemory.Allocate<float>(ScoreCap);
        var mRow = SharedMemory.Allocate<float>(MaxRows);
        var lRow = SharedMemory.Allocate<float>(MaxRows);
        var alpha = SharedMemory.Allocate<float>(MaxRows);
        var acc = LocalMemory.Allocate1D<float>(Acc);
        int t = Group.IdxX, d = s.D, ld = d + 1, br = s.Br, bc = s.Bc;
        int tiles = s.Tiles(s.Nq);
        for (int tile = Grid.IdxX; tile < s.BH * tiles; tile += Grid.DimX)
        {
            int bh = tile / tiles, q0 = (tile - bh * tiles) * br;
            int rows = XMath.Min(br, s.Nq - q0);
            LoadTile(q, bh * s.Nq + q0, rows, br, d, qs);
            if (t < br) { mRow[t] = float.NegativeInfinity; lRow[t] = 0f; }
            for (int i = 0; i < Acc; i++) acc[i] = 0f;
            Group.Barrier();
            for (int k0 = 0; k0 < s.Nk; k0 += bc)
            {
                int cols = XMath.Min(bc, s.Nk - k0);
                LoadTile(k, bh * s.Nk + k0, cols, bc, d, kvs);
                Group.Barrier();
                for (int e = t; e < br * bc; e += GroupSize)
                {
                    int r = e / bc, c = e - r * bc;
                    ss[e] = c < cols ? s.Scale * TileDot(qs, r, kvs, c, d) : float.NegativeInfinity;
                }
                Group.Barrier();
                if (t < br)
                {
                    // Online softmax for row t: new max, rescale the old sum, add this tile's terms.
                    float mOld = mRow[t], mNew = mOld;
                    for (int c = 0; c < cols; c++) mNew = XMath.Max(mNew, ss[t * bc + c]);
                    float a = XMath.Exp(mOld - mNew);
                    float l = lRow[t] * a;
                    for (int c = 0; c < bc; c++)
                    {
                        float p = c < cols ? XMath.Exp(ss[t * bc + c] - mNew) : 0f;
                        ss[t * bc + c] = p;
                        l += p;
                    }
                    mRow[t] = mNew;
                    lRow[t] = l;
                    alpha[t] = a;
                }
                Group.Barrier();
                LoadTile(v, bh * s.Nk + k0, cols, bc, d, kvs);
                Group.Barrier();
                for (int i = 0; i < Acc; i++)
                {
                    int e = t + i * GroupSize;
                    if (e < br * d)
                    {
                        int r = e / d, c = e - r * d;
                        float a = acc[i] * alpha[r];
                        for (int j = 0; j < bc; j++) a += ss[r * bc + j] * kvs[j * ld + c];
                        acc[i] = a;
                    }
                }
                // The next key tile overwrites kvs and ss.
                Group.Barrier();
            }
            for (int i = 0; i < Acc; i++)
            {
                int e = t + i * GroupSize;
                if (e < rows * d)
                {
                    int r = e / d, c = e - r * d;
                    o[(bh * s.Nq + q0 + r) * d + c] = acc[i] / lRow[r];
                }
            }
            if (t < rows) lse[bh * s.Nq + q0 + t] = mRow[t] + XMath.Log(lRow[t]);
            // The next tile overwrites qs, mRow and lRow.
            Group.Barrier();
        }
    }

    /// out[row] = sum_c a[row, c] * b[row, c] (D = rowsum(dO * O)); grid-stride over rows.
    static void RowDotKernel(Index1D tid, ArrayView<float> a, ArrayView<float> b, ArrayView<float> output, int rows, int d, int stride)
    {
        for (int row = tid; row < rows; row += stride)
        {
            float acc = 0f;
            for (int c = 0; c < d; c++) acc += a[row * d + c] * b[row * d + c];
            output[row] = acc;
        }
    }

    /// dQ: one group per tile of Br query rows; streams Bc keys: P = exp(S - lse), dS = P (dP - D), dQ += scale dS K.
    static void BackwardQKernel(ArrayView<float> q, ArrayView<float> k, ArrayView<float> v, ArrayView<float> dO,
        ArrayView<float> lse, ArrayView<float> dRow, ArrayView<float> dq, AttentionShape s)
    {
        var qs = SharedMemory.Allocate<float>(TileCapBackward + MaxRows);
        var dos = SharedMemory.Allocate<float>(TileCapBackward + MaxRows);
        var kvs = SharedMemory.Allocate<float>(TileCapBackward + MaxRows);
        var ss = SharedMemory.Allocate<float>(ScoreCapBackward);
        var lseS = SharedMemory.Allocate<float>(MaxRows);
        var dS = SharedMemory.Allocate<float>(MaxRows);
        var acc = LocalMemory.Allocate1D<float>(AccBackward);
        int t = Group.IdxX, d = s.D, ld = d + 1, br = s.Br, bc = s.Bc;
        int tiles = s.Tiles(s.Nq);
        for (int tile = Grid.IdxX; tile < s.BH * tiles; tile += Grid.DimX)
        {
            int bh = tile / tiles, q0 = (tile - bh * tiles) * br;
            int rows = XMath.Min(br, s.Nq - q0);
            LoadTile(q, bh * s.Nq + q0, rows, br, d, qs);
            LoadTile(dO, bh * s.Nq + q0, rows, br, d, dos);
            if (t < br)
            {
                lseS[t] = t < rows ? lse[bh * s.Nq + q0 + t] : 0f;
                dS[t] = t < rows ? dRow[bh * s.Nq + q0 + t] : 0f;
            }
            for (int i = 0; i < AccBackward; i++) acc[i] = 0f;
            Group.Barrier();
            for (int k0 = 0; k0 < s.Nk; k0 += bc)
            {
                int cols = XMath.Min(bc, s.Nk - k0);
                LoadTile(k, bh * s.Nk + k0, cols, bc, d, kvs);
                Group.Barrier();
                for (int e = t; e < br * bc; e += GroupSize)
                {
                    int r = e / bc, c = e - r * bc;
                    ss[e] = r < rows && c < cols ? XMath.Exp(s.Scale * TileDot(qs, r, kvs, c, d) - lseS[r]) : 0f;
                }
                Group.Barrier();
                LoadTile(v, bh * s.Nk + k0, cols, bc, d, kvs);
                Group.Barrier();
                // Each thread rewrites only its own entries: P -> dS = P (dO.V - D).
                for (int e = t; e < br * bc; e += GroupSize)
                {
                    int r = e / bc, c = e - r * bc;
                    ss[e] = ss[e] * (TileDot(dos, r, kvs, c, d) - dS[r]);
                }
                Group.Barrier();
                LoadTile(k, bh * s.Nk + k0, cols, bc, d, kvs);
                Group.Barrier();
                for (int i = 0; i < AccBackward; i++)
                {
                    int e = t + i * GroupSize;
                    if (e < br * d)
                    {
                        int r = e / d, c = e - r * d;
                        float a = acc[i];
                        for (int j = 0; j < bc; j++) a += ss[r * bc + j] * kvs[j * ld + c];
                        acc[i] = a;
                    }
                }
                Group.Barrier();
            }
            for (int i = 0; i < AccBackward; i++)
            {
                int e = t + i * GroupSize;
                if (e < rows * d)
                {
                    int r = e / d, c = e - r * d;
                    dq[(bh * s.Nq + q0 + r) * d + c] = s.Scale * acc[i];
                }
            }
            Group.Barrier();
        }
    }

    /// dK, dV: one group per tile of Br keys; streams Bc queries: dV += P^T dO, dK += scale dS^T Q.
    static void BackwardKVKernel(ArrayView<float> q, ArrayView<float> k, ArrayView<float> v, ArrayView<float> dO,
        ArrayView<float> lse, ArrayView<float> dRow, ArrayView<float> dk, ArrayView<float> dv, AttentionShape s)
    {
        var ks = SharedMemory.Allocate<float>(TileCapBackward + MaxRows);
        var vs = SharedMemory.Allocate<float>(TileCapBackward + MaxRows);
        var qb = SharedMemory.Allocate<float>(TileCapBackward + MaxRows);
        var ss = SharedMemory.Allocate<float>(ScoreCapBackward);
        var lseS = SharedMemory.Allocate<float>(MaxRows);
        var dS = SharedMemory.Allocate<float>(MaxRows);
        var accK = LocalMemory.Allocate1D<float>(AccBackward);
        var accV = LocalMemory.Allocate1D<float>(AccBackward);
        // Here Br counts keys (the tiled dimension) and Bc queries (the streamed one);
        // the score tile is stored query-major: ss[r * br + c] for query r, key c.
        int t = Group.IdxX, d = s.D, ld = d + 1, br = s.Br, bc = s.Bc;
        int tiles = s.Tiles(s.Nk);
        for (int tile = Grid.IdxX; tile < s.BH * tiles; tile += Grid.DimX)
        {
            int bh = tile / tiles, k0 = (tile - bh * tiles) * br;
            int cols = XMath.Min(br, s.Nk - k0);
            LoadTile(k, bh * s.Nk + k0, cols, br, d, ks);
            LoadTile(v, bh * s.Nk + k0, cols, br, d, vs);
            for (int i = 0; i < AccBackward; i++) { accK[i] = 0f; accV[i] = 0f; }
            for (int q0 = 0; q0 < s.Nq; q0 += bc)
            {
                int rows = XMath.Min(bc, s.Nq - q0);
                LoadTile(q, bh * s.Nq + q0, rows, bc, d, qb);
                if (t < bc)
                {
                    lseS[t] = t < rows ? lse[bh * s.Nq + q0 + t] : 0f;
                    dS[t] = t < rows ? dRow[bh * s.Nq + q0 + t] : 0f;
                }
                Group.Barrier();
                for (int e = t; e < bc * br; e += GroupSize)
                {
                    int r = e / br, c = e - r * br;
                    ss[e] = r < rows && c < cols ? XMath.Exp(s.Scale * TileDot(qb, r, ks, c, d) - lseS[r]) : 0f;
                }
                Group.Barrier();
                LoadTile(dO, bh * s.Nq + q0, rows, bc, d, qb);
                Group.Barrier();
                for (int i = 0; i < AccBackward; i++)
                {
                    int e = t + i * GroupSize;
                    if (e < br * d)
                    {
                        int c = e / d, j = e - c * d;
                        float a = accV[i];
                        for (int r = 0; r < bc; r++) a += ss[r * br + c] * qb[r * ld + j];
                        accV[i] = a;
                    }
                }
                // Everyone has read P before it is overwritten with dS.
                Group.Barrier();
                for (int e = t; e < bc * br; e += GroupSize)
                {
                    int r = e / br, c = e - r * br;
                    ss[e] = ss[e] * (TileDot(qb, r, vs, c, d) - dS[r]);
                }
                Group.Barrier();
                LoadTile(q, bh * s.Nq + q0, rows, bc, d, qb);
                Group.Barrier();
                for (int i = 0; i < AccBackward; i++)
                {
                    int e = t + i * GroupSize;
                    if (e < br * d)
                    {
                        int c = e / d, j = e - c * d;
                        float a = accK[i];
                        for (int r = 0; r < bc; r++) a += ss[r * br + c] * qb[r * ld + j];
                        accK[i] = a;
                    }
                }
                // The next query tile overwrites qb, ss, lseS and dS.
                Group.Barrier();
            }
            for (int i = 0; i < AccBackward; i++)
            {
                int e = t + i * GroupSize;
                if (e < cols * d)
                {
                    int c = e / d, j = e - c * d;
                    dk[(bh * s.Nk + k0 + c) * d + j] = s.Scale * accK[i];
                    dv[(bh * s.Nk + k0 + c) * d + j] = accV[i];
                }
            }
            Group.Barrier();
        }
    }
}

/// <summary>Outputs of <see cref="Ops.AttentionForward"/>.</summary>
/// <param name="O">Attention output (..., Nq, d).</param>
/// <param name="Lse">Log-sum-exp of each row of scaled scores (..., Nq), saved for the backward.</param>
public sealed record AttentionOutput(Tensor O, Tensor Lse);

/// <summary>Gradients returned by <see cref="Ops.AttentionBackward"/>, shaped like Q, K and V.</summary>
public sealed record AttentionGrads(Tensor DQ, Tensor DK, Tensor DV);

public static partial class Ops
{
    /// <summary>Largest head dimension d the attention kernels accept (shared-memory tiles hold at least 8 rows of d floats).</summary>
    public const int AttentionMaxHeadDim = 256;

    /// <summary>Scaled dot-product attention without saving anything (inference). See <see cref="AttentionForward"/>.</summary>
    public static Tensor Attention(Tensor q, Tensor k, Tensor v, float? scale = null)
    {
        var o = AttentionForward(q, k, v, scale);
        o.Lse.Dispose();
        return o.O;
    }

    /// <summary>
    /// softmax(scale * Q K^T) V per head, stable (row max subtracted), with the row log-sum-exp saved.
    /// </summary>
    /// <param name="q">(..., Nq, d), rank &gt;= 2; leading dimensions are heads (B, heads) or (B*heads).</param>
    /// <param name="k">(..., Nk, d), same leading dimensions as q.</param>
    /// <param name="v">(..., Nk, d), k's shape.</param>
    /// <param name="scale">Score scale; default 1/sqrt(d).</param>
    public static AttentionOutput AttentionForward(Tensor q, Tensor k, Tensor v, float? scale = null)
    {
        var s = AttentionValidate("Attention", q, k, v, scale, TileCapFor(false));
        var device = q.Device;
        var o = Tensor.Empty(device, q.Shape);
        var lse = Tensor.Empty(device, q.Shape[..^1]);
        if (device.UseCpuFastPath)
        {
            AttentionForwardCpu(q, k, v, o, lse, s);
        }
        else if (UseAttentionGemms(device, s))
        {
            AttentionForwardGemm(q, k, v, o, lse, s);
        }
        else
        {
            device.Kernels<AttentionKernels>().Forward(TileConfig(device, s.BH * s.Tiles(s.Nq)), q.View, k.View, v.View, o.View, lse.View, s);
        }
        return new AttentionOutput(o, lse);
    }

    /// <summary>
    /// Backward of <see cref="AttentionForward"/>: new tensors dQ, dK, dV (shaped like q, k, v).
    /// </summary>
    /// <param name="q">Forward query (..., Nq, d).</param>
    /// <param name="k">Forward keys (..., Nk, d).</param>
    /// <param name="v">Forward values (..., Nk, d).</param>
    /// <param name="o">Forward output (..., Nq, d).</param>
    /// <param name="lse">Saved log-sum-exp (..., Nq).</param>
    /// <param name="dO">Gradient of o.</param>
    /// <param name="scale">The forward's scale (default 1/sqrt(d)).</param>
    public static AttentionGrads AttentionBackward(Tensor q, Tensor k, Tensor v, Tensor o, Tensor lse, Tensor dO, float? scale = null)
    {
        var s = AttentionValidate("AttentionBackward", q, k, v, scale, TileCapFor(true));
        Shapes.RequireEqual("AttentionBackward", "o", q.Shape, o.Shape);
        Shapes.RequireEqual("AttentionBackward", "dO", q.Shape, dO.Shape);
        Shapes.RequireEqual("AttentionBackward", "lse", q.Shape[..^1], lse.Shape);
        var device = q.Device;
        var dq = Tensor.Empty(device, q.Shape);
        var dk = Tensor.Empty(device, k.Shape);
        var dv = Tensor.Empty(device, v.Shape);
        using var dRow = Tensor.Empty(device, s.BH * s.Nq);
        if (device.UseCpuFastPath)
        {
            AttentionBackwardCpu(q, k, v, o, lse, dO, dq, dk, dv, s);
            return new AttentionGrads(dq, dk, dv);
        }
        var kernels = device.Kernels<AttentionKernels>();
        int rows = s.BH * s.Nq;
        kernels.RowDot(device.LaunchThreads(rows), dO.View, o.View, dRow.View, rows, s.D, device.LaunchThreads(rows));
        if (UseAttentionGemms(device, s))
        {
            AttentionBackwardGemm(q, k, v, lse, dO, dRow, dq, dk, dv, s);
            return new AttentionGrads(dq, dk, dv);
        }
        kernels.BackwardQ(TileConfig(device, s.BH * s.Tiles(s.Nq)), q.View, k.View, v.View, dO.View, lse.View, dRow.View, dq.View, s);
        // The dK/dV kernel tiles Br keys and streams Bc queries (same capacities, roles swapped).
        kernels.BackwardKV(TileConfig(device, s.BH * s.Tiles(s.Nk)), q.View, k.View, v.View, dO.View, lse.View, dRow.View, dk.View, dv.View, s);
        return new AttentionGrads(dq, dk, dv);
    }

    /// <summary>
    /// Which attention kernels the kernel path uses: null (the default) takes the GEMM path on GPUs
    /// and the flash-style tiles on the CPU accelerator; true or false forces one (tests run the GEMM
    /// path on the CPU accelerator this way). The first GPU run measured the flash tiles at 6-17 %
    /// of PyTorch's SDPA (tiles of 16 rows, scalar dot products); the GEMM path runs QK^T, PV and
    /// the five backward products as batched GEMMs over all heads.
    /// </summary>
    public static bool? AttentionViaGemms { get; set; }

    // The GEMM path holds at least one head's Nq x Nk scores: above the budget (or 32-bit sizes) the
    // flash tiles, which hold none, run instead.
    static bool UseAttentionGemms(EdmDevice device, AttentionShape s) =>
        (long)s.Nq * s.Nk <= AttentionScoreBudget && (AttentionViaGemms ?? !device.IsCpu);

    /// <summary>Most score floats (heads x Nq x Nk) the GEMM path holds at once; more heads run in chunks.</summary>
    const long AttentionScoreBudget = 1L << 26;

    static int AttentionHeadChunk(AttentionShape s) => (int)Math.Clamp(AttentionScoreBudget / Math.Max(1L, (long)s.Nq * s.Nk), 1, s.BH);

    // GEMM path, forward, per chunk of heads: S = scale Q K^T (batched GEMM), P = softmax rows with
    // lse saved, O = P V (batched GEMM).
    static void AttentionForwardGemm(Tensor q, Tensor k, Tensor v, Tensor o, Tensor lse, AttentionShape s)
    {
        var device = q.Device;
        var kernels = device.Kernels<AttentionKernels>();
        int nq = s.Nq, nk = s.Nk, d = s.D, chunk = AttentionHeadChunk(s);
        using var scores = Tensor.Empty(device, (int)((long)chunk * nq * nk));
        for (int h0 = 0; h0 < s.BH; h0 += chunk)
        {
            int hc = Math.Min(chunk, s.BH - h0);
            long qo = (long)h0 * nq * d, ko = (long)h0 * nk * d;
            var sv = scores.View.SubView(0, (long)hc * nq * nk);
            RunGemmKernel(device, q.View.SubView(qo), k.View.SubView(ko), sv,
                new GemmShape(nq, nk, d, hc, 0, nq * d, d, 1, nk * d, 1, d, nq * nk, nk, s.Scale, 0f), GemmVariant.Auto);
            int rows = hc * nq;
            kernels.SoftmaxLse(GroupReduction.RowConfig(device, rows), sv, lse.View.SubView((long)h0 * nq, rows), rows, nk);
            RunGemmKernel(device, sv, v.View.SubView(ko), o.View.SubView(qo),
                new GemmShape(nq, d, nk, hc, 0, nq * nk, nk, 1, nk * d, d, 1, nq * d, d, 1f, 0f), GemmVariant.Auto);
        }
    }

    // GEMM path, backward, per chunk of heads: S = scale Q K^T, P = exp(S - lse), dV = P^T dO,
    // dP = dO V^T, dS = P (dP - D), dQ = scale dS K, dK = scale dS^T Q. Every output element is
    // written once by one GEMM: deterministic.
    static void AttentionBackwardGemm(Tensor q, Tensor k, Tensor v, Tensor lse, Tensor dO, Tensor dRow,
        Tensor dq, Tensor dk, Tensor dv, AttentionShape s)
    {
        var device = q.Device;
        var kernels = device.Kernels<AttentionKernels>();
        int nq = s.Nq, nk = s.Nk, d = s.D, chunk = AttentionHeadChunk(s);
        using var p = Tensor.Empty(device, (int)((long)chunk * nq * nk));
        using var ds = Tensor.Empty(device, (int)((long)chunk * nq * nk));
        for (int h0 = 0; h0 < s.BH; h0 += chunk)
        {
            int hc = Math.Min(chunk, s.BH - h0);
            long qo = (long)h0 * nq * d, ko = (long)h0 * nk * d;
            int n = hc * nq * nk;
            var pv = p.View.SubView(0, n);
            var dsv = ds.View.SubView(0, n);
            var qh = q.View.SubView(qo);
            var kh = k.View.SubView(ko);
            var vh = v.View.SubView(ko);
            var gh = dO.View.SubView(qo);
            RunGemmKernel(device, qh, kh, pv, new GemmShape(nq, nk, d, hc, 0, nq * d, d, 1, nk * d, 1, d, nq * nk, nk, s.Scale, 0f), GemmVariant.Auto);
            int threads = device.LaunchThreads(n);
            kernels.ExpMinusRow(threads, pv, lse.View.SubView((long)h0 * nq, hc * nq), n, nk, threads);
            RunGemmKernel(device, pv, gh, dv.View.SubView(ko), new GemmShape(nk, d, nq, hc, 0, nq * nk, 1, nk, nq * d, d, 1, nk * d, d, 1f, 0f), GemmVariant.Auto);
            RunGemmKernel(device, gh, vh, dsv, new GemmShape(nq, nk, d, hc, 0, nq * d, d, 1, nk * d, 1, d, nq * nk, nk, 1f, 0f), GemmVariant.Auto);
            kernels.ScoreGrad(threads, pv, dsv, dRow.View.SubView((long)h0 * nq, hc * nq), n, nk, threads);
            RunGemmKernel(device, dsv, kh, dq.View.SubView(qo), new GemmShape(nq, d, nk, hc, 0, nq * nk, nk, 1, nk * d, d, 1, nq * d, d, s.Scale, 0f), GemmVariant.Auto);
            RunGemmKernel(device, dsv, qh, dk.View.SubView(ko), new GemmShape(nk, d, nq, hc, 0, nq * nk, 1, nk, nq * d, d, 1, nk * d, d, s.Scale, 0f), GemmVariant.Auto);
        }
    }

    static (int Tile, int Score) TileCapFor(bool backward) => backward
        ? (AttentionKernels.TileCapBackward, AttentionKernels.ScoreCapBackward)
        : (AttentionKernels.TileCap, AttentionKernels.ScoreCap);

    static KernelConfig TileConfig(EdmDevice device, int tiles)
    {
        int cap = device.IsCpu ? Math.Max(2, Environment.ProcessorCount) : Math.Max(1, device.GridThreads / AttentionKernels.GroupSize);
        return new KernelConfig(Math.Max(1, Math.Min(tiles, cap)), AttentionKernels.GroupSize);
    }

    static AttentionShape AttentionValidate(string op, Tensor q, Tensor k, Tensor v, float? scale, (int Tile, int Score) caps)
    {
        if (q.Rank < 2) throw new ArgumentException($"{op}: q has shape {q.ShapeString}; expected (..., Nq, d) of rank >= 2");
        if (k.Rank != q.Rank || !q.Shape.AsSpan(0, q.Rank - 2).SequenceEqual(k.Shape.AsSpan(0, k.Rank - 2)) || k.Shape[^1] != q.Shape[^1])
            throw new ArgumentException($"{op}: k has shape {k.ShapeString}, incompatible with q {q.ShapeString}; expected (..., Nk, d) with q's leading dimensions and d = {q.Shape[^1]}");
        Shapes.RequireEqual(op, "v", k.Shape, v.Shape);
        int d = q.Shape[^1];
        if (d > AttentionMaxHeadDim)
            throw new ArgumentException($"{op}: head dimension d = {d} (q {q.ShapeString}); allowed: 1..{AttentionMaxHeadDim}");
        float sc = scale ?? 1f / MathF.Sqrt(d);
        if (!float.IsFinite(sc)) throw new ArgumentException($"{op}: scale = {sc}; allowed: a finite number");
        int nq = q.Shape[^2], nk = k.Shape[^2], bh = q.Length / (nq * d);
        var (tiled, streamed) = AttentionKernels.TileRows(d, caps.Tile, caps.Score);
        return new AttentionShape(bh, nq, nk, d, tiled, streamed, sc);
    }

    // Per head: S = scale Q K^T and O = P V as two GEMMs (the CPU GEMM's micro-kernel instead of one
    // dot product per (query, key) pair), the row softmax in between (TensorPrimitives). Heads run in
    // parallel with serial GEMMs when there are at least as many as cores, else one after the other
    // with parallel GEMMs. Holds one Nq x Nk score matrix per worker.
    static unsafe void AttentionForwardCpu(Tensor q, Tensor k, Tensor v, Tensor o, Tensor lse, AttentionShape s)
    {
        int d = s.D, nq = s.Nq, nk = s.Nk, cores = Environment.ProcessorCount;
        // S (nq, nk) = scale * Q (nq, d) K^T: B = K^T read through strides (k, n) -> n*d + k.
        var gs = new GemmShape(nq, nk, d, 1, 0, 0, d, 1, 0, 1, d, 0, nk, s.Scale, 0f);
        // O (nq, d) = P (nq, nk) V (nk, d).
        var go = new GemmShape(nq, d, nk, 1, 0, 0, nk, 1, 0, d, 1, 0, d, 1f, 0f);
        fixed (float* pq = q.CpuSpan(), pk = k.CpuSpan(), pv = v.CpuSpan(), po = o.CpuSpan(), pl = lse.CpuSpan())
        {
            nint aq = (nint)pq, ak = (nint)pk, av = (nint)pv, ao = (nint)po, al = (nint)pl;
            void Head(int bh, int threads)
            {
                var scores = System.Buffers.ArrayPool<float>.Shared.Rent(nq * nk);
                try
                {
                    fixed (float* ps = scores)
                    {
                        GemmHost((float*)aq + (long)bh * nq * d, (float*)ak + (long)bh * nk * d, ps, gs, threads);
                        for (int i = 0; i < nq; i++)
                        {
                            var row = new Span<float>(ps + (long)i * nk, nk);
                            float m = TensorPrimitives.Max(row);
                            TensorPrimitives.Subtract(row, m, row);
                            TensorPrimitives.Exp(row, row);
                            float l = TensorPrimitives.Sum(row);
                            TensorPrimitives.Multiply(row, 1f / l, row);
                            ((float*)al)[(long)bh * nq + i] = m + MathF.Log(l);
                        }
                        GemmHost(ps, (float*)av + (long)bh * nk * d, (float*)ao + (long)bh * nq * d, go, threads);
                    }
                }
                finally { System.Buffers.ArrayPool<float>.Shared.Return(scores); }
            }
            if (s.BH >= cores && cores > 1)
                Parallel.For(0, s.BH, new ParallelOptions { MaxDegreeOfParallelism = cores }, bh => Head(bh, 1));
            else
                for (int bh = 0; bh < s.BH; bh++) Head(bh, cores);
        }
    }

    // Per head, with the CPU GEMM: S = scale Q K^T, P = exp(S - lse) (row by row), dV = P^T dO,
    // dP = dO V^T, dS = P (dP - D) with D_i = dO_i . O_i, dQ = scale dS K, dK = scale dS^T Q.
    // Heads in parallel with serial GEMMs when there are at least as many as cores, else one after
    // the other with parallel GEMMs; two Nq x Nk matrices (P, dS) per worker. Every output element is
    // written once (no cross-head sums), so the result does not depend on the thread count.
    static unsafe void AttentionBackwardCpu(Tensor q, Tensor k, Tensor v, Tensor o, Tensor lse, Tensor dO,
        Tensor dq, Tensor dk, Tensor dv, AttentionShape s)
    {
        int d = s.D, nq = s.Nq, nk = s.Nk, cores = Environment.ProcessorCount;
        float scale = s.Scale;
        var gS = new GemmShape(nq, nk, d, 1, 0, 0, d, 1, 0, 1, d, 0, nk, scale, 0f);      // S = scale Q K^T
        var gDv = new GemmShape(nk, d, nq, 1, 0, 0, 1, nk, 0, d, 1, 0, d, 1f, 0f);        // dV = P^T dO
        var gDp = new GemmShape(nq, nk, d, 1, 0, 0, d, 1, 0, 1, d, 0, nk, 1f, 0f);        // dP = dO V^T
        var gDq = new GemmShape(nq, d, nk, 1, 0, 0, nk, 1, 0, d, 1, 0, d, scale, 0f);     // dQ = scale dS K
        var gDk = new GemmShape(nk, d, nq, 1, 0, 0, 1, nk, 0, d, 1, 0, d, scale, 0f);     // dK = scale dS^T Q
        fixed (float* pq = q.CpuSpan(), pk = k.CpuSpan(), pv = v.CpuSpan(), po = o.CpuSpan(), pl = lse.CpuSpan(), pg = dO.CpuSpan(),
               pdq = dq.CpuSpan(), pdk = dk.CpuSpan(), pdv = dv.CpuSpan())
        {
            nint aq = (nint)pq, ak = (nint)pk, av = (nint)pv, ao = (nint)po, al = (nint)pl, ag = (nint)pg,
                 adq = (nint)pdq, adk = (nint)pdk, adv = (nint)pdv;
            void Head(int bh, int threads)
            {
                long qo = (long)bh * nq * d, ko = (long)bh * nk * d;
                var pArr = System.Buffers.ArrayPool<float>.Shared.Rent(nq * nk);
                var dsArr = System.Buffers.ArrayPool<float>.Shared.Rent(nq * nk);
                try
                {
                    fixed (float* pp = pArr, pds = dsArr)
                    {
                        float* qh = (float*)aq + qo, kh = (float*)ak + ko, vh = (float*)av + ko, oh = (float*)ao + qo, gh = (float*)ag + qo;
                        GemmHost(qh, kh, pp, gS, threads);
                        GemmHost(gh, vh, pds, gDp, threads);
                        for (int i = 0; i < nq; i++)
                        {
                            var prow = new Span<float>(pp + (long)i * nk, nk);
                            var dsrow = new Span<float>(pds + (long)i * nk, nk);
                            TensorPrimitives.Subtract(prow, ((float*)al)[(long)bh * nq + i], prow);
                            TensorPrimitives.Exp(prow, prow);
                            float di = TensorPrimitives.Dot(new ReadOnlySpan<float>(gh + (long)i * d, d), new ReadOnlySpan<float>(oh + (long)i * d, d));
                            TensorPrimitives.Subtract(dsrow, di, dsrow);
                            TensorPrimitives.Multiply(dsrow, prow, dsrow);
                        }
                        GemmHost(pp, gh, (float*)adv + ko, gDv, threads);
                        GemmHost(pds, kh, (float*)adq + qo, gDq, threads);
                        GemmHost(pds, qh, (float*)adk + ko, gDk, threads);
                    }
                }
                finally
                {
                    System.Buffers.ArrayPool<float>.Shared.Return(pArr);
                    System.Buffers.ArrayPool<float>.Shared.Return(dsArr);
                }
            }
            if (s.BH >= cores && cores > 1)
                Parallel.For(0, s.BH, new ParallelOptions { MaxDegreeOfParallelism = cores }, bh => Head(bh, 1));
            else
                for (int bh = 0; bh < s.BH; bh++) Head(bh, cores);
        }
    }
}

// Gemm: batched matrix multiply C[b] = alpha * op(A[b]) op(B[b]) + beta * C[b] in float32 with
// float32 accumulation, row-major operands addressed through strides (so a transpose is a stride
// swap, and a batch of 1 broadcasts with batch stride 0). With ReduceBatch the products of all
// batch items are summed into one C (weight gradients: dW = sum_b dY[b] X[b]^T).
//
// Layouts: A (Bt, M, K) or its transpose (Bt, K, M); B (Bt, K, N) or (Bt, N, K); C (Bt, M, N).
// Variants, naive to fast:
//   1. GemmNaive:  one thread per C element, grid-stride, dot product straight from global memory
//                  (the bench's in-family baseline on GPUs).
//   2. GemmTiled:  64x64 C tile per group of 256 threads, A and B tiles of depth 16 staged in shared
//                  memory, each thread a 4x4 register block (rows ty+16i, cols tx+16j so shared
//                  reads are conflict-free); bounds-checked loads make any M, N, K correct.
//   CPU fast path: GotoBLAS-style blocking (KC x N panel of B packed once per depth block, MC x KC
//                  block of A packed per task, 64-byte aligned), a register-blocked FMA micro-kernel
//                  chosen at start-up (12 x 32 over Vector512 with AVX-512, 6 x 2*Vector<float>.Count
//                  otherwise), Parallel.For over (row block, column block) tasks.
using System.Buffers;
using System.Numerics;
using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;
using ILGPU;
using ILGPU.Runtime;

namespace Edm.Kernels;

/// <summary>
/// One (batched) GEMM problem for the kernels: sizes, element strides of every operand and the
/// scalars. Element (m, k) of A[b] is at <c>b*ABatch + m*ARow + k*ACol</c>; likewise B (k, n) and
/// C (m, n) (C is always row-major with unit column stride).
/// </summary>
public readonly record struct GemmShape(
    int M, int N, int K, int Batch, int ReduceBatch,
    int ABatch, int ARow, int ACol,
    int BBatch, int BRow, int BCol,
    int CBatch, int CRow,
    float Alpha, float Beta);

/// <summary>Which GEMM kernel a GPU-style launch uses (the CPU fast path ignores it).</summary>
public enum GemmVariant
{
    /// <summary>Variant 1: one thread per output, no reuse (a baseline).</summary>
    Naive = 1,
    /// <summary>Variant 2: shared-memory tiles with 4x4 register blocking.</summary>
    Tiled = 2,
}

/// <summary>The GEMM kernels, loaded once per device.</summary>
public sealed class GemmKernels : IKernelFamily<GemmKernels>
{
    /// <summary>C tile edge of the tiled kernel.</summary>
    public const int Tile = 64;
    /// <summary>Depth of the A and B tiles staged in shared memory.</summary>
    public const int TileK = 16;
    /// <summary>Threads per group of the tiled kernel (16 x 16, each a 4 x 4 block).</summary>
    public const int GroupSize = 256;
    // Shared tile row pitch: 65 (not 64) so the column-wise stores of a row-major A tile hit
    // distinct banks.
    const int Pitch = Tile + 1;

    internal readonly Action<Index1D, ArrayView<float>, ArrayView<float>, ArrayView<float>, GemmShape, int> Naive;
    internal readonly Action<KernelConfig, ArrayView<float>, ArrayView<float>, ArrayView<float>, GemmShape> Tiled;

    GemmKernels(Accelerator acc)
    {
        Naive = acc.LoadAutoGroupedStreamKernel<Index1D, ArrayView<float>, ArrayView<float>, ArrayView<float>, GemmShape, int>(GemmNaiveKernel);
        Tiled = acc.LoadStreamKernel<ArrayView<float>, ArrayView<float>, ArrayView<float>, GemmShape>(GemmTiledKernel);
    }

    /// <inheritdoc/>
    public static GemmKernels Load(EdmDevice device) => new(device.Accelerator);

    /// <summary>Variant 1: C element per thread (grid-stride over batch*M*N outputs).</summary>
    static void GemmNaiveKernel(Index1D tid, ArrayView<float> a, ArrayView<float> b, ArrayView<float> c, GemmShape s, int stride)
    {
        int outBatches = s.ReduceBatch != 0 ? 1 : s.Batch;
        int total = outBatches * s.M * s.N;
        for (int idx = tid; idx < total; idx += stride)
        {
            int n = idx % s.N;
            int m = (idx / s.N) % s.M;
            int ob = idx / (s.N * s.M);
            int b0 = s.ReduceBatch != 0 ? 0 : ob;
            int b1 = s.ReduceBatch != 0 ? s.Batch : ob + 1;
            float acc = 0f;
            for (int bb = b0; bb < b1; bb++)
            {
                int ao = bb * s.ABatch + m * s.ARow;
                int bo = bb * s.BBatch + n * s.BCol;
                for (int k = 0; k < s.K; k++)
                    acc += a[ao + k * s.ACol] * b[bo + k * s.BRow];
            }
            int ci = ob * s.CBatch + m * s.CRow + n;
            c[ci] = s.Beta == 0f ? s.Alpha * acc : s.Alpha * acc + s.Beta * c[ci];
        }
    }

    /// <summary>Variant 2: one 64x64 C tile per group; grid (ceil(N/64), ceil(M/64), batch or 1).</summary>
    static void GemmTiledKernel(ArrayView<float> a, ArrayView<float> b, ArrayView<float> c, GemmShape s)
    {
        var sa = SharedMemory.Allocate<float>(TileK * Pitch); // sa[k*Pitch + m]
        var sb = SharedMemory.Allocate<float>(TileK * Pitch); // sb[k*Pitch + n]
        int tid = Group.IdxX;
        int tx = tid & 15, ty = tid >> 4;
        int n0 = Grid.IdxX * Tile, m0 = Grid.IdxY * Tile;
        float c00 = 0, c01 = 0, c02 = 0, c03 = 0, c10 = 0, c11 = 0, c12 = 0, c13 = 0;
        float c20 = 0, c21 = 0, c22 = 0, c23 = 0, c30 = 0, c31 = 0, c32 = 0, c33 = 0;
        int b0 = s.ReduceBatch != 0 ? 0 : Grid.IdxZ;
        int b1 = s.ReduceBatch != 0 ? s.Batch : Grid.IdxZ + 1;
        // Load mapping chosen so consecutive threads read consecutive addresses: along K when the
        // operand's K stride is 1, else along M (A) or N (B). The branch is uniform per launch.
        bool aAlongK = s.ACol == 1, bAlongN = s.BCol == 1;
        for (int bb = b0; bb < b1; bb++)
        {
            int ao = bb * s.ABatch, bo = bb * s.BBatch;
            for (int k0 = 0; k0 < s.K; k0 += TileK)
            {
                for (int r = 0; r < 4; r++)
                {
                    int e = tid + r * GroupSize;
                    int am = aAlongK ? e >> 4 : e & 63;
                    int ak = aAlongK ? e & 15 : e >> 6;
                    int gm = m0 + am, gk = k0 + ak;
                    sa[ak * Pitch + am] = gm < s.M && gk < s.K ? a[ao + gm * s.ARow + gk * s.ACol] : 0f;
                    int bn = bAlongN ? e & 63 : e >> 4;
                    int bk = bAlongN ? e >> 6 : e & 15;
                    int gn = n0 + bn, gk2 = k0 + bk;
                    sb[bk * Pitch + bn] = gn < s.N && gk2 < s.K ? b[bo + gk2 * s.BRow + gn * s.BCol] : 0f;
                }
                Group.Barrier();
                for (int kk = 0; kk < TileK; kk++)
                {
                    int ab = kk * Pitch + ty, bbs = kk * Pitch + tx;
                    float a0 = sa[ab], a1 = sa[ab + 16], a2 = sa[ab + 32], a3 = sa[ab + 48];
                    float v0 = sb[bbs], v1 = sb[bbs + 16], v2 = sb[bbs + 32], v3 = sb[bbs + 48];
                    c00 += a0 * v0; c01 += a0 * v1; c02 += a0 * v2; c03 += a0 * v3;
                    c10 += a1 * v0; c11 += a1 * v1; c12 += a1 * v2; c13 += a1 * v3;
                    c20 += a2 * v0; c21 += a2 * v1; c22 += a2 * v2; c23 += a2 * v3;
                    c30 += a3 * v0; c31 += a3 * v1; c32 += a3 * v2; c33 += a3 * v3;
                }
                Group.Barrier();
            }
        }
        int co = s.ReduceBatch != 0 ? 0 : Grid.IdxZ * s.CBatch;
        int mA = m0 + ty, nA = n0 + tx;
        Store(c, s, co, mA, nA, c00, c01, c02, c03);
        Store(c, s, co, mA + 16, nA, c10, c11, c12, c13);
        Store(c, s, co, mA + 32, nA, c20, c21, c22, c23);
        Store(c, s, co, mA + 48, nA, c30, c31, c32, c33);
    }

    /// <summary>Writes one thread's row of four outputs (columns n, n+16, n+32, n+48) with alpha/beta.</summary>
    static void Store(ArrayView<float> c, GemmShape s, int co, int m, int n, float v0, float v1, float v2, float v3)
    {
        if (m >= s.M) return;
        int row = co + m * s.CRow;
        StoreOne(c, s, row, n, v0);
        StoreOne(c, s, row, n + 16, v1);
        StoreOne(c, s, row, n + 32, v2);
        StoreOne(c, s, row, n + 48, v3);
    }

    static void StoreOne(ArrayView<float> c, GemmShape s, int row, int n, float v)
    {
        if (n >= s.N) return;
        int i = row + n;
        // beta == 0 overwrites (C may hold garbage or NaN), as BLAS does.
        c[i] = s.Beta == 0f ? s.Alpha * v : s.Alpha * v + s.Beta * c[i];
    }
}

/// <summary>A register-blocked micro-kernel: C[0:mr, 0:nr] += alpha * Apanel (MR x kc) * Bpanel (kc x NR).</summary>
internal unsafe interface IGemmMicroKernel
{
    /// <summary>Rows of C per call (A panel height).</summary>
    static abstract int MR { get; }
    /// <summary>Columns of C per call (B panel width).</summary>
    static abstract int NR { get; }
    /// <summary>Rows of A packed per task block (a multiple of MR; MC x KC floats stay in L2).</summary>
    static abstract int MC { get; }
    /// <summary>Runs the kernel on packed panels; <paramref name="mr"/>, <paramref name="nr"/> &lt; MR, NR at the edges.</summary>
    static abstract void Run(float* ap, float* bp, int kc, float* c, int ldc, float alpha, int mr, int nr);
}

/// <summary>
/// The CPU fast path of GEMM: plain C# over the CPU accelerator's buffers. The micro-kernel is
/// chosen once per process from the ISA: 12 x 32 with Vector512 (AVX-512: 24 accumulators of the 32
/// registers), else 6 x 2 Vector&lt;float&gt; (AVX2: 12 of 16 registers; SSE: 6 x 8).
/// EDM_GEMM_KERNEL=vector forces the Vector&lt;float&gt; kernel (for A/B comparisons).
/// </summary>
internal static unsafe class GemmCpu
{
    // Depth of a block: a KC x NR panel of B stays in L1 (32 KiB at NR 32), an MC x KC block of A in L2.
    const int KC = 256;

    /// <summary>Whether the Vector512 micro-kernel is in use.</summary>
    public static readonly bool Wide = Vector512.IsHardwareAccelerated && Fma.IsSupported
                                       && Environment.GetEnvironmentVariable("EDM_GEMM_KERNEL") != "vector";

    /// <summary>The micro-kernel's name, for `info` and the bench header.</summary>
    public static string KernelName => Wide ? "12x32 Vector512" : $"6x{2 * Vector<float>.Count} Vector<float>";

    /// <summary>
    /// Runs the GEMM on host pointers. <paramref name="maxThreads"/> 1 runs serially (callers that
    /// already parallelise over images).
    /// </summary>
    public static void Run(float* a, float* b, float* c, in GemmShape s, int maxThreads)
    {
        if (Wide) Run<Micro12x32>(a, b, c, s, maxThreads);
        else Run<Micro6x2V>(a, b, c, s, maxThreads);
    }

    static void Run<TK>(float* a, float* b, float* c, in GemmShape s, int maxThreads) where TK : IGemmMicroKernel
    {
        int outBatches = s.ReduceBatch != 0 ? 1 : s.Batch;
        for (int ob = 0; ob < outBatches; ob++)
            ScaleC(c + (long)ob * s.CBatch, s.M, s.N, s.CRow, s.Beta);
        if (s.Alpha == 0f || s.K == 0) return;
        int nr = TK.NR;
        int nPanels = (s.N + nr - 1) / nr;
        float[] bpArr = ArrayPool<float>.Shared.Rent(nPanels * nr * Math.Min(KC, s.K) + 16);
        try
        {
            fixed (float* bpRaw = bpArr)
            {
                float* bp = Align64(bpRaw);
                for (int bb = 0; bb < s.Batch; bb++)
                {
                    float* ab = a + (long)bb * s.ABatch;
                    float* bbp = b + (long)bb * s.BBatch;
                    float* cb = c + (s.ReduceBatch != 0 ? 0 : (long)bb * s.CBatch);
                    for (int p0 = 0; p0 < s.K; p0 += KC)
                    {
                        int kc = Math.Min(KC, s.K - p0);
                        PackB(bbp, s, p0, kc, bp, nr, maxThreads);
                        RunBlock<TK>(ab, bp, cb, s, p0, kc, maxThreads);
                    }
                }
            }
        }
        finally
        {
            ArrayPool<float>.Shared.Return(bpArr);
        }
    }

    // 64-byte aligned start inside a buffer rented with 16 floats to spare (full-width loads never split a cache line).
    static float* Align64(float* p) => (float*)(((nint)p + 63) & ~(nint)63);

    static void ScaleC(float* c, int m, int n, int ldc, float beta)
    {
        if (beta == 1f) return;
        for (int i = 0; i < m; i++)
        {
            var row = new Span<float>(c + (long)i * ldc, n);
            if (beta == 0f) row.Clear();
            else System.Numerics.Tensors.TensorPrimitives.Multiply(row, beta, row);
        }
    }

    /// <summary>Packs B[p0:p0+kc, 0:N] into nr-wide column panels: panel j, row k at bp[(j*kc + k)*nr].</summary>
    static void PackB(float* b, GemmShape s, int p0, int kc, float* bp, int nr, int maxThreads)
    {
        int nPanels = (s.N + nr - 1) / nr;
        nint bAddr = (nint)b, bpAddr = (nint)bp;
        // Serial callers (conv's per-image GEMMs) pay no Parallel.For: at small sizes it cost more than the packing.
        if (maxThreads == 1)
        {
            for (int j = 0; j < nPanels; j++) PackBPanel(j);
            return;
        }
        Parallel.For(0, nPanels, new ParallelOptions { MaxDegreeOfParallelism = maxThreads }, PackBPanel);

        void PackBPanel(int j)
        {
            float* src = (float*)bAddr;
            float* dst = (float*)bpAddr + (long)j * kc * nr;
            int n0 = j * nr;
            int w = Math.Min(nr, s.N - n0);
            for (int k = 0; k < kc; k++)
            {
                float* d = dst + k * nr;
                long rowOff = (long)(p0 + k) * s.BRow;
                if (s.BCol == 1 && w == nr)
                {
                    Buffer.MemoryCopy(src + rowOff + n0, d, nr * sizeof(float), nr * sizeof(float));
                    continue;
                }
                int jj = 0;
                for (; jj < w; jj++) d[jj] = src[rowOff + (long)(n0 + jj) * s.BCol];
                for (; jj < nr; jj++) d[jj] = 0f;
            }
        }
    }

    /// <summary>Packs A[m0:m0+mc, p0:p0+kc] into mr-tall row panels: panel i, column k at ap[(i*kc + k)*mr].</summary>
    static void PackA(float* a, GemmShape s, int m0, int mc, int p0, int kc, float* ap, int mr)
    {
        if (s.ACol == 1)
        {
            // Rows contiguous along k (A not transposed: conv weights, im2col for dW): write each
            // panel column k once, reading the panel's rows as parallel streams.
            nint* rows = stackalloc nint[mr];
            for (int i = 0; i < mc; i += mr)
            {
                float* dst = ap + (long)(i / mr) * kc * mr;
                int h = Math.Min(mr, mc - i);
                for (int r = 0; r < h; r++) rows[r] = (nint)(a + (long)(m0 + i + r) * s.ARow + p0);
                for (int k = 0; k < kc; k++, dst += mr)
                {
                    int r = 0;
                    for (; r < h; r++) dst[r] = ((float*)rows[r])[k];
                    for (; r < mr; r++) dst[r] = 0f;
                }
            }
            return;
        }
        for (int i = 0; i < mc; i += mr)
        {
            float* dst = ap + (long)(i / mr) * kc * mr;
            int h = Math.Min(mr, mc - i);
            for (int r = 0; r < mr; r++)
            {
                if (r >= h)
                {
                    for (int k = 0; k < kc; k++) dst[k * mr + r] = 0f;
                    continue;
                }
                float* src = a + (long)(m0 + i + r) * s.ARow + (long)p0 * s.ACol;
                if (s.ACol == 1)
                    for (int k = 0; k < kc; k++) dst[k * mr + r] = src[k];
                else
                    for (int k = 0; k < kc; k++) dst[k * mr + r] = src[(long)k * s.ACol];
            }
        }
    }

    /// <summary>One depth block: tasks over (row block, column block) of C.</summary>
    static void RunBlock<TK>(float* a, float* bp, float* c, GemmShape s, int p0, int kc, int maxThreads) where TK : IGemmMicroKernel
    {
        int MR = TK.MR, NR = TK.NR, MC = TK.MC;
        int rowBlocks = (s.M + MC - 1) / MC;
        int nPanels = (s.N + NR - 1) / NR;
        // Enough column blocks that there are about 4 tasks per core, each at least 4 panels wide.
        int threads = Math.Max(1, Math.Min(maxThreads, Environment.ProcessorCount));
        // Serially (maxThreads 1, conv's per-image GEMMs) one column block avoids repacking A.
        int colBlocks = threads == 1 ? 1 : Math.Clamp((4 * threads + rowBlocks - 1) / rowBlocks, 1, Math.Max(1, nPanels / 4));
        int panelsPerBlock = (nPanels + colBlocks - 1) / colBlocks;
        colBlocks = (nPanels + panelsPerBlock - 1) / panelsPerBlock;
        nint aAddr = (nint)a, bpAddr = (nint)bp, cAddr = (nint)c;
        if (threads == 1)
        {
            var apArr = ArrayPool<float>.Shared.Rent(MC * KC + 16);
            for (int task = 0; task < rowBlocks * colBlocks; task++) RunTask(task, apArr);
            ArrayPool<float>.Shared.Return(apArr);
            return;
        }
        var options = new ParallelOptions { MaxDegreeOfParallelism = maxThreads };
        Parallel.For(0, rowBlocks * colBlocks, options,
            () => ArrayPool<float>.Shared.Rent(MC * KC + 16),
            (task, _, apArr) => RunTask(task, apArr),
            apArr => ArrayPool<float>.Shared.Return(apArr));

        // One task: pack the A block of its row block, run its column panels.
        float[] RunTask(int task, float[] apArr)
        {
            int rb = task / colBlocks, cbk = task % colBlocks;
            int m0 = rb * MC, mc = Math.Min(MC, s.M - m0);
            int j0 = cbk * panelsPerBlock, j1 = Math.Min(nPanels, j0 + panelsPerBlock);
            fixed (float* apRaw = apArr)
            {
                float* ap = Align64(apRaw);
                PackA((float*)aAddr, s, m0, mc, p0, kc, ap, MR);
                float* cc = (float*)cAddr;
                for (int j = j0; j < j1; j++)
                {
                    float* bpanel = (float*)bpAddr + (long)j * kc * NR;
                    int n0 = j * NR, nr = Math.Min(NR, s.N - n0);
                    for (int i = 0; i < mc; i += MR)
                        TK.Run(ap + (long)(i / MR) * kc * MR, bpanel, kc,
                            cc + (long)(m0 + i) * s.CRow + n0, s.CRow, s.Alpha, Math.Min(MR, mc - i), nr);
                }
            }
            return apArr;
        }
    }

    /// <summary>Adds alpha * the spilled tile t (rows of <paramref name="w"/> floats) to the valid mr x nr corner of C.</summary>
    internal static void AddEdge(float* c, int ldc, float alpha, float* t, int w, int mr, int nr)
    {
        for (int r = 0; r < mr; r++)
            for (int j = 0; j < nr; j++)
                c[(long)r * ldc + j] += alpha * t[r * w + j];
    }
}

/// <summary>6 rows x 2 Vector&lt;float&gt; columns: 12 accumulators (AVX2: 16 registers; SSE: 6 x 8).</summary>
internal readonly unsafe struct Micro6x2V : IGemmMicroKernel
{
    public static int MR => 6;
    public static int NR => 2 * Vector<float>.Count;
    public static int MC => 96;

    [MethodImpl(MethodImplOptions.AggressiveOptimization), SkipLocalsInit]
    public static void Run(float* ap, float* bp, int kc, float* c, int ldc, float alpha, int mr, int nr)
    {
        // As in Micro12x32: the spill tile is allocated before the accumulators are live (a call after
        // the loop, such as zeroing a stackalloc, makes the JIT spill them at every FMA).
        int vw = Vector<float>.Count, w = 2 * vw;
        float* t = stackalloc float[6 * 2 * Vector<float>.Count];
        Vector<float> c00 = default, c01 = default, c10 = default, c11 = default, c20 = default, c21 = default;
        Vector<float> c30 = default, c31 = default, c40 = default, c41 = default, c50 = default, c51 = default;
        for (int k = 0; k < kc; k++)
        {
            var b0 = Unsafe.ReadUnaligned<Vector<float>>(bp);
            var b1 = Unsafe.ReadUnaligned<Vector<float>>(bp + vw);
            var a0 = new Vector<float>(ap[0]);
            c00 = Vector.FusedMultiplyAdd(a0, b0, c00); c01 = Vector.FusedMultiplyAdd(a0, b1, c01);
            var a1 = new Vector<float>(ap[1]);
            c10 = Vector.FusedMultiplyAdd(a1, b0, c10); c11 = Vector.FusedMultiplyAdd(a1, b1, c11);
            var a2 = new Vector<float>(ap[2]);
            c20 = Vector.FusedMultiplyAdd(a2, b0, c20); c21 = Vector.FusedMultiplyAdd(a2, b1, c21);
            var a3 = new Vector<float>(ap[3]);
            c30 = Vector.FusedMultiplyAdd(a3, b0, c30); c31 = Vector.FusedMultiplyAdd(a3, b1, c31);
            var a4 = new Vector<float>(ap[4]);
            c40 = Vector.FusedMultiplyAdd(a4, b0, c40); c41 = Vector.FusedMultiplyAdd(a4, b1, c41);
            var a5 = new Vector<float>(ap[5]);
            c50 = Vector.FusedMultiplyAdd(a5, b0, c50); c51 = Vector.FusedMultiplyAdd(a5, b1, c51);
            ap += 6;
            bp += w;
        }
        Unsafe.WriteUnaligned(t, c00); Unsafe.WriteUnaligned(t + vw, c01);
        Unsafe.WriteUnaligned(t + w, c10); Unsafe.WriteUnaligned(t + w + vw, c11);
        Unsafe.WriteUnaligned(t + 2 * w, c20); Unsafe.WriteUnaligned(t + 2 * w + vw, c21);
        Unsafe.WriteUnaligned(t + 3 * w, c30); Unsafe.WriteUnaligned(t + 3 * w + vw, c31);
        Unsafe.WriteUnaligned(t + 4 * w, c40); Unsafe.WriteUnaligned(t + 4 * w + vw, c41);
        Unsafe.WriteUnaligned(t + 5 * w, c50); Unsafe.WriteUnaligned(t + 5 * w + vw, c51);
        if (mr < 6 || nr < w)
        {
            GemmCpu.AddEdge(c, ldc, alpha, t, w, mr, nr);
            return;
        }
        var va = new Vector<float>(alpha);
        for (int r = 0; r < 6; r++, c += ldc, t += w)
        {
            Unsafe.WriteUnaligned(c, Vector.FusedMultiplyAdd(va, Unsafe.ReadUnaligned<Vector<float>>(t), Unsafe.ReadUnaligned<Vector<float>>(c)));
            Unsafe.WriteUnaligned(c + vw, Vector.FusedMultiplyAdd(va, Unsafe.ReadUnaligned<Vector<float>>(t + vw), Unsafe.ReadUnaligned<Vector<float>>(c + vw)));
        }
    }
}

/// <summary>12 rows x 32 columns (2 Vector512): 24 accumulators of AVX-512's 32 registers.</summary>
internal readonly unsafe struct Micro12x32 : IGemmMicroKernel
{
    public static int MR => 12;
    public static int NR => 32;
    public static int MC => 144;

    [MethodImpl(MethodImplOptions.AggressiveOptimization), SkipLocalsInit]
    public static void Run(float* ap, float* bp, int kc, float* c, int ldc, float alpha, int mr, int nr)
    {
        // The spill tile is allocated before the accumulators are live, and not zeroed (SkipLocalsInit):
        // a call after the loop (the zeroing helper) made the JIT spill all 24 at every FMA.
        float* t = stackalloc float[12 * 32];
        Vector512<float> c00 = default, c01 = default, c10 = default, c11 = default, c20 = default, c21 = default;
        Vector512<float> c30 = default, c31 = default, c40 = default, c41 = default, c50 = default, c51 = default;
        Vector512<float> c60 = default, c61 = default, c70 = default, c71 = default, c80 = default, c81 = default;
        Vector512<float> c90 = default, c91 = default, ca0 = default, ca1 = default, cb0 = default, cb1 = default;
        for (int k = 0; k < kc; k++)
        {
            var b0 = Vector512.Load(bp);
            var b1 = Vector512.Load(bp + 16);
            var a = Vector512.Create(ap[0]);
            c00 = Vector512.FusedMultiplyAdd(a, b0, c00); c01 = Vector512.FusedMultiplyAdd(a, b1, c01);
            a = Vector512.Create(ap[1]);
            c10 = Vector512.FusedMultiplyAdd(a, b0, c10); c11 = Vector512.FusedMultiplyAdd(a, b1, c11);
            a = Vector512.Create(ap[2]);
            c20 = Vector512.FusedMultiplyAdd(a, b0, c20); c21 = Vector512.FusedMultiplyAdd(a, b1, c21);
            a = Vector512.Create(ap[3]);
            c30 = Vector512.FusedMultiplyAdd(a, b0, c30); c31 = Vector512.FusedMultiplyAdd(a, b1, c31);
            a = Vector512.Create(ap[4]);
            c40 = Vector512.FusedMultiplyAdd(a, b0, c40); c41 = Vector512.FusedMultiplyAdd(a, b1, c41);
            a = Vector512.Create(ap[5]);
            c50 = Vector512.FusedMultiplyAdd(a, b0, c50); c51 = Vector512.FusedMultiplyAdd(a, b1, c51);
            a = Vector512.Create(ap[6]);
            c60 = Vector512.FusedMultiplyAdd(a, b0, c60); c61 = Vector512.FusedMultiplyAdd(a, b1, c61);
            a = Vector512.Create(ap[7]);
            c70 = Vector512.FusedMultiplyAdd(a, b0, c70); c71 = Vector512.FusedMultiplyAdd(a, b1, c71);
            a = Vector512.Create(ap[8]);
            c80 = Vector512.FusedMultiplyAdd(a, b0, c80); c81 = Vector512.FusedMultiplyAdd(a, b1, c81);
            a = Vector512.Create(ap[9]);
            c90 = Vector512.FusedMultiplyAdd(a, b0, c90); c91 = Vector512.FusedMultiplyAdd(a, b1, c91);
            a = Vector512.Create(ap[10]);
            ca0 = Vector512.FusedMultiplyAdd(a, b0, ca0); ca1 = Vector512.FusedMultiplyAdd(a, b1, ca1);
            a = Vector512.Create(ap[11]);
            cb0 = Vector512.FusedMultiplyAdd(a, b0, cb0); cb1 = Vector512.FusedMultiplyAdd(a, b1, cb1);
            ap += 12;
            bp += 32;
        }
        // Spill the tile and update C from it (full tiles with vectors, edges element by element).
        Vector512.Store(c00, t); Vector512.Store(c01, t + 16); Vector512.Store(c10, t + 32); Vector512.Store(c11, t + 48);
        Vector512.Store(c20, t + 64); Vector512.Store(c21, t + 80); Vector512.Store(c30, t + 96); Vector512.Store(c31, t + 112);
        Vector512.Store(c40, t + 128); Vector512.Store(c41, t + 144); Vector512.Store(c50, t + 160); Vector512.Store(c51, t + 176);
        Vector512.Store(c60, t + 192); Vector512.Store(c61, t + 208); Vector512.Store(c70, t + 224); Vector512.Store(c71, t + 240);
        Vector512.Store(c80, t + 256); Vector512.Store(c81, t + 272); Vector512.Store(c90, t + 288); Vector512.Store(c91, t + 304);
        Vector512.Store(ca0, t + 320); Vector512.Store(ca1, t + 336); Vector512.Store(cb0, t + 352); Vector512.Store(cb1, t + 368);
        if (mr < 12 || nr < 32)
        {
            GemmCpu.AddEdge(c, ldc, alpha, t, 32, mr, nr);
            return;
        }
        var va = Vector512.Create(alpha);
        for (int r = 0; r < 12; r++, c += ldc, t += 32)
        {
            Vector512.FusedMultiplyAdd(va, Vector512.Load(t), Vector512.Load(c)).Store(c);
            Vector512.FusedMultiplyAdd(va, Vector512.Load(t + 16), Vector512.Load(c + 16)).Store(c + 16);
        }
    }
}

public static partial class Ops
{
    /// <summary>
    /// Matrix product op(a) op(b), batched over a leading dimension. <paramref name="a"/> is (M, K)
    /// or (Bt, M, K) ((K, M) / (Bt, K, M) with <paramref name="transA"/>), <paramref name="b"/> is
    /// (K, N) or (Bt, K, N) ((N, K) / (Bt, N, K) with <paramref name="transB"/>); a batch of 1
    /// broadcasts. Returns (M, N) when both are rank 2, else (Bt, M, N). Float32 accumulation.
    /// </summary>
    public static Tensor MatMul(Tensor a, Tensor b, bool transA = false, bool transB = false)
    {
        var (s, outShape) = PlanGemm("MatMul", a, b, transA, transB);
        var c = Tensor.Empty(a.Device, outShape);
        try
        {
            RunGemm(a, b, c, s with { Alpha = 1f, Beta = 0f }, GemmVariant.Tiled);
        }
        catch
        {
            c.Dispose();
            throw;
        }
        return c;
    }

    /// <summary>
    /// Accumulating GEMM: c = alpha * op(a) op(b) + beta * c, in place. Operand shapes as in
    /// <see cref="MatMul"/>. When <paramref name="c"/> is (M, N) but the batch is larger than 1,
    /// the products of all batch items are summed into c (a weight gradient over a batch).
    /// beta = 0 overwrites c whatever it holds.
    /// </summary>
    public static void MatMulInto(Tensor a, Tensor b, Tensor c, bool transA = false, bool transB = false,
        float alpha = 1f, float beta = 0f, GemmVariant variant = GemmVariant.Tiled)
    {
        var (s, outShape) = PlanGemm("MatMulInto", a, b, transA, transB);
        int batch = outShape.Length == 3 ? outShape[0] : 1;
        if (c.Rank == 2 && batch > 1)
        {
            Shapes.RequireEqual("MatMulInto", "c (summed over the batch)", outShape.AsSpan(1), c.Shape);
            s = s with { ReduceBatch = 1 };
        }
        else Shapes.RequireEqual("MatMulInto", "c", outShape, c.Shape);
        if (c.Device != a.Device || b.Device != a.Device) throw new ArgumentException("MatMulInto: tensors are on different devices");
        RunGemm(a, b, c, s with { Alpha = alpha, Beta = beta }, variant);
    }

    /// <summary>Validates operand shapes and derives the strided GEMM description and output shape.</summary>
    static (GemmShape Shape, int[] OutShape) PlanGemm(string op, Tensor a, Tensor b, bool transA, bool transB)
    {
        if (a.Rank is not (2 or 3) || b.Rank is not (2 or 3))
            throw new ArgumentException($"{op}: operands must be rank 2 or 3, got a {a.ShapeString} and b {b.ShapeString}");
        if (a.Device != b.Device) throw new ArgumentException($"{op}: a and b are on different devices");
        int ba = a.Rank == 3 ? a.Shape[0] : 1, bb = b.Rank == 3 ? b.Shape[0] : 1;
        if (ba != bb && ba != 1 && bb != 1)
            throw new ArgumentException($"{op}: batch sizes of a {a.ShapeString} and b {b.ShapeString} differ and neither is 1");
        int ar = a.Shape[a.Rank - 2], ac = a.Shape[a.Rank - 1];
        int br = b.Shape[b.Rank - 2], bc = b.Shape[b.Rank - 1];
        int m = transA ? ac : ar, k = transA ? ar : ac;
        int kb = transB ? bc : br, n = transB ? br : bc;
        if (k != kb)
            throw new ArgumentException($"{op}: inner dimensions differ: op(a) from {a.ShapeString}{(transA ? "^T" : "")} is ({m}, {k}), op(b) from {b.ShapeString}{(transB ? "^T" : "")} is ({kb}, {n})");
        int batch = Math.Max(ba, bb);
        int[] outShape = a.Rank == 2 && b.Rank == 2 ? [m, n] : [batch, m, n];
        Shapes.Validate(op, outShape);
        var s = new GemmShape(m, n, k, batch, 0,
            ABatch: ba == 1 ? 0 : ar * ac, ARow: transA ? 1 : ac, ACol: transA ? ac : 1,
            BBatch: bb == 1 ? 0 : br * bc, BRow: transB ? 1 : bc, BCol: transB ? bc : 1,
            CBatch: m * n, CRow: n, Alpha: 1f, Beta: 0f);
        return (s, outShape);
    }

    /// <summary>Dispatches a planned GEMM: CPU fast path or one of the kernels.</summary>
    internal static void RunGemm(Tensor a, Tensor b, Tensor c, GemmShape s, GemmVariant variant)
    {
        var device = a.Device;
        if (device.UseCpuFastPath)
        {
            unsafe
            {
                fixed (float* pa = a.CpuSpan(), pb = b.CpuSpan(), pc = c.CpuSpan())
                    GemmCpu.Run(pa, pb, pc, s, Environment.ProcessorCount);
            }
            return;
        }
        RunGemmKernel(device, a.View, b.View, c.View, s, variant);
    }

    /// <summary>Launches a GEMM kernel on views (used by conv, which addresses sub-views).</summary>
    internal static void RunGemmKernel(EdmDevice device, ArrayView<float> a, ArrayView<float> b, ArrayView<float> c, GemmShape s, GemmVariant variant)
    {
        var k = device.Kernels<GemmKernels>();
        int outBatches = s.ReduceBatch != 0 ? 1 : s.Batch;
        if (variant == GemmVariant.Naive)
        {
            long total = (long)outBatches * s.M * s.N;
            int threads = device.LaunchThreads(total);
            k.Naive(threads, a, b, c, s, threads);
            return;
        }
        // CUDA caps grid.z at 65535: larger batches launch in slices over offset views.
        const int maxZ = 65535;
        for (int z0 = 0; z0 < outBatches; z0 += maxZ)
        {
            int nz = Math.Min(maxZ, outBatches - z0);
            var grid = new Index3D((s.N + GemmKernels.Tile - 1) / GemmKernels.Tile, (s.M + GemmKernels.Tile - 1) / GemmKernels.Tile, nz);
            if (z0 == 0 && nz == outBatches)
            {
                k.Tiled(new KernelConfig(grid, new Index3D(GemmKernels.GroupSize, 1, 1)), a, b, c, s);
                break;
            }
            var sa = a.SubView((long)z0 * s.ABatch);
            var sb = b.SubView((long)z0 * s.BBatch);
            var sc = c.SubView((long)z0 * s.CBatch);
            k.Tiled(new KernelConfig(grid, new Index3D(GemmKernels.GroupSize, 1, 1)), sa, sb, sc, s with { Batch = nz });
        }
    }

    /// <summary>Host-pointer GEMM for other CPU fast paths (conv): serial when maxThreads is 1.</summary>
    internal static unsafe void GemmHost(float* a, float* b, float* c, in GemmShape s, int maxThreads) =>
        GemmCpu.Run(a, b, c, s, maxThreads);
}

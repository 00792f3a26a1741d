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
//   3. GemmTiled128: 128x128 C tile, depth-8 double-buffered shared tiles, 8x8 per thread (rows
//                  ty+16i, columns tx+16j; scalar shared loads).
//   4. GemmTileKernel<GemmAccTf32>: variant 3's tiles on TF32 tensor cores (mma.sync m16n8k8 through
//                  inline PTX; on the CPU accelerator the mma and the rounding are emulated, for tests),
//                  with variant 5's load slots and constant-offset fragment loads (SASS per depth tile:
//                  188 instructions for 16 HMMA per warp, was 392).
//   5. GemmTileKernel<GemmAcc8x8>: variant 3 with 128-bit shared loads (the 8x8 block as four 4x4
//                  quads), load slots computed once per launch and branch-free bounds checks (the GPU
//                  default). Variants 4 and 5 are one kernel generic in its accumulator (ITileAcc).
//                  ptxas 11.8 for sm_90 (scripts/ptxas-check.sh): 122 registers, and per depth tile
//                  about 710 instructions for 512 FFMA (72 %) against variant 3's ~1,195 (43 %).
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
using ILGPU.Runtime.Cuda;

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
    /// <summary>
    /// The engine's choice (<see cref="GemmKernels.Choose"/>): variant 5 (or 4 where TF32 is allowed)
    /// when there are at least as many 128x128 tiles of C as multiprocessors, else variant 2; EDM_GEMM_GPU=tiled|tiled128|tiled128v|tf32
    /// forces one (for A/B comparisons).
    /// </summary>
    Auto = 0,
    /// <summary>Variant 1: one thread per output, no reuse (a baseline).</summary>
    Naive = 1,
    /// <summary>Variant 2: shared-memory tiles with 4x4 register blocking.</summary>
    Tiled = 2,
    /// <summary>
    /// Variant 3: 128x128 tiles, 8x8 register blocking, double-buffered shared tiles with the next
    /// tile prefetched into registers (the GPU default for large products until variant 5).
    /// </summary>
    Tiled128 = 3,
    /// <summary>
    /// Variant 4: variant 3's tiles on TF32 tensor cores (inputs rounded to 10 mantissa bits, float32
    /// accumulation; CUDA only, sm_80 and later). Chosen by Auto only where <see cref="EdmDevice.AllowTf32"/> is set.
    /// </summary>
    Tf32 = 4,
    /// <summary>
    /// Variant 5: variant 3's tiles and double buffering with 128-bit shared loads: each thread's 8x8
    /// block is four 4x4 quads (rows 4ty and 64 + 4ty, columns 4tx and 64 + 4tx), so a depth step
    /// reads two float4 of A and two of B (4 loads per 64 FMAs instead of 16), at constant offsets
    /// from one base address per step.
    /// </summary>
    Tiled128V = 5,
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
    internal readonly Action<KernelConfig, ArrayView<float>, ArrayView<float>, ArrayView<float>, GemmShape> Tiled128;
    internal readonly Action<KernelConfig, ArrayView<float>, ArrayView<float>, ArrayView<float>, GemmShape> Tiled128V;

    /// <summary>C tile edge of variant 3.</summary>
    public const int Tile128 = 128;
    /// <summary>Depth of variant 3's shared tiles.</summary>
    public const int Tile128K = 8;
    // Row pitch of variant 3's shared tiles (floats): 4 over the tile so that the column-wise
    // stores of a k-contiguous operand spread over the banks.
    internal const int Pitch128 = Tile128 + 4;
    internal const int Buffer128 = Tile128K * Pitch128;
    // Variant 4's pitch: 136 = 8 (mod 32), so a fragment load (rows t and t+4, columns g) hits 32 banks.
    internal const int PitchTf32 = Tile128 + 8;
    internal const int BufferTf32 = Tile128K * PitchTf32;
    readonly Accelerator _acc;
    Action<KernelConfig, ArrayView<float>, ArrayView<float>, ArrayView<float>, GemmShape, int>? _tf32;

    /// <summary>
    /// Diagnostic for the first runs on a GPU (verify's TF32 row), never set by the engine: variant 4
    /// passes the A fragment's middle registers swapped, so that one run tells which of the two
    /// plausible fragment layouts the hardware uses.
    /// </summary>
    public static bool Tf32SwapADiagnostic { get; set; }

    /// <summary>
    /// Variant 4's launcher, loaded on first use: CUDA (inline PTX), or the CPU accelerator, where the
    /// mma and the TF32 rounding are emulated in software so that tests check the kernel's tiling,
    /// fragments and epilogue; no OpenCL.
    /// </summary>
    internal Action<KernelConfig, ArrayView<float>, ArrayView<float>, ArrayView<float>, GemmShape, int> Tf32 =>
        _tf32 ??= _acc.AcceleratorType is AcceleratorType.Cuda or AcceleratorType.CPU
            ? _acc.LoadStreamKernel<ArrayView<float>, ArrayView<float>, ArrayView<float>, GemmShape, int>(GemmTileKernel<GemmAccTf32>)
            : throw new NotSupportedException($"the TF32 GEMM (tensor cores, inline PTX) runs on CUDA devices (and emulated on the CPU accelerator, for tests) only; this device is {_acc.AcceleratorType}");

    GemmKernels(Accelerator acc)
    {
        _acc = acc;
        Tiled128 = acc.LoadStreamKernel<ArrayView<float>, ArrayView<float>, ArrayView<float>, GemmShape>(GemmTiled128Kernel);
        var v5 = acc.LoadStreamKernel<ArrayView<float>, ArrayView<float>, ArrayView<float>, GemmShape, int>(GemmTileKernel<GemmAcc8x8>);
        Tiled128V = (config, va, vb, vc, vs) => v5(config, va, vb, vc, vs, 0);
        Naive = acc.LoadAutoGroupedStreamKernel<Index1D, ArrayView<float>, ArrayView<float>, ArrayView<float>, GemmShape, int>(GemmNaiveKernel);
        Tiled = acc.LoadStreamKernel<ArrayView<float>, ArrayView<float>, ArrayView<float>, GemmShape>(GemmTiledKernel);
    }

    /// <inheritdoc/>
    public static GemmKernels Load(EdmDevice device) => new(device.Accelerator);

    /// <summary>
    /// Most groups along grid y and z per launch (CUDA's limit, 65,535); larger problems launch in
    /// slices. Settable so that tests run the slicing at small sizes on the CPU accelerator.
    /// </summary>
    public static int MaxGridYZ { get; set; } = 65535;

    /// <summary>Environment variable that forces the GPU GEMM kernel: "tiled" (variant 2), "tiled128" (variant 3), "tiled128v" (variant 5) or "tf32" (variant 4, CUDA only; variant 5 elsewhere).</summary>
    public const string KernelEnvironmentVariable = "EDM_GEMM_GPU";

    static readonly GemmVariant? Forced = ParseForced(Environment.GetEnvironmentVariable(KernelEnvironmentVariable));

    /// <summary>The variant <see cref="KernelEnvironmentVariable"/>'s value forces (null: auto); an ArgumentException names a bad value and the allowed ones (EdmDevice.Create checks it first).</summary>
    public static GemmVariant? ParseForced(string? value) => value?.Trim().ToLowerInvariant() switch
    {
        null or "" or "auto" => null,
        "tiled" => GemmVariant.Tiled,
        "tiled128" => GemmVariant.Tiled128,
        "tiled128v" => GemmVariant.Tiled128V,
        "tf32" => GemmVariant.Tf32,
        var v => throw new ArgumentException($"{KernelEnvironmentVariable}={v} is not a GEMM kernel; allowed: auto, tiled, tiled128, tiled128v, tf32"),
    };

    /// <summary>
    /// The variant <see cref="GemmVariant.Auto"/> resolves to for <paramref name="batch"/> products of
    /// M x N outputs on <paramref name="device"/>: variant 2 unless there are at least as many
    /// 128x128 tiles as multiprocessors (the first GPU run: at 512^3, 16 tiles of 128 on 132
    /// multiprocessors took 0.145 ms against variant 2's 0.097; at 4096^3 6.4 ms against 9.2); then
    /// variant 4 (TF32) on CUDA where <see cref="EdmDevice.AllowTf32"/> is set, variant 5 otherwise
    /// (variant 3's successor: ptxas' SASS for sm_90 has 72 % FFMA in its tile loop against 43 %;
    /// its GPU time is owed, so variant 3 stays for the comparison).
    /// </summary>
    public static GemmVariant Choose(EdmDevice device, int m, int n, int batch = 1)
    {
        if (Forced is { } forced) return forced == GemmVariant.Tf32 && device.Kind != DeviceKind.Cuda ? GemmVariant.Tiled128V : forced;
        long tiles = (long)((m + Tile128 - 1) / Tile128) * ((n + Tile128 - 1) / Tile128) * Math.Max(1, batch);
        if (m < Tile128 || n < Tile128 || tiles < Math.Max(1, device.Accelerator.NumMultiprocessors)) return GemmVariant.Tiled;
        return device.AllowTf32 && device.Kind == DeviceKind.Cuda ? GemmVariant.Tf32 : GemmVariant.Tiled128V;
    }

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

    /// <summary>
    /// Variant 3: one 128x128 C tile per group of 256 threads (16 x 16), each thread an 8x8 block at
    /// rows ty+16i and columns tx+16j (consecutive threads read consecutive shared words: no bank
    /// conflicts, the A words broadcast). Depth-8 tiles of A and B in two shared buffers: while the
    /// group computes on one, each thread holds its four A and four B elements of the next tile in
    /// registers and stores them into the other buffer, so one barrier per tile suffices.
    /// Grid (ceil(N/128), ceil(M/128), batch or 1). Any M, N, K (bounds-checked loads, zero fill).
    /// </summary>
    static void GemmTiled128Kernel(ArrayView<float> a, ArrayView<float> b, ArrayView<float> c, GemmShape s)
    {
        var sa = SharedMemory.Allocate<float>(2 * Buffer128); // sa[buf*Buffer128 + k*Pitch128 + m]
        var sb = SharedMemory.Allocate<float>(2 * Buffer128); // sb[buf*Buffer128 + k*Pitch128 + n]
        int tid = Group.IdxX;
        int tx = tid & 15, ty = tid >> 4;
        int n0 = Grid.IdxX * Tile128, m0 = Grid.IdxY * Tile128;
        var acc = new GemmAcc8x8();
        int b0 = s.ReduceBatch != 0 ? 0 : Grid.IdxZ;
        int b1 = s.ReduceBatch != 0 ? s.Batch : Grid.IdxZ + 1;
        bool aAlongK = s.ACol == 1, bAlongN = s.BCol == 1;
        // This thread's load slots: element e = tid + 256 r of a 128 x 8 tile (r < 4).
        // A along K: (m, k) = (e >> 3, e & 7); along M: (e & 127, e >> 7). B likewise with n.
        int tiles = (s.K + Tile128K - 1) / Tile128K;
        for (int bb = b0; bb < b1; bb++)
        {
            int ao = bb * s.ABatch, bo = bb * s.BBatch;
            float pa0, pa1, pa2, pa3, pb0, pb1, pb2, pb3;
            LoadA(a, s, ao, m0, 0, tid, aAlongK, out pa0, out pa1, out pa2, out pa3);
            LoadB(b, s, bo, n0, 0, tid, bAlongN, out pb0, out pb1, out pb2, out pb3);
            StoreTiles(sa, sb, 0, tid, aAlongK, bAlongN, pa0, pa1, pa2, pa3, pb0, pb1, pb2, pb3, Pitch128, false);
            Group.Barrier();
            for (int t = 0; t < tiles; t++)
            {
                int cur = (t & 1) * Buffer128;
                bool more = t + 1 < tiles;
                if (more)
                {
                    int k0 = (t + 1) * Tile128K;
                    LoadA(a, s, ao, m0, k0, tid, aAlongK, out pa0, out pa1, out pa2, out pa3);
                    LoadB(b, s, bo, n0, k0, tid, bAlongN, out pb0, out pb1, out pb2, out pb3);
                }
                // A loop (ILGPU keeps it): unrolled by hand, ptxas hoists the loads of all eight steps
                // (234 registers, one group per multiprocessor) and still computes every address.
                for (int kk = 0; kk < Tile128K; kk++)
                    acc.Step(sa, sb, cur + kk * Pitch128 + ty, cur + kk * Pitch128 + tx);
                if (more)
                    StoreTiles(sa, sb, Buffer128 - cur, tid, aAlongK, bAlongN, pa0, pa1, pa2, pa3, pb0, pb1, pb2, pb3, Pitch128, false);
                Group.Barrier();
            }
        }
        int co = s.ReduceBatch != 0 ? 0 : Grid.IdxZ * s.CBatch;
        acc.Store(c, s, co, m0 + ty, n0 + tx);
    }

    /// <summary>
    /// Variants 5 and 4, by accumulator. Variant 5 (<see cref="GemmAcc8x8"/>): variant 3 (same tiles,
    /// loads, double buffering and barriers) with the thread's 8x8 block as four 4x4 quads at rows
    /// 4ty (+64) and columns 4tx (+64); the shared tiles are arrays of <see cref="Float4"/> (16-byte
    /// aligned; pitch 132 floats = 33 quads), so each depth step is two 128-bit loads of A (a warp
    /// reads two addresses: broadcast) and two of B (a quarter-warp reads 128 consecutive bytes: no
    /// conflicts), addressed from one base per step with constant offsets. Variant 4
    /// (<see cref="GemmAccTf32"/>, CUDA, emulated on the CPU accelerator): TF32 tensor cores through
    /// inline PTX, elements rounded to TF32 as they enter shared memory (row pitch 136 so that the
    /// fragment loads hit 32 distinct banks); 8 warps, each a 32x64 block of 2 x 8 mma tiles
    /// (16x8x8); <paramref name="swapA"/>: see <see cref="GemmAccTf32.Step"/> (ignored by variant 5).
    /// Both: the load slots computed once (<see cref="GemmSlots"/>). Grid (ceil(N/128), ceil(M/128),
    /// batch or 1). Any M, N, K.
    /// </summary>
    static void GemmTileKernel<TAcc>(ArrayView<float> a, ArrayView<float> b, ArrayView<float> c, GemmShape s, int swapA) where TAcc : struct, ITileAcc
    {
        var sa4 = SharedMemory.Allocate<Float4>(2 * BufferTf32 / 4); // quads of sa[buf*buffer + k*pitch + m]
        var sb4 = SharedMemory.Allocate<Float4>(2 * BufferTf32 / 4);
        var sa = sa4.Cast<float>();
        var sb = sb4.Cast<float>();
        var acc = default(TAcc);
        int pitch = acc.Pitch, buffer = Tile128K * pitch;
        bool tf32 = acc.Tf32;
        int tid = Group.IdxX;
        int n0 = Grid.IdxX * Tile128, m0 = Grid.IdxY * Tile128;
        int b0 = s.ReduceBatch != 0 ? 0 : Grid.IdxZ;
        int b1 = s.ReduceBatch != 0 ? s.Batch : Grid.IdxZ + 1;
        // Load slots, fixed for the whole K loop (only the depth offset moves).
        var la = GemmSlots.Make(tid, m0, s.M, s.ARow, s.ACol, contiguousMN: s.ACol != 1, pitch);
        var lb = GemmSlots.Make(tid, n0, s.N, s.BCol, s.BRow, contiguousMN: s.BCol == 1, pitch);
        int tiles = (s.K + Tile128K - 1) / Tile128K;
        for (int bb = b0; bb < b1; bb++)
        {
            var av = a.SubView(bb * s.ABatch);
            var bv = b.SubView(bb * s.BBatch);
            float pa0, pa1, pa2, pa3, pb0, pb1, pb2, pb3;
            la.Load(av, 0, s.K, out pa0, out pa1, out pa2, out pa3);
            lb.Load(bv, 0, s.K, out pb0, out pb1, out pb2, out pb3);
            la.Store(sa, 0, pa0, pa1, pa2, pa3, tf32);
            lb.Store(sb, 0, pb0, pb1, pb2, pb3, tf32);
            Group.Barrier();
            for (int t = 0; t < tiles; t++)
            {
                int cur = (t & 1) * buffer;
                bool more = t + 1 < tiles;
                if (more)
                {
                    int k0 = (t + 1) * Tile128K;
                    la.Load(av, k0, s.K, out pa0, out pa1, out pa2, out pa3);
                    lb.Load(bv, k0, s.K, out pb0, out pb1, out pb2, out pb3);
                }
                acc.Tile(sa4, sb4, sa, sb, cur, tid, swapA);
                if (more)
                {
                    la.Store(sa, buffer - cur, pa0, pa1, pa2, pa3, tf32);
                    lb.Store(sb, buffer - cur, pb0, pb1, pb2, pb3, tf32);
                }
                Group.Barrier();
            }
        }
        int co = s.ReduceBatch != 0 ? 0 : Grid.IdxZ * s.CBatch;
        acc.StoreTile(c, s, co, m0, n0, tid);
    }

    static void LoadA(ArrayView<float> a, GemmShape s, int ao, int m0, int k0, int tid, bool alongK,
        out float v0, out float v1, out float v2, out float v3)
    {
        v0 = LoadA1(a, s, ao, m0, k0, tid, alongK);
        v1 = LoadA1(a, s, ao, m0, k0, tid + 256, alongK);
        v2 = LoadA1(a, s, ao, m0, k0, tid + 512, alongK);
        v3 = LoadA1(a, s, ao, m0, k0, tid + 768, alongK);
    }

    static float LoadA1(ArrayView<float> a, GemmShape s, int ao, int m0, int k0, int e, bool alongK)
    {
        int m = m0 + (alongK ? e >> 3 : e & 127), k = k0 + (alongK ? e & 7 : e >> 7);
        return m < s.M && k < s.K ? a[ao + m * s.ARow + k * s.ACol] : 0f;
    }

    static void LoadB(ArrayView<float> b, GemmShape s, int bo, int n0, int k0, int tid, bool alongN,
        out float v0, out float v1, out float v2, out float v3)
    {
        v0 = LoadB1(b, s, bo, n0, k0, tid, alongN);
        v1 = LoadB1(b, s, bo, n0, k0, tid + 256, alongN);
        v2 = LoadB1(b, s, bo, n0, k0, tid + 512, alongN);
        v3 = LoadB1(b, s, bo, n0, k0, tid + 768, alongN);
    }

    static float LoadB1(ArrayView<float> b, GemmShape s, int bo, int n0, int k0, int e, bool alongN)
    {
        int n = n0 + (alongN ? e & 127 : e >> 3), k = k0 + (alongN ? e >> 7 : e & 7);
        return n < s.N && k < s.K ? b[bo + k * s.BRow + n * s.BCol] : 0f;
    }

    static void StoreTiles(ArrayView<float> sa, ArrayView<float> sb, int buf, int tid, bool aAlongK, bool bAlongN,
        float a0, float a1, float a2, float a3, float b0, float b1, float b2, float b3, int pitch, bool tf32)
    {
        StoreA1(sa, buf, tid, aAlongK, a0, pitch, tf32); StoreA1(sa, buf, tid + 256, aAlongK, a1, pitch, tf32);
        StoreA1(sa, buf, tid + 512, aAlongK, a2, pitch, tf32); StoreA1(sa, buf, tid + 768, aAlongK, a3, pitch, tf32);
        StoreB1(sb, buf, tid, bAlongN, b0, pitch, tf32); StoreB1(sb, buf, tid + 256, bAlongN, b1, pitch, tf32);
        StoreB1(sb, buf, tid + 512, bAlongN, b2, pitch, tf32); StoreB1(sb, buf, tid + 768, bAlongN, b3, pitch, tf32);
    }

    static void StoreA1(ArrayView<float> sa, int buf, int e, bool alongK, float v, int pitch, bool tf32)
    {
        int m = alongK ? e >> 3 : e & 127, k = alongK ? e & 7 : e >> 7;
        sa[buf + k * pitch + m] = tf32 ? ToTf32(v) : v;
    }

    static void StoreB1(ArrayView<float> sb, int buf, int e, bool alongN, float v, int pitch, bool tf32)
    {
        int n = alongN ? e & 127 : e >> 3, k = alongN ? e >> 7 : e & 7;
        sb[buf + k * pitch + n] = tf32 ? ToTf32(v) : v;
    }

    /// <summary>v rounded to TF32 (10 mantissa bits, to nearest, ties away: cvt.rna.tf32.f32), kept as a float's bits.</summary>
    internal static float ToTf32(float v)
    {
        if (!CudaAsm.IsSupported) return RoundTf32Emulated(v);
        CudaAsm.Emit("cvt.rna.tf32.f32 %0, %1;", out uint r, v);
        return Interop.IntAsFloat(r);
    }

    /// <summary>cvt.rna.tf32.f32 in software (the CPU accelerator's emulation): 10 mantissa bits, to nearest, ties away from zero.</summary>
    static float RoundTf32Emulated(float v)
    {
        uint bits = Interop.FloatAsInt(v);
        if ((bits & 0x7F800000u) == 0x7F800000u) return v;   // inf and NaN unchanged
        return Interop.IntAsFloat((bits + 0x1000u) & ~0x1FFFu);
    }

    /// <summary>d = a b + d for one 16x8x8 tile of a warp (PTX mma.sync.aligned.m16n8k8, TF32 in, float32 accumulate).</summary>
    internal static void Mma(ref float d0, ref float d1, ref float d2, ref float d3, uint a0, uint a1, uint a2, uint a3, uint b0, uint b1)
    {
        if (!CudaAsm.IsSupported)
        {
            MmaEmulated(ref d0, ref d1, ref d2, ref d3, a0, a1, a2, a3, b0, b1);
            return;
        }
        Ref<float> r0 = d0, r1 = d1, r2 = d2, r3 = d3;
        Input<uint> x0 = a0, x1 = a1, x2 = a2, x3 = a3, y0 = b0, y1 = b1;
        CudaAsm.EmitRef("mma.sync.aligned.m16n8k8.row.col.f32.tf32.tf32.f32 {%0, %1, %2, %3}, {%4, %5, %6, %7}, {%8, %9}, {%0, %1, %2, %3};",
            ref r0, ref r1, ref r2, ref r3, ref x0, ref x1, ref x2, ref x3, ref y0, ref y1);
        d0 = r0.Value; d1 = r1.Value; d2 = r2.Value; d3 = r3.Value;
    }

    /// <summary>
    /// mma.sync.m16n8k8 (row.col, TF32 in, float32 accumulate) emulated with warp shuffles, for the
    /// CPU accelerator: the same fragment layout (PTX ISA, "Matrix Fragments for mma.m16n8k8",
    /// confirmed on the H200 by the swapped-layout diagnostic): lane = 4g + t holds A (g, t), (g+8, t),
    /// (g, t+4), (g+8, t+4), B (k t, n g), (k t+4, n g), and D (g, 2t), (g, 2t+1), (g+8, 2t),
    /// (g+8, 2t+1). Every lane of the warp must call it (as mma.sync requires).
    /// </summary>
    static void MmaEmulated(ref float d0, ref float d1, ref float d2, ref float d3, uint a0, uint a1, uint a2, uint a3, uint b0, uint b1)
    {
        int lane = Warp.LaneIdx;
        int g = lane >> 2, t = lane & 3;
        float s0 = 0f, s1 = 0f, s2 = 0f, s3 = 0f;
        for (int k = 0; k < 8; k++)
        {
            bool high = k >= 4;
            int kk = k & 3;
            float ag = Interop.IntAsFloat(Warp.Shuffle(high ? a2 : a0, 4 * g + kk));       // A (g, k)
            float ag8 = Interop.IntAsFloat(Warp.Shuffle(high ? a3 : a1, 4 * g + kk));      // A (g + 8, k)
            float bn = Interop.IntAsFloat(Warp.Shuffle(high ? b1 : b0, 4 * (2 * t) + kk));       // B (k, 2t)
            float bn1 = Interop.IntAsFloat(Warp.Shuffle(high ? b1 : b0, 4 * (2 * t + 1) + kk));  // B (k, 2t + 1)
            s0 += ag * bn; s1 += ag * bn1; s2 += ag8 * bn; s3 += ag8 * bn1;
        }
        d0 += s0; d1 += s1; d2 += s2; d3 += s3;
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

/// <summary>
/// The 8x8 accumulator block of one thread of GEMM variant 3 (rows r+16i, columns c+16j), as 64
/// scalar fields so that ILGPU keeps it in registers (an array would live in local memory).
/// </summary>
/// <summary>
/// One thread's four load slots of a 128 x 8 operand tile in variant 5 (element e = tid + 256 r,
/// r &lt; 4): computed once per launch, so a tile load is an add, a compare and a load per slot.
/// Along the contiguous dimension (mn, k) = (e &amp; 127, e &gt;&gt; 7), so the slots differ by 2 in k;
/// otherwise (e &gt;&gt; 3, e &amp; 7), so they differ by 32 rows. A slot whose row (column) lies outside
/// the matrix gets an unreachable depth, so one depth check guards every load.
/// </summary>
internal struct GemmSlots
{
    const int Outside = int.MaxValue / 2;
    int _off, _dOff, _kStride, _shared, _dShared;
    int _k0, _k1, _k2, _k3;

    /// <summary>Slots of thread <paramref name="tid"/> for rows (columns) from <paramref name="mn0"/> of <paramref name="limit"/>, element (mn, k) at mn*mnStride + k*kStride.</summary>
    public static GemmSlots Make(int tid, int mn0, int limit, int mnStride, int kStride, bool contiguousMN, int pitch)
    {
        var g = new GemmSlots { _kStride = kStride };
        int mn = contiguousMN ? tid & 127 : tid >> 3, k = contiguousMN ? tid >> 7 : tid & 7;
        int dMn = contiguousMN ? 0 : 32, dK = contiguousMN ? 2 : 0;
        g._off = (mn0 + mn) * mnStride + k * kStride;
        g._dOff = dMn * mnStride + dK * kStride;
        g._shared = k * pitch + mn;
        g._dShared = dK * pitch + dMn;
        g._k0 = mn0 + mn < limit ? k : Outside;
        g._k1 = mn0 + mn + dMn < limit ? k + dK : Outside;
        g._k2 = mn0 + mn + 2 * dMn < limit ? k + 2 * dK : Outside;
        g._k3 = mn0 + mn + 3 * dMn < limit ? k + 3 * dK : Outside;
        return g;
    }

    /// <summary>The four elements at depth offset <paramref name="k0"/> (zero past depth <paramref name="depth"/> or outside the matrix).</summary>
    public readonly void Load(ArrayView<float> v, int k0, int depth, out float v0, out float v1, out float v2, out float v3)
    {
        int o = _off + k0 * _kStride;
        v0 = One(v, o, _k0 + k0 < depth);
        v1 = One(v, o + _dOff, _k1 + k0 < depth);
        v2 = One(v, o + 2 * _dOff, _k2 + k0 < depth);
        v3 = One(v, o + 3 * _dOff, _k3 + k0 < depth);
    }

    // Branch-free: an outside slot reads element 0 (always present) and discards it.
    static float One(ArrayView<float> v, int i, bool inside)
    {
        float x = v[inside ? i : 0];
        return inside ? x : 0f;
    }

    /// <summary><see cref="StoreTf32"/> when <paramref name="tf32"/>, else the plain store.</summary>
    public readonly void Store(ArrayView<float> sh, int buf, float v0, float v1, float v2, float v3, bool tf32)
    {
        if (tf32) StoreTf32(sh, buf, v0, v1, v2, v3);
        else Store(sh, buf, v0, v1, v2, v3);
    }

    /// <summary>As the plain store, each element rounded to TF32 (variant 4; CUDA only: inline PTX).</summary>
    public readonly void StoreTf32(ArrayView<float> sh, int buf, float v0, float v1, float v2, float v3) =>
        Store(sh, buf, GemmKernels.ToTf32(v0), GemmKernels.ToTf32(v1), GemmKernels.ToTf32(v2), GemmKernels.ToTf32(v3));

    /// <summary>Stores the four elements into the shared tile at <paramref name="buf"/> (row pitch as made).</summary>
    public readonly void Store(ArrayView<float> sh, int buf, float v0, float v1, float v2, float v3)
    {
        int i = buf + _shared;
        sh[i] = v0;
        sh[i + _dShared] = v1;
        sh[i + 2 * _dShared] = v2;
        sh[i + 3 * _dShared] = v3;
    }
}

/// <summary>
/// A group's 128x128 accumulator tile as the implicit-GEMM convolutions use it (ConvImplicitGemm.cs):
/// the SIMT one (<see cref="GemmAcc8x8"/>, variant 5) or the TF32 tensor-core one
/// (<see cref="GemmAccTf32"/>, variant 4). Kernels generic in it share their loads and loops.
/// </summary>
internal interface ITileAcc
{
    /// <summary>Row pitch (floats) of the shared tiles this accumulator reads.</summary>
    int Pitch { get; }
    /// <summary>Whether elements are rounded to TF32 as they enter shared memory.</summary>
    bool Tf32 { get; }
    /// <summary>The depth steps of one shared tile (buffer at float offset <paramref name="cur"/>) for thread <paramref name="tid"/> (<paramref name="swapA"/>: the TF32 layout diagnostic, 0 otherwise).</summary>
    void Tile(ArrayView<Float4> sa4, ArrayView<Float4> sb4, ArrayView<float> sa, ArrayView<float> sb, int cur, int tid, int swapA);
    /// <summary>The convolution epilogue: y[(img*cout + co)*pixels + p] = acc + bias[co] for the tile at (m0, n0).</summary>
    void StoreConv(ArrayView<float> y, ArrayView<float> bias, int hasBias, int cout, int pixels, int total, int m0, int n0, int tid);
    /// <summary>The tile at (m0, n0) into a row-major C (as the GEMM variants store it).</summary>
    void StoreTile(ArrayView<float> c, GemmShape s, int co, int m0, int n0, int tid);
}

/// <summary>Four floats: a 128-bit shared-memory word of variant 5 (ILGPU emits ld.shared.v4 for it where the address is 16-byte aligned).</summary>
internal struct Float4
{
#pragma warning disable CS0649 // written through the float view of the shared tile
    public float X, Y, Z, W;
#pragma warning restore CS0649
}

internal struct GemmAcc8x8 : ITileAcc
{
    /// <inheritdoc/>
    public readonly int Pitch => GemmKernels.Pitch128;
    /// <inheritdoc/>
    public readonly bool Tf32 => false;

    /// <inheritdoc/>
    public void Tile(ArrayView<Float4> sa4, ArrayView<Float4> sb4, ArrayView<float> sa, ArrayView<float> sb, int cur, int tid, int swapA) =>
        TileQuads(sa4, sb4, cur, tid & 15, tid >> 4);

    /// <inheritdoc/>
    public readonly void StoreConv(ArrayView<float> y, ArrayView<float> bias, int hasBias, int cout, int pixels, int total, int m0, int n0, int tid) =>
        StoreConv(y, bias, hasBias, cout, pixels, total, m0 + 4 * (tid >> 4), n0 + 4 * (tid & 15));

    /// <inheritdoc/>
    public readonly void StoreTile(ArrayView<float> c, GemmShape s, int co, int m0, int n0, int tid) =>
        StoreQuads(c, s, co, m0 + 4 * (tid >> 4), n0 + 4 * (tid & 15));

    public float c00, c01, c02, c03, c04, c05, c06, c07;
    public float c10, c11, c12, c13, c14, c15, c16, c17;
    public float c20, c21, c22, c23, c24, c25, c26, c27;
    public float c30, c31, c32, c33, c34, c35, c36, c37;
    public float c40, c41, c42, c43, c44, c45, c46, c47;
    public float c50, c51, c52, c53, c54, c55, c56, c57;
    public float c60, c61, c62, c63, c64, c65, c66, c67;
    public float c70, c71, c72, c73, c74, c75, c76, c77;

    /// <summary>One depth step: eight A words at ia+16i, eight B words at ib+16j, 64 FMAs.</summary>
    public void Step(ArrayView<float> sa, ArrayView<float> sb, int ia, int ib)
    {
        float a0 = sa[ia + 0], a1 = sa[ia + 16], a2 = sa[ia + 32], a3 = sa[ia + 48];
        float a4 = sa[ia + 64], a5 = sa[ia + 80], a6 = sa[ia + 96], a7 = sa[ia + 112];
        float b0 = sb[ib + 0], b1 = sb[ib + 16], b2 = sb[ib + 32], b3 = sb[ib + 48];
        float b4 = sb[ib + 64], b5 = sb[ib + 80], b6 = sb[ib + 96], b7 = sb[ib + 112];
        c00 += a0 * b0; c01 += a0 * b1; c02 += a0 * b2; c03 += a0 * b3; c04 += a0 * b4; c05 += a0 * b5; c06 += a0 * b6; c07 += a0 * b7;
        c10 += a1 * b0; c11 += a1 * b1; c12 += a1 * b2; c13 += a1 * b3; c14 += a1 * b4; c15 += a1 * b5; c16 += a1 * b6; c17 += a1 * b7;
        c20 += a2 * b0; c21 += a2 * b1; c22 += a2 * b2; c23 += a2 * b3; c24 += a2 * b4; c25 += a2 * b5; c26 += a2 * b6; c27 += a2 * b7;
        c30 += a3 * b0; c31 += a3 * b1; c32 += a3 * b2; c33 += a3 * b3; c34 += a3 * b4; c35 += a3 * b5; c36 += a3 * b6; c37 += a3 * b7;
        c40 += a4 * b0; c41 += a4 * b1; c42 += a4 * b2; c43 += a4 * b3; c44 += a4 * b4; c45 += a4 * b5; c46 += a4 * b6; c47 += a4 * b7;
        c50 += a5 * b0; c51 += a5 * b1; c52 += a5 * b2; c53 += a5 * b3; c54 += a5 * b4; c55 += a5 * b5; c56 += a5 * b6; c57 += a5 * b7;
        c60 += a6 * b0; c61 += a6 * b1; c62 += a6 * b2; c63 += a6 * b3; c64 += a6 * b4; c65 += a6 * b5; c66 += a6 * b6; c67 += a6 * b7;
        c70 += a7 * b0; c71 += a7 * b1; c72 += a7 * b2; c73 += a7 * b3; c74 += a7 * b4; c75 += a7 * b5; c76 += a7 * b6; c77 += a7 * b7;
    }

    /// <summary>
    /// One depth step of variant 5: A at rows (4ty + i, 64 + 4ty + i) from quads a0, a1, B at columns
    /// (4tx + j, 64 + 4tx + j) from b0, b1; accumulator c_ij holds row r_i (i &lt; 4: a0, else a1) and column q_j.
    /// </summary>
    public void StepQuads(Float4 a0, Float4 a1, Float4 b0, Float4 b1)
    {
        Row(ref c00, ref c01, ref c02, ref c03, ref c04, ref c05, ref c06, ref c07, a0.X, b0, b1);
        Row(ref c10, ref c11, ref c12, ref c13, ref c14, ref c15, ref c16, ref c17, a0.Y, b0, b1);
        Row(ref c20, ref c21, ref c22, ref c23, ref c24, ref c25, ref c26, ref c27, a0.Z, b0, b1);
        Row(ref c30, ref c31, ref c32, ref c33, ref c34, ref c35, ref c36, ref c37, a0.W, b0, b1);
        Row(ref c40, ref c41, ref c42, ref c43, ref c44, ref c45, ref c46, ref c47, a1.X, b0, b1);
        Row(ref c50, ref c51, ref c52, ref c53, ref c54, ref c55, ref c56, ref c57, a1.Y, b0, b1);
        Row(ref c60, ref c61, ref c62, ref c63, ref c64, ref c65, ref c66, ref c67, a1.Z, b0, b1);
        Row(ref c70, ref c71, ref c72, ref c73, ref c74, ref c75, ref c76, ref c77, a1.W, b0, b1);
    }

    /// <summary>
    /// The eight depth steps of one shared tile (buffer at float offset <paramref name="cur"/>) for
    /// thread (tx, ty): two steps per iteration, each address a base plus a constant (unrolled fully,
    /// ptxas hoisted all 32 loads: 238 registers, one group per multiprocessor).
    /// </summary>
    public void TileQuads(ArrayView<Float4> sa4, ArrayView<Float4> sb4, int cur, int tx, int ty)
    {
        const int P = GemmKernels.Pitch128 / 4;
        var qa = sa4.SubView(cur / 4 + ty);
        var qb = sb4.SubView(cur / 4 + tx);
        for (int kk = 0; kk < GemmKernels.Tile128K; kk += 2)
        {
            var ra = qa.SubView(kk * P);
            var rb = qb.SubView(kk * P);
            StepQuads(ra[0], ra[16], rb[0], rb[16]);
            StepQuads(ra[P], ra[P + 16], rb[P], rb[P + 16]);
        }
    }

    /// <summary>
    /// The implicit-GEMM convolution's epilogue: C rows are output channels m + i, m + 64 + i, columns
    /// are (image, pixel) pairs n + j, n + 64 + j of <paramref name="total"/>; y[(img*cout + co)*pixels + p] = acc + bias[co].
    /// </summary>
    public readonly void StoreConv(ArrayView<float> y, ArrayView<float> bias, int hasBias, int cout, int pixels, int total, int m, int n)
    {
        int j0 = ConvColumn(n + 0, cout, pixels, total), j1 = ConvColumn(n + 1, cout, pixels, total);
        int j2 = ConvColumn(n + 2, cout, pixels, total), j3 = ConvColumn(n + 3, cout, pixels, total);
        int j4 = ConvColumn(n + 64, cout, pixels, total), j5 = ConvColumn(n + 65, cout, pixels, total);
        int j6 = ConvColumn(n + 66, cout, pixels, total), j7 = ConvColumn(n + 67, cout, pixels, total);
        ConvRow(y, bias, hasBias, cout, pixels, m + 0, j0, j1, j2, j3, j4, j5, j6, j7, c00, c01, c02, c03, c04, c05, c06, c07);
        ConvRow(y, bias, hasBias, cout, pixels, m + 1, j0, j1, j2, j3, j4, j5, j6, j7, c10, c11, c12, c13, c14, c15, c16, c17);
        ConvRow(y, bias, hasBias, cout, pixels, m + 2, j0, j1, j2, j3, j4, j5, j6, j7, c20, c21, c22, c23, c24, c25, c26, c27);
        ConvRow(y, bias, hasBias, cout, pixels, m + 3, j0, j1, j2, j3, j4, j5, j6, j7, c30, c31, c32, c33, c34, c35, c36, c37);
        ConvRow(y, bias, hasBias, cout, pixels, m + 64, j0, j1, j2, j3, j4, j5, j6, j7, c40, c41, c42, c43, c44, c45, c46, c47);
        ConvRow(y, bias, hasBias, cout, pixels, m + 65, j0, j1, j2, j3, j4, j5, j6, j7, c50, c51, c52, c53, c54, c55, c56, c57);
        ConvRow(y, bias, hasBias, cout, pixels, m + 66, j0, j1, j2, j3, j4, j5, j6, j7, c60, c61, c62, c63, c64, c65, c66, c67);
        ConvRow(y, bias, hasBias, cout, pixels, m + 67, j0, j1, j2, j3, j4, j5, j6, j7, c70, c71, c72, c73, c74, c75, c76, c77);
    }

    /// <summary>Offset of column n's pixel in y without the channel term (img*cout*pixels + p), or -1 past the last column.</summary>
    internal static int ConvColumn(int n, int cout, int pixels, int total)
    {
        if (n >= total) return -1;
        int img = n / pixels;
        return img * cout * pixels + (n - img * pixels);
    }

    static void ConvRow(ArrayView<float> y, ArrayView<float> bias, int hasBias, int cout, int pixels, int co,
        int j0, int j1, int j2, int j3, int j4, int j5, int j6, int j7,
        float v0, float v1, float v2, float v3, float v4, float v5, float v6, float v7)
    {
        if (co >= cout) return;
        float b = hasBias != 0 ? bias[co] : 0f;
        int o = co * pixels;
        if (j0 >= 0) y[j0 + o] = v0 + b;
        if (j1 >= 0) y[j1 + o] = v1 + b;
        if (j2 >= 0) y[j2 + o] = v2 + b;
        if (j3 >= 0) y[j3 + o] = v3 + b;
        if (j4 >= 0) y[j4 + o] = v4 + b;
        if (j5 >= 0) y[j5 + o] = v5 + b;
        if (j6 >= 0) y[j6 + o] = v6 + b;
        if (j7 >= 0) y[j7 + o] = v7 + b;
    }

    static void Row(ref float r0, ref float r1, ref float r2, ref float r3, ref float r4, ref float r5, ref float r6, ref float r7,
        float a, Float4 b0, Float4 b1)
    {
        r0 += a * b0.X; r1 += a * b0.Y; r2 += a * b0.Z; r3 += a * b0.W;
        r4 += a * b1.X; r5 += a * b1.Y; r6 += a * b1.Z; r7 += a * b1.W;
    }

    /// <summary>Writes variant 5's block to C (rows m + i and m + 64 + i, columns n + j and n + 64 + j, i, j &lt; 4) with alpha/beta.</summary>
    public readonly void StoreQuads(ArrayView<float> c, GemmShape s, int co, int m, int n) => Store(c, s, co, m, n, 1);

    /// <summary>
    /// Writes the block to C with alpha/beta, skipping what lies outside: rows m + (i mod 4) step +
    /// (i / 4) 64 and likewise columns, so step 16 is variant 3's rows m + 16i, step 1 variant 5's quads.
    /// </summary>
    public readonly void Store(ArrayView<float> c, GemmShape s, int co, int m, int n, int step = 16)
    {
        StoreRow(c, s, co, m, n, step, c00, c01, c02, c03, c04, c05, c06, c07);
        StoreRow(c, s, co, m + step, n, step, c10, c11, c12, c13, c14, c15, c16, c17);
        StoreRow(c, s, co, m + 2 * step, n, step, c20, c21, c22, c23, c24, c25, c26, c27);
        StoreRow(c, s, co, m + 3 * step, n, step, c30, c31, c32, c33, c34, c35, c36, c37);
        StoreRow(c, s, co, m + 64, n, step, c40, c41, c42, c43, c44, c45, c46, c47);
        StoreRow(c, s, co, m + 64 + step, n, step, c50, c51, c52, c53, c54, c55, c56, c57);
        StoreRow(c, s, co, m + 64 + 2 * step, n, step, c60, c61, c62, c63, c64, c65, c66, c67);
        StoreRow(c, s, co, m + 64 + 3 * step, n, step, c70, c71, c72, c73, c74, c75, c76, c77);
    }

    static void StoreRow(ArrayView<float> c, GemmShape s, int co, int m, int n, int step, float v0, float v1, float v2, float v3, float v4, float v5, float v6, float v7)
    {
        if (m >= s.M) return;
        int row = co + m * s.CRow;
        Put(c, s, row, n, v0);
        Put(c, s, row, n + step, v1);
        Put(c, s, row, n + 2 * step, v2);
        Put(c, s, row, n + 3 * step, v3);
        Put(c, s, row, n + 64, v4);
        Put(c, s, row, n + 64 + step, v5);
        Put(c, s, row, n + 64 + 2 * step, v6);
        Put(c, s, row, n + 64 + 3 * step, v7);
    }

    static void Put(ArrayView<float> c, GemmShape s, int row, int n, float v)
    {
        if (n >= s.N) return;
        int i = row + n;
        c[i] = s.Beta == 0f ? s.Alpha * v : s.Alpha * v + s.Beta * c[i];
    }
}

/// <summary>
/// The accumulators of one thread of the TF32 GEMM (variant 4): a warp's 32x64 block is 2 x 8
/// mma tiles of 16x8, each thread holding four floats of each (c_i_j_0..3 at rows g, g, g+8, g+8
/// and columns 2t, 2t+1, 2t, 2t+1 of tile (i, j), g = lane / 4, t = lane % 4), as scalar fields so
/// that ILGPU keeps them in registers.
/// </summary>
internal struct GemmAccTf32 : ITileAcc
{
    /// <inheritdoc/>
    public readonly int Pitch => GemmKernels.PitchTf32;
    /// <inheritdoc/>
    public readonly bool Tf32 => true;

    /// <inheritdoc/>
    public void Tile(ArrayView<Float4> sa4, ArrayView<Float4> sb4, ArrayView<float> sa, ArrayView<float> sb, int cur, int tid, int swapA)
    {
        int lane = tid & 31, warp = tid >> 5;
        Step(sa, sb, cur, (warp & 3) * 32, (warp >> 2) * 64, GemmKernels.PitchTf32, lane >> 2, lane & 3, swapA);
    }

    /// <inheritdoc/>
    public readonly void StoreTile(ArrayView<float> c, GemmShape s, int co, int m0, int n0, int tid)
    {
        int lane = tid & 31, warp = tid >> 5;
        Store(c, s, co, m0 + (warp & 3) * 32 + (lane >> 2), n0 + (warp >> 2) * 64 + 2 * (lane & 3));
    }

    /// <inheritdoc/>
    public readonly void StoreConv(ArrayView<float> y, ArrayView<float> bias, int hasBias, int cout, int pixels, int total, int m0, int n0, int tid)
    {
        int lane = tid & 31, warp = tid >> 5;
        int m = m0 + (warp & 3) * 32 + (lane >> 2), n = n0 + (warp >> 2) * 64 + 2 * (lane & 3);
        ConvPair(y, bias, hasBias, cout, pixels, total, m, n + 0, c000, c001, c002, c003, c100, c101, c102, c103);
        ConvPair(y, bias, hasBias, cout, pixels, total, m, n + 8, c010, c011, c012, c013, c110, c111, c112, c113);
        ConvPair(y, bias, hasBias, cout, pixels, total, m, n + 16, c020, c021, c022, c023, c120, c121, c122, c123);
        ConvPair(y, bias, hasBias, cout, pixels, total, m, n + 24, c030, c031, c032, c033, c130, c131, c132, c133);
        ConvPair(y, bias, hasBias, cout, pixels, total, m, n + 32, c040, c041, c042, c043, c140, c141, c142, c143);
        ConvPair(y, bias, hasBias, cout, pixels, total, m, n + 40, c050, c051, c052, c053, c150, c151, c152, c153);
        ConvPair(y, bias, hasBias, cout, pixels, total, m, n + 48, c060, c061, c062, c063, c160, c161, c162, c163);
        ConvPair(y, bias, hasBias, cout, pixels, total, m, n + 56, c070, c071, c072, c073, c170, c171, c172, c173);
    }

    // Columns n and n + 1 of rows m, m + 8, m + 16, m + 24 (an mma tile pair's four rows).
    static void ConvPair(ArrayView<float> y, ArrayView<float> bias, int hasBias, int cout, int pixels, int total, int m, int n,
        float r0a, float r0b, float r8a, float r8b, float r16a, float r16b, float r24a, float r24b)
    {
        int ja = GemmAcc8x8.ConvColumn(n, cout, pixels, total), jb = GemmAcc8x8.ConvColumn(n + 1, cout, pixels, total);
        ConvPut(y, bias, hasBias, cout, pixels, m, ja, jb, r0a, r0b);
        ConvPut(y, bias, hasBias, cout, pixels, m + 8, ja, jb, r8a, r8b);
        ConvPut(y, bias, hasBias, cout, pixels, m + 16, ja, jb, r16a, r16b);
        ConvPut(y, bias, hasBias, cout, pixels, m + 24, ja, jb, r24a, r24b);
    }

    static void ConvPut(ArrayView<float> y, ArrayView<float> bias, int hasBias, int cout, int pixels, int co, int ja, int jb, float va, float vb)
    {
        if (co >= cout) return;
        float b = hasBias != 0 ? bias[co] : 0f;
        int o = co * pixels;
        if (ja >= 0) y[ja + o] = va + b;
        if (jb >= 0) y[jb + o] = vb + b;
    }

    public float c000, c001, c002, c003;
    public float c010, c011, c012, c013;
    public float c020, c021, c022, c023;
    public float c030, c031, c032, c033;
    public float c040, c041, c042, c043;
    public float c050, c051, c052, c053;
    public float c060, c061, c062, c063;
    public float c070, c071, c072, c073;
    public float c100, c101, c102, c103;
    public float c110, c111, c112, c113;
    public float c120, c121, c122, c123;
    public float c130, c131, c132, c133;
    public float c140, c141, c142, c143;
    public float c150, c151, c152, c153;
    public float c160, c161, c162, c163;
    public float c170, c171, c172, c173;

    /// <summary>
    /// One k-step of 8 from the shared buffer at offset ka: the A fragments of the warp's two 16-row
    /// tiles (rows ra and ra + 16, tf32 bits stored as floats in sa[ka + k*pitch + m]) and the B
    /// fragments of its eight 8-column tiles (from column rb, sb[ka + k*pitch + n]), then 16 mma.sync.m16n8k8 (TF32 inputs, float32 accumulation).
    /// <paramref name="swapA"/> != 0 passes A's middle registers swapped (a diagnostic of the
    /// fragment layout, for the first runs on a GPU).
    /// </summary>
    public void Step(ArrayView<float> sa, ArrayView<float> sb, int ka, int ra, int rb, int pitch, int g, int t, int swapA)
    {
        // One base per operand (row t, column g of the warp's block), every fragment word at a
        // constant offset from it (ptxas folds them into the loads); rows t + 4 are 4 pitches on.
        var qa = sa.SubView(ka + t * pitch + g + ra);
        var qb = sb.SubView(ka + t * pitch + g + rb);
        int p4 = 4 * pitch;
        uint x00 = Interop.FloatAsInt(qa[0]), x01 = Interop.FloatAsInt(qa[8]);
        uint x02 = Interop.FloatAsInt(qa[p4]), x03 = Interop.FloatAsInt(qa[p4 + 8]);
        uint a00 = x00, a01 = swapA != 0 ? x02 : x01, a02 = swapA != 0 ? x01 : x02, a03 = x03;
        uint x10 = Interop.FloatAsInt(qa[16]), x11 = Interop.FloatAsInt(qa[24]);
        uint x12 = Interop.FloatAsInt(qa[p4 + 16]), x13 = Interop.FloatAsInt(qa[p4 + 24]);
        uint a10 = x10, a11 = swapA != 0 ? x12 : x11, a12 = swapA != 0 ? x11 : x12, a13 = x13;
        uint b00 = Interop.FloatAsInt(qb[0]), b01 = Interop.FloatAsInt(qb[p4]);
        uint b10 = Interop.FloatAsInt(qb[8]), b11 = Interop.FloatAsInt(qb[p4 + 8]);
        uint b20 = Interop.FloatAsInt(qb[16]), b21 = Interop.FloatAsInt(qb[p4 + 16]);
        uint b30 = Interop.FloatAsInt(qb[24]), b31 = Interop.FloatAsInt(qb[p4 + 24]);
        uint b40 = Interop.FloatAsInt(qb[32]), b41 = Interop.FloatAsInt(qb[p4 + 32]);
        uint b50 = Interop.FloatAsInt(qb[40]), b51 = Interop.FloatAsInt(qb[p4 + 40]);
        uint b60 = Interop.FloatAsInt(qb[48]), b61 = Interop.FloatAsInt(qb[p4 + 48]);
        uint b70 = Interop.FloatAsInt(qb[56]), b71 = Interop.FloatAsInt(qb[p4 + 56]);
        GemmKernels.Mma(ref c000, ref c001, ref c002, ref c003, a00, a01, a02, a03, b00, b01);
        GemmKernels.Mma(ref c010, ref c011, ref c012, ref c013, a00, a01, a02, a03, b10, b11);
        GemmKernels.Mma(ref c020, ref c021, ref c022, ref c023, a00, a01, a02, a03, b20, b21);
        GemmKernels.Mma(ref c030, ref c031, ref c032, ref c033, a00, a01, a02, a03, b30, b31);
        GemmKernels.Mma(ref c040, ref c041, ref c042, ref c043, a00, a01, a02, a03, b40, b41);
        GemmKernels.Mma(ref c050, ref c051, ref c052, ref c053, a00, a01, a02, a03, b50, b51);
        GemmKernels.Mma(ref c060, ref c061, ref c062, ref c063, a00, a01, a02, a03, b60, b61);
        GemmKernels.Mma(ref c070, ref c071, ref c072, ref c073, a00, a01, a02, a03, b70, b71);
        GemmKernels.Mma(ref c100, ref c101, ref c102, ref c103, a10, a11, a12, a13, b00, b01);
        GemmKernels.Mma(ref c110, ref c111, ref c112, ref c113, a10, a11, a12, a13, b10, b11);
        GemmKernels.Mma(ref c120, ref c121, ref c122, ref c123, a10, a11, a12, a13, b20, b21);
        GemmKernels.Mma(ref c130, ref c131, ref c132, ref c133, a10, a11, a12, a13, b30, b31);
        GemmKernels.Mma(ref c140, ref c141, ref c142, ref c143, a10, a11, a12, a13, b40, b41);
        GemmKernels.Mma(ref c150, ref c151, ref c152, ref c153, a10, a11, a12, a13, b50, b51);
        GemmKernels.Mma(ref c160, ref c161, ref c162, ref c163, a10, a11, a12, a13, b60, b61);
        GemmKernels.Mma(ref c170, ref c171, ref c172, ref c173, a10, a11, a12, a13, b70, b71);
    }

    /// <summary>Writes the block to C: tile (i, j) at rows m + 16i (+8), columns n + 8j + 2t (+1), with alpha/beta, skipping what lies outside.</summary>
    public readonly void Store(ArrayView<float> c, GemmShape s, int co, int m, int n)
    {
        Put2(c, s, co, m + 0, n + 0, c000, c001);
        Put2(c, s, co, m + 8, n + 0, c002, c003);
        Put2(c, s, co, m + 0, n + 8, c010, c011);
        Put2(c, s, co, m + 8, n + 8, c012, c013);
        Put2(c, s, co, m + 0, n + 16, c020, c021);
        Put2(c, s, co, m + 8, n + 16, c022, c023);
        Put2(c, s, co, m + 0, n + 24, c030, c031);
        Put2(c, s, co, m + 8, n + 24, c032, c033);
        Put2(c, s, co, m + 0, n + 32, c040, c041);
        Put2(c, s, co, m + 8, n + 32, c042, c043);
        Put2(c, s, co, m + 0, n + 40, c050, c051);
        Put2(c, s, co, m + 8, n + 40, c052, c053);
        Put2(c, s, co, m + 0, n + 48, c060, c061);
        Put2(c, s, co, m + 8, n + 48, c062, c063);
        Put2(c, s, co, m + 0, n + 56, c070, c071);
        Put2(c, s, co, m + 8, n + 56, c072, c073);
        Put2(c, s, co, m + 16, n + 0, c100, c101);
        Put2(c, s, co, m + 24, n + 0, c102, c103);
        Put2(c, s, co, m + 16, n + 8, c110, c111);
        Put2(c, s, co, m + 24, n + 8, c112, c113);
        Put2(c, s, co, m + 16, n + 16, c120, c121);
        Put2(c, s, co, m + 24, n + 16, c122, c123);
        Put2(c, s, co, m + 16, n + 24, c130, c131);
        Put2(c, s, co, m + 24, n + 24, c132, c133);
        Put2(c, s, co, m + 16, n + 32, c140, c141);
        Put2(c, s, co, m + 24, n + 32, c142, c143);
        Put2(c, s, co, m + 16, n + 40, c150, c151);
        Put2(c, s, co, m + 24, n + 40, c152, c153);
        Put2(c, s, co, m + 16, n + 48, c160, c161);
        Put2(c, s, co, m + 24, n + 48, c162, c163);
        Put2(c, s, co, m + 16, n + 56, c170, c171);
        Put2(c, s, co, m + 24, n + 56, c172, c173);
    }

    static void Put2(ArrayView<float> c, GemmShape s, int co, int m, int n, float v0, float v1)
    {
        if (m >= s.M) return;
        int row = co + m * s.CRow;
        Put(c, s, row, n, v0);
        Put(c, s, row, n + 1, v1);
    }

    static void Put(ArrayView<float> c, GemmShape s, int row, int n, float v)
    {
        if (n >= s.N) return;
        int i = row + n;
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
    /// <summary>
    /// Runs the kernel on packed panels; <paramref name="mr"/>, <paramref name="nr"/> &lt; MR, NR at the
    /// edges. C += alpha acc, or with <paramref name="overwrite"/> C = alpha acc + bias[row] (bias
    /// null: 0), which spares a pass clearing C and one adding the bias.
    /// </summary>
    static abstract void Run(float* ap, float* bp, int kc, float* c, int ldc, float alpha, int mr, int nr, float* bias, bool overwrite);
}

/// <summary>A micro-kernel that can also read B's rows in place (<see cref="IBRows"/>): the Vector512 ones.</summary>
internal unsafe interface IRowsMicroKernel : IGemmMicroKernel
{
    /// <summary>As Run, with row k of the B panel at <paramref name="b"/>.At(k).</summary>
    static abstract void RunRows<TB>(float* ap, TB b, int kc, float* c, int ldc, float alpha, int mr, int nr, float* bias, bool overwrite) where TB : struct, IBRows;
}

/// <summary>
/// Fills B's packed column panels: panel j of rows [p0, p0 + kc) at dst[k nr + jj] = B[p0 + k, j nr + jj],
/// zeros past N. A strided B (<see cref="StridedB"/>) or a convolution's im2col built straight into
/// panels (no col matrix, no second copy).
/// </summary>
internal unsafe interface IBPanelPacker
{
    /// <summary>Writes panel <paramref name="j"/> of rows [p0, p0 + kc).</summary>
    void PackPanel(int j, int p0, int kc, float* dst, int nr);
}

/// <summary>B read through its strides (row BRow, column BCol) from <see cref="Base"/>.</summary>
internal readonly unsafe struct StridedB(float* b, int n, long bRow, long bCol) : IBPanelPacker
{
    readonly float* Base = b;

    public void PackPanel(int j, int p0, int kc, float* dst, int nr)
    {
        int n0 = j * nr;
        int w = Math.Min(nr, n - n0);
        for (int k = 0; k < kc; k++)
        {
            float* d = dst + k * nr;
            long rowOff = (p0 + k) * bRow;
            if (bCol == 1 && w == nr)
            {
                Buffer.MemoryCopy(Base + rowOff + n0, d, nr * sizeof(float), nr * sizeof(float));
                continue;
            }
            int jj = 0;
            for (; jj < w; jj++) d[jj] = Base[rowOff + (n0 + jj) * bCol];
            for (; jj < nr; jj++) d[jj] = 0f;
        }
    }
}

/// <summary>
/// The CPU fast path of GEMM: plain C# over the CPU accelerator's buffers. The micro-kernel is
/// chosen once per process from the ISA: 12 x 32 with Vector512 (AVX-512: 24 accumulators of the 32
/// registers; 8 x 32 when 12 does not divide M but 8 does), else 6 x 2 Vector&lt;float&gt; (AVX2: 12 of
/// 16 registers; SSE: 6 x 8). B's panels come from a packer (<see cref="IBPanelPacker"/>): strided B,
/// or a convolution's im2col written straight into them; with Beta 0 the first depth block stores C
/// (plus an optional per-row bias) instead of clearing it first.
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
    public static string KernelName => Wide ? "12x32 (8x32 for row counts 12 does not divide) Vector512" : $"6x{2 * Vector<float>.Count} Vector<float>";

    /// <summary>
    /// Whether the 8 x 32 kernel serves <paramref name="m"/> rows better than 12 x 32: when 12 does not
    /// divide m but 8 does (16, 32, 64, 128: the small networks' channel counts, where 12-row tiles
    /// left a third of a 16-row product idle), or m is below 8.
    /// </summary>
    static bool NarrowRows(int m) => m < 8 || (m % 12 != 0 && m % 8 == 0);

    /// <summary>The micro-kernel for an m-row product: 12x32, 8x32 (AVX-512) or 6 x 2 Vector&lt;float&gt;.</summary>
    public static int PanelWidth => Wide ? Micro12x32.NR : Micro6x2V.NR;

    /// <summary>
    /// Runs the GEMM on host pointers. <paramref name="maxThreads"/> 1 runs serially (callers that
    /// already parallelise over images). <paramref name="bias"/> (M floats, or null) is added to
    /// every row of C; it needs Beta 0.
    /// </summary>
    public static void Run(float* a, float* b, float* c, in GemmShape s, int maxThreads, float* bias = null)
    {
        if (!Wide) Run<Micro6x2V>(a, b, c, s, maxThreads, bias);
        else if (NarrowRows(s.M)) Run<Micro8x32>(a, b, c, s, maxThreads, bias);
        else Run<Micro12x32>(a, b, c, s, maxThreads, bias);
    }

    /// <summary>
    /// One product (Batch 1) whose B panels <paramref name="packer"/> builds (the convolution's
    /// im2col written straight into panels of width <see cref="PanelWidth"/>); C = alpha A B (+ bias).
    /// </summary>
    /// <remarks>
    /// <paramref name="packedA"/>: A already packed by <see cref="PackWhole"/> for this shape (a
    /// convolution packs its weight once for all images), or null to pack it here.
    /// </remarks>
    public static void RunPacked<TP>(float* a, TP packer, float* c, in GemmShape s, int maxThreads, float* bias, float* packedA = null) where TP : struct, IBPanelPacker
    {
        if (s.Batch != 1 || s.Beta != 0f) throw new ArgumentException("GemmCpu.RunPacked: one product (Batch 1) with Beta 0");
        if (!Wide) RunOne<Micro6x2V, TP>(a, packer, c, s, maxThreads, bias, overwrite: true, packedA);
        else if (NarrowRows(s.M)) RunOne<Micro8x32, TP>(a, packer, c, s, maxThreads, bias, overwrite: true, packedA);
        else RunOne<Micro12x32, TP>(a, packer, c, s, maxThreads, bias, overwrite: true, packedA);
    }

    /// <summary>Rows of the micro-kernel <see cref="RunPacked"/> uses for an m-row product.</summary>
    static int RowsPerPanel(int m) => !Wide ? Micro6x2V.MR : NarrowRows(m) ? Micro8x32.MR : Micro12x32.MR;

    /// <summary>Floats <see cref="PackWhole"/> writes for shape <paramref name="s"/>.</summary>
    public static int PackedLength(in GemmShape s)
    {
        int mr = RowsPerPanel(s.M);
        return (s.M + mr - 1) / mr * mr * s.K;
    }

    /// <summary>
    /// Packs all of A (M x K of shape <paramref name="s"/>) as <see cref="RunPacked"/>'s row blocks
    /// would, once: depth block p0 at packed + p0 Mpad (Mpad = M rounded up to the panel height),
    /// row m0 of it at + m0 kc.
    /// </summary>
    public static void PackWhole(float* a, in GemmShape s, float* packed)
    {
        int mr = RowsPerPanel(s.M), mPad = (s.M + mr - 1) / mr * mr;
        for (int p0 = 0; p0 < s.K; p0 += KC)
            PackA(a, s, 0, s.M, p0, Math.Min(KC, s.K - p0), packed + (long)p0 * mPad, mr);
    }

    /// <summary>
    /// One product (Batch 1, Beta 0, C row-major with CRow = N) whose B is not packed: row k of the
    /// 32-column panel starting at column n0 is read at <paramref name="origin"/> + n0 + offsets[k]
    /// (<see cref="PlaneRows"/>), and A was packed by <see cref="PackWhole"/>. Wide (AVX-512) only.
    /// Columns past N of the last panel are read but never stored. Panels are split across
    /// <paramref name="maxThreads"/> threads (each owns its columns of C).
    /// </summary>
    public static void RunDirect(float* packedA, float* origin, int* offsets, float* c, in GemmShape s, int maxThreads, float* bias)
    {
        if (!Wide || s.Batch != 1 || s.Beta != 0f) throw new ArgumentException("GemmCpu.RunDirect: AVX-512, one product with Beta 0");
        if (NarrowRows(s.M)) RunDirect<Micro8x32>(packedA, origin, offsets, c, s, maxThreads, bias);
        else RunDirect<Micro12x32>(packedA, origin, offsets, c, s, maxThreads, bias);
    }

    static void RunDirect<TK>(float* packedA, float* origin, int* offsets, float* c, GemmShape s, int maxThreads, float* bias) where TK : IRowsMicroKernel
    {
        int mr = TK.MR, mPad = (s.M + mr - 1) / mr * mr, nPanels = (s.N + 31) / 32;
        nint aa = (nint)packedA, ao = (nint)origin, aoff = (nint)offsets, ac = (nint)c, ab = (nint)bias;
        var sh = s;
        void Panel(int j)
        {
            int n0 = j * 32, nr = Math.Min(32, sh.N - n0);
            for (int p0 = 0; p0 < sh.K; p0 += KC)
            {
                int kc = Math.Min(KC, sh.K - p0);
                var rows = new PlaneRows((float*)ao + n0, (int*)aoff + p0);
                float* ablock = (float*)aa + (long)p0 * mPad;
                for (int i = 0; i < sh.M; i += mr)
                    TK.RunRows(ablock + (long)i * kc, rows, kc, (float*)ac + (long)i * sh.CRow + n0, sh.CRow, sh.Alpha,
                        Math.Min(mr, sh.M - i), nr, ab == 0 ? null : (float*)ab + i, p0 == 0);
            }
        }
        if (maxThreads <= 1 || nPanels < 2)
            for (int j = 0; j < nPanels; j++) Panel(j);
        else
            Parallel.For(0, nPanels, new ParallelOptions { MaxDegreeOfParallelism = maxThreads }, Panel);
    }

    static void Run<TK>(float* a, float* b, float* c, in GemmShape s, int maxThreads, float* bias) where TK : IGemmMicroKernel
    {
        if (bias != null && s.Beta != 0f) throw new ArgumentException("GemmCpu.Run: a bias needs Beta 0");
        int outBatches = s.ReduceBatch != 0 ? 1 : s.Batch;
        // Beta 0 with work to do: the first depth block overwrites C (no clearing pass).
        bool overwrite = s.Beta == 0f && s.Alpha != 0f && s.K != 0;
        if (!overwrite)
        {
            for (int ob = 0; ob < outBatches; ob++)
            {
                ScaleC(c + (long)ob * s.CBatch, s.M, s.N, s.CRow, s.Beta);
                if (bias != null) AddRowBias(c + (long)ob * s.CBatch, s.M, s.N, s.CRow, bias);
            }
            if (s.Alpha == 0f || s.K == 0) return;
        }
        for (int bb = 0; bb < s.Batch; bb++)
        {
            float* cb = c + (s.ReduceBatch != 0 ? 0 : (long)bb * s.CBatch);
            var packer = new StridedB(b + (long)bb * s.BBatch, s.N, s.BRow, s.BCol);
            RunOne<TK, StridedB>(a + (long)bb * s.ABatch, packer, cb, s, maxThreads, bias, overwrite && (s.ReduceBatch == 0 || bb == 0), null);
        }
    }

    /// <summary>One product: depth blocks of KC, each packing B's panels then running the row blocks.</summary>
    static void RunOne<TK, TP>(float* a, TP packer, float* c, GemmShape s, int maxThreads, float* bias, bool overwrite, float* packedA)
        where TK : IGemmMicroKernel where TP : struct, IBPanelPacker
    {
        int nr = TK.NR;
        int nPanels = (s.N + nr - 1) / nr;
        float[] bpArr = ArrayPool<float>.Shared.Rent(nPanels * nr * Math.Min(KC, s.K) + 16);
        try
        {
            fixed (float* bpRaw = bpArr)
            {
                float* bp = Align64(bpRaw);
                for (int p0 = 0; p0 < s.K; p0 += KC)
                {
                    int kc = Math.Min(KC, s.K - p0);
                    PackB(packer, nPanels, p0, kc, bp, nr, maxThreads);
                    float* aBlock = packedA == null ? null : packedA + (long)p0 * ((s.M + TK.MR - 1) / TK.MR * TK.MR);
                    RunBlock<TK>(a, bp, c, s, p0, kc, maxThreads, bias, overwrite && p0 == 0, aBlock);
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

    static void AddRowBias(float* c, int m, int n, int ldc, float* bias)
    {
        for (int i = 0; i < m; i++)
        {
            var row = new Span<float>(c + (long)i * ldc, n);
            System.Numerics.Tensors.TensorPrimitives.Add(row, bias[i], row);
        }
    }

    /// <summary>Packs B[p0:p0+kc, 0:N] into nr-wide column panels: panel j, row k at bp[(j*kc + k)*nr].</summary>
    static void PackB<TP>(TP packer, int nPanels, int p0, int kc, float* bp, int nr, int maxThreads) where TP : struct, IBPanelPacker
    {
        // Serial callers (conv's per-image GEMMs) pay no Parallel.For: at small sizes it cost more than the packing.
        if (maxThreads == 1)
        {
            for (int j = 0; j < nPanels; j++) packer.PackPanel(j, p0, kc, bp + (long)j * kc * nr, nr);
            return;
        }
        nint bpAddr = (nint)bp;
        Parallel.For(0, nPanels, new ParallelOptions { MaxDegreeOfParallelism = maxThreads },
            j => packer.PackPanel(j, p0, kc, (float*)bpAddr + (long)j * kc * nr, nr));
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
                if (h == mr && Avx.IsSupported)
                {
                    // Full panels: 8 x 8 (AVX) and 4 x 4 (SSE) register transposes of the panel's
                    // rows, the scalar loop only for a row or k remainder (the scalar gather cost
                    // as much as the attention GEMMs' FMAs at head dimension 64).
                    int r = 0;
                    for (; r + 8 <= mr; r += 8) Transpose8(rows + r, kc, dst + r, mr);
                    for (; r + 4 <= mr; r += 4) Transpose4(rows + r, kc, dst + r, mr);
                    for (; r < mr; r++)
                        for (int k = 0; k < kc; k++) dst[k * mr + r] = ((float*)rows[r])[k];
                    continue;
                }
                for (int k = 0; k < kc; k++, dst += mr)
                {
                    int r = 0;
                    for (; r < h; r++) dst[r] = ((float*)rows[r])[k];
                    for (; r < mr; r++) dst[r] = 0f;
                }
            }
            return;
        }
        if (s.ARow == 1)
        {
            // A stored transposed (attention's P^T dO and dS^T Q): panel column k is mr consecutive
            // floats of A's column, one vector copy (rows past M zero).
            for (int i = 0; i < mc; i += mr)
            {
                float* dst = ap + (long)(i / mr) * kc * mr;
                int h = Math.Min(mr, mc - i);
                for (int k = 0; k < kc; k++, dst += mr)
                {
                    float* src = a + m0 + i + (long)(p0 + k) * s.ACol;
                    int r = 0;
                    for (; r + 8 <= h; r += 8) Vector256.Store(Vector256.Load(src + r), dst + r);
                    for (; r + 4 <= h; r += 4) Vector128.Store(Vector128.Load(src + r), dst + r);
                    for (; r < h; r++) dst[r] = src[r];
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

    /// <summary>dst[k ld + j] = rows[j][k] for j &lt; 8, k &lt; kc: 8 x 8 AVX transposes, the k remainder scalar.</summary>
    internal static void Transpose8(nint* rows, int kc, float* dst, int ld)
    {
        float* r0 = (float*)rows[0], r1 = (float*)rows[1], r2 = (float*)rows[2], r3 = (float*)rows[3];
        float* r4 = (float*)rows[4], r5 = (float*)rows[5], r6 = (float*)rows[6], r7 = (float*)rows[7];
        int k = 0;
        for (; k + 8 <= kc; k += 8)
        {
            var t0 = Avx.UnpackLow(Avx.LoadVector256(r0 + k), Avx.LoadVector256(r1 + k));
            var t1 = Avx.UnpackHigh(Avx.LoadVector256(r0 + k), Avx.LoadVector256(r1 + k));
            var t2 = Avx.UnpackLow(Avx.LoadVector256(r2 + k), Avx.LoadVector256(r3 + k));
            var t3 = Avx.UnpackHigh(Avx.LoadVector256(r2 + k), Avx.LoadVector256(r3 + k));
            var t4 = Avx.UnpackLow(Avx.LoadVector256(r4 + k), Avx.LoadVector256(r5 + k));
            var t5 = Avx.UnpackHigh(Avx.LoadVector256(r4 + k), Avx.LoadVector256(r5 + k));
            var t6 = Avx.UnpackLow(Avx.LoadVector256(r6 + k), Avx.LoadVector256(r7 + k));
            var t7 = Avx.UnpackHigh(Avx.LoadVector256(r6 + k), Avx.LoadVector256(r7 + k));
            var u0 = Avx.Shuffle(t0, t2, 0x44); var u1 = Avx.Shuffle(t0, t2, 0xEE);
            var u2 = Avx.Shuffle(t1, t3, 0x44); var u3 = Avx.Shuffle(t1, t3, 0xEE);
            var u4 = Avx.Shuffle(t4, t6, 0x44); var u5 = Avx.Shuffle(t4, t6, 0xEE);
            var u6 = Avx.Shuffle(t5, t7, 0x44); var u7 = Avx.Shuffle(t5, t7, 0xEE);
            float* d = dst + (long)k * ld;
            Avx.Store(d, Avx.Permute2x128(u0, u4, 0x20));
            Avx.Store(d + ld, Avx.Permute2x128(u1, u5, 0x20));
            Avx.Store(d + 2 * ld, Avx.Permute2x128(u2, u6, 0x20));
            Avx.Store(d + 3 * ld, Avx.Permute2x128(u3, u7, 0x20));
            Avx.Store(d + 4 * ld, Avx.Permute2x128(u0, u4, 0x31));
            Avx.Store(d + 5 * ld, Avx.Permute2x128(u1, u5, 0x31));
            Avx.Store(d + 6 * ld, Avx.Permute2x128(u2, u6, 0x31));
            Avx.Store(d + 7 * ld, Avx.Permute2x128(u3, u7, 0x31));
        }
        for (; k < kc; k++)
            for (int j = 0; j < 8; j++) dst[(long)k * ld + j] = ((float*)rows[j])[k];
    }

    /// <summary>dst[k ld + j] = rows[j][k] for j &lt; 4, k &lt; kc: 4 x 4 SSE transposes, the k remainder scalar.</summary>
    static void Transpose4(nint* rows, int kc, float* dst, int ld)
    {
        float* r0 = (float*)rows[0], r1 = (float*)rows[1], r2 = (float*)rows[2], r3 = (float*)rows[3];
        int k = 0;
        for (; k + 4 <= kc; k += 4)
        {
            var a0 = Sse.LoadVector128(r0 + k); var a1 = Sse.LoadVector128(r1 + k);
            var a2 = Sse.LoadVector128(r2 + k); var a3 = Sse.LoadVector128(r3 + k);
            var t0 = Sse.UnpackLow(a0, a1); var t1 = Sse.UnpackHigh(a0, a1);
            var t2 = Sse.UnpackLow(a2, a3); var t3 = Sse.UnpackHigh(a2, a3);
            float* d = dst + (long)k * ld;
            Sse.Store(d, Sse.MoveLowToHigh(t0, t2));
            Sse.Store(d + ld, Sse.MoveHighToLow(t2, t0));
            Sse.Store(d + 2 * ld, Sse.MoveLowToHigh(t1, t3));
            Sse.Store(d + 3 * ld, Sse.MoveHighToLow(t3, t1));
        }
        for (; k < kc; k++)
            for (int j = 0; j < 4; j++) dst[(long)k * ld + j] = ((float*)rows[j])[k];
    }

    /// <summary>One depth block: tasks over (row block, column block) of C.</summary>
    static void RunBlock<TK>(float* a, float* bp, float* c, GemmShape s, int p0, int kc, int maxThreads, float* bias, bool overwrite, float* aBlock)
        where TK : IGemmMicroKernel
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
        nint aAddr = (nint)a, bpAddr = (nint)bp, cAddr = (nint)c, biasAddr = (nint)bias, aBlockAddr = (nint)aBlock;
        if (threads == 1)
        {
            var apArr = aBlock == null ? ArrayPool<float>.Shared.Rent(MC * KC + 16) : [];
            for (int task = 0; task < rowBlocks * colBlocks; task++) RunTask(task, apArr);
            if (aBlock == null) ArrayPool<float>.Shared.Return(apArr);
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
                float* ap;
                if (aBlockAddr != 0) ap = (float*)aBlockAddr + (long)m0 * kc;  // packed once by PackWhole
                else
                {
                    ap = Align64(apRaw);
                    PackA((float*)aAddr, s, m0, mc, p0, kc, ap, MR);
                }
                float* cc = (float*)cAddr;
                for (int j = j0; j < j1; j++)
                {
                    float* bpanel = (float*)bpAddr + (long)j * kc * NR;
                    int n0 = j * NR, nr = Math.Min(NR, s.N - n0);
                    for (int i = 0; i < mc; i += MR)
                        TK.Run(ap + (long)(i / MR) * kc * MR, bpanel, kc,
                            cc + (long)(m0 + i) * s.CRow + n0, s.CRow, s.Alpha, Math.Min(MR, mc - i), nr,
                            biasAddr == 0 ? null : (float*)biasAddr + m0 + i, overwrite);
                }
            }
            return apArr;
        }
    }

    /// <summary>
    /// Adds alpha * the spilled tile t (rows of <paramref name="w"/> floats) to the valid mr x nr corner
    /// of C, or with <paramref name="overwrite"/> stores it plus bias[row] (bias null: 0).
    /// </summary>
    internal static void AddEdge(float* c, int ldc, float alpha, float* t, int w, int mr, int nr, float* bias, bool overwrite)
    {
        for (int r = 0; r < mr; r++)
        {
            float* cr = c + (long)r * ldc;
            float* tr = t + r * w;
            if (overwrite)
            {
                float b0 = bias == null ? 0f : bias[r];
                for (int j = 0; j < nr; j++) cr[j] = alpha * tr[j] + b0;
            }
            else
                for (int j = 0; j < nr; j++) cr[j] += alpha * tr[j];
        }
    }

    /// <summary>The full-tile store of a spilled tile: C = alpha t + C, or alpha t + bias[row] with overwrite.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    internal static void StoreTile512(float* c, int ldc, float alpha, float* t, int rows, float* bias, bool overwrite)
    {
        var va = Vector512.Create(alpha);
        for (int r = 0; r < rows; r++, c += ldc, t += 32)
        {
            Vector512<float> c0, c1;
            if (overwrite)
            {
                c0 = c1 = Vector512.Create(bias == null ? 0f : bias[r]);
            }
            else
            {
                c0 = Vector512.Load(c);
                c1 = Vector512.Load(c + 16);
            }
            Vector512.FusedMultiplyAdd(va, Vector512.Load(t), c0).Store(c);
            Vector512.FusedMultiplyAdd(va, Vector512.Load(t + 16), c1).Store(c + 16);
        }
    }
}

/// <summary>6 rows x 2 Vector&lt;float&gt; columns: 12 accumulators (AVX2: 16 registers; SSE: 6 x 8).</summary>
internal readonly unsafe struct Micro6x2V : IGemmMicroKernel
{
    public static int MR => 6;
    public static int NR => 2 * Vector<float>.Count;
    public static int MC => 96;

    [MethodImpl(MethodImplOptions.AggressiveOptimization), SkipLocalsInit]
    public static void Run(float* ap, float* bp, int kc, float* c, int ldc, float alpha, int mr, int nr, float* bias, bool overwrite)
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
            GemmCpu.AddEdge(c, ldc, alpha, t, w, mr, nr, bias, overwrite);
            return;
        }
        var va = new Vector<float>(alpha);
        for (int r = 0; r < 6; r++, c += ldc, t += w)
        {
            Vector<float> c0, c1;
            if (overwrite) c0 = c1 = new Vector<float>(bias == null ? 0f : bias[r]);
            else
            {
                c0 = Unsafe.ReadUnaligned<Vector<float>>(c);
                c1 = Unsafe.ReadUnaligned<Vector<float>>(c + vw);
            }
            Unsafe.WriteUnaligned(c, Vector.FusedMultiplyAdd(va, Unsafe.ReadUnaligned<Vector<float>>(t), c0));
            Unsafe.WriteUnaligned(c + vw, Vector.FusedMultiplyAdd(va, Unsafe.ReadUnaligned<Vector<float>>(t + vw), c1));
        }
    }
}

/// <summary>Where the wide micro-kernels find row k (32 floats) of the B panel they multiply.</summary>
internal unsafe interface IBRows
{
    /// <summary>Row k of the panel.</summary>
    float* At(int k);
}

/// <summary>A packed panel: row k at bp + 32 k.</summary>
internal readonly unsafe struct PackedRows(float* bp) : IBRows
{
    readonly float* B = bp;
    public float* At(int k) => B + (long)k * 32;
}

/// <summary>
/// Rows read in place: row k at origin + offsets[k] (the convolution's shifted planes: the panel's
/// first pixel, plus where tap k's shifted plane starts).
/// </summary>
internal readonly unsafe struct PlaneRows(float* origin, int* offsets) : IBRows
{
    readonly float* O = origin;
    readonly int* Off = offsets;
    public float* At(int k) => O + Off[k];
}

/// <summary>12 rows x 32 columns (2 Vector512): 24 accumulators of AVX-512's 32 registers.</summary>
internal readonly unsafe struct Micro12x32 : IRowsMicroKernel
{
    public static int MR => 12;
    public static int NR => 32;
    public static int MC => 144;

    public static void Run(float* ap, float* bp, int kc, float* c, int ldc, float alpha, int mr, int nr, float* bias, bool overwrite) =>
        RunRows(ap, new PackedRows(bp), kc, c, ldc, alpha, mr, nr, bias, overwrite);

    /// <summary>The kernel with B's row k of this panel at <paramref name="b"/>.At(k) (packed, or read in place).</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization), SkipLocalsInit]
    public static void RunRows<TB>(float* ap, TB b, int kc, float* c, int ldc, float alpha, int mr, int nr, float* bias, bool overwrite) where TB : struct, IBRows
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
            float* bp = b.At(k);
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
            GemmCpu.AddEdge(c, ldc, alpha, t, 32, mr, nr, bias, overwrite);
            return;
        }
        GemmCpu.StoreTile512(c, ldc, alpha, t, 12, bias, overwrite);
    }
}

/// <summary>
/// 8 rows x 32 columns (2 Vector512): 16 accumulators, for row counts 12 does not divide (16, 32, 64:
/// the small networks' channels), where 12-row tiles would compute idle rows.
/// </summary>
internal readonly unsafe struct Micro8x32 : IRowsMicroKernel
{
    public static int MR => 8;
    public static int NR => 32;
    public static int MC => 128;

    public static void Run(float* ap, float* bp, int kc, float* c, int ldc, float alpha, int mr, int nr, float* bias, bool overwrite) =>
        RunRows(ap, new PackedRows(bp), kc, c, ldc, alpha, mr, nr, bias, overwrite);

    /// <summary>The kernel with B's row k of this panel at <paramref name="b"/>.At(k) (packed, or read in place).</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization), SkipLocalsInit]
    public static void RunRows<TB>(float* ap, TB b, int kc, float* c, int ldc, float alpha, int mr, int nr, float* bias, bool overwrite) where TB : struct, IBRows
    {
        // As in Micro12x32: the spill tile is allocated before the accumulators are live.
        float* t = stackalloc float[8 * 32];
        Vector512<float> c00 = default, c01 = default, c10 = default, c11 = default, c20 = default, c21 = default;
        Vector512<float> c30 = default, c31 = default, c40 = default, c41 = default, c50 = default, c51 = default;
        Vector512<float> c60 = default, c61 = default, c70 = default, c71 = default;
        for (int k = 0; k < kc; k++)
        {
            float* bp = b.At(k);
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
            ap += 8;
        }
        Vector512.Store(c00, t); Vector512.Store(c01, t + 16); Vector512.Store(c10, t + 32); Vector512.Store(c11, t + 48);
        Vector512.Store(c20, t + 64); Vector512.Store(c21, t + 80); Vector512.Store(c30, t + 96); Vector512.Store(c31, t + 112);
        Vector512.Store(c40, t + 128); Vector512.Store(c41, t + 144); Vector512.Store(c50, t + 160); Vector512.Store(c51, t + 176);
        Vector512.Store(c60, t + 192); Vector512.Store(c61, t + 208); Vector512.Store(c70, t + 224); Vector512.Store(c71, t + 240);
        if (mr < 8 || nr < 32)
        {
            GemmCpu.AddEdge(c, ldc, alpha, t, 32, mr, nr, bias, overwrite);
            return;
        }
        GemmCpu.StoreTile512(c, ldc, alpha, t, 8, bias, overwrite);
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
            RunGemm(a, b, c, s with { Alpha = 1f, Beta = 0f }, GemmVariant.Auto);
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
        float alpha = 1f, float beta = 0f, GemmVariant variant = GemmVariant.Auto)
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
        if (variant == GemmVariant.Auto) variant = GemmKernels.Choose(device, s.M, s.N, outBatches);
        if (variant == GemmVariant.Tf32)
        {
            RunTf32(device, k, a, b, c, s, outBatches, GemmKernels.Tf32SwapADiagnostic ? 1 : 0);
            return;
        }
        if (variant == GemmVariant.Naive)
        {
            long total = (long)outBatches * s.M * s.N;
            int threads = device.LaunchThreads(total);
            k.Naive(threads, a, b, c, s, threads);
            return;
        }
        var (kernel, tile) = variant switch
        {
            GemmVariant.Tiled128 => (k.Tiled128, GemmKernels.Tile128),
            GemmVariant.Tiled128V => (k.Tiled128V, GemmKernels.Tile128),
            _ => (k.Tiled, GemmKernels.Tile),
        };
        LaunchTiles(kernel, tile, a, b, c, s, outBatches);
    }

    /// <summary>
    /// Launches a tiled GEMM kernel (grid x over N, y over M, z over the batch), in slices where a
    /// grid dimension would pass CUDA's limits: y and z at most <see cref="GemmKernels.MaxGridYZ"/>
    /// groups, each slice addressing offset views of A, B and C (M above 65,535 tiles, e.g. 4.2M rows
    /// at tile 64, failed on CUDA only).
    /// </summary>
    static void LaunchTiles(Action<KernelConfig, ArrayView<float>, ArrayView<float>, ArrayView<float>, GemmShape> kernel, int tile,
        ArrayView<float> a, ArrayView<float> b, ArrayView<float> c, GemmShape s, int outBatches)
    {
        int maxYZ = GemmKernels.MaxGridYZ;
        long rowsPerSlice = (long)maxYZ * tile;
        var group = new Index3D(GemmKernels.GroupSize, 1, 1);
        for (int z0 = 0; z0 < outBatches; z0 += maxYZ)
        {
            int nz = Math.Min(maxYZ, outBatches - z0);
            for (long m0 = 0; m0 < s.M; m0 += rowsPerSlice)
            {
                int nm = (int)Math.Min(rowsPerSlice, s.M - m0);
                var grid = new Index3D((s.N + tile - 1) / tile, (nm + tile - 1) / tile, nz);
                if (z0 == 0 && nz == outBatches && m0 == 0 && nm == s.M)
                {
                    kernel(new KernelConfig(grid, group), a, b, c, s);
                    return;
                }
                var sa = a.SubView((long)z0 * s.ABatch + m0 * s.ARow);
                var sb = b.SubView((long)z0 * s.BBatch);
                var sc = c.SubView((long)z0 * s.CBatch + m0 * s.CRow);
                kernel(new KernelConfig(grid, group), sa, sb, sc, s with { M = nm, Batch = s.ReduceBatch != 0 ? s.Batch : nz });
            }
        }
    }

    /// <summary>
    /// Variant 4 (TF32 tensor cores, CUDA only). <paramref name="swapA"/> != 0 swaps the A fragment's
    /// middle registers: a diagnostic for the verify suite's first GPU runs, never the engine's path.
    /// </summary>
    internal static void RunTf32(EdmDevice device, GemmKernels k, ArrayView<float> a, ArrayView<float> b, ArrayView<float> c, GemmShape s, int outBatches, int swapA)
    {
        var tf32 = k.Tf32;
        LaunchTiles((config, va, vb, vc, vs) => tf32(config, va, vb, vc, vs, swapA), GemmKernels.Tile128, a, b, c, s, outBatches);
    }

    /// <summary>Host-pointer GEMM for other CPU fast paths (conv): serial when maxThreads is 1.</summary>
    internal static unsafe void GemmHost(float* a, float* b, float* c, in GemmShape s, int maxThreads, float* bias = null) =>
        GemmCpu.Run(a, b, c, s, maxThreads, bias);
}

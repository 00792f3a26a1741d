// The weight gradient of a "same" convolution (stride 1, output the size of the input) on the CPU,
// without an im2col matrix and without packing:
//
//   dW[co, r] = sum_b sum_p dy[b, co, p] x_r[b, p],   r = (ci, ky, kx),  p = oy W + ox,
//
// where x_r is the plane x[b, ci] shifted by (ky - pt) rows and (kx - pl) columns, zero where the
// shift leaves the image. Both operands are contiguous along p, the reduction axis, so the product
// is a block of dot products: a register tile of MR output channels x NR taps, each accumulator a
// vector of partial sums over p (lanes), reduced across lanes once per block. The shifted planes
// are read in place from a padded copy of x: per kx one copy of every plane shifted by that tap's
// columns (zeros where it leaves a row) between zero halos of whole rows (the row shifts that leave
// the image), so a tap's plane is a contiguous, vector-aligned read when W is a multiple of the
// vector width. That copy is KW times x, against KH KW times x for im2col, and the GEMM's packing of
// a P-contiguous operand (a transpose) disappears.
//
// Cache blocking: a task (tap block) walks a group of channel blocks in passes of at most 512 pixels
// (whole small images together, or pieces of a large one), so the tap block's x rows of a pass stay
// in L1 while each channel block's dy rows stream from L2; the blocks' accumulators wait in a small
// tile buffer between passes. (One pass over the whole chunk per block read 160 KB per tile from L2
// at 16x16: the weight gradient ran at 50-55% of peak while the forward reached 80-90%.)
//
// Determinism: images are taken in chunks whose size depends on the shape alone; within a chunk one
// task owns each (tap block, channel block) and sums the chunk's passes in order; chunks are added
// in order. The result is the same bits whatever the thread count.
// Used when the CPU has Vector512 or Vector256 with FMA and P is a multiple of the vector width;
// otherwise Ops falls back to im2col + GEMM.
using System.Buffers;
using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;

namespace Edm.Kernels;

internal static unsafe class SameConvWeightGrad
{
    static readonly bool Wide = GemmCpu.Wide;
    static readonly bool Narrow = !Wide && Vector256.IsHardwareAccelerated && Fma.IsSupported;

    /// <summary>Register tile: output channels (MR) x taps (NR) x lanes.</summary>
    static int MR => Wide ? 4 : 2;
    const int NR = 6;
    static int Lanes => Wide ? 16 : 8;

    /// <summary>Largest padded copy of x (floats) held at once: about 4 MB, so a chunk's planes stay in the last-level cache.</summary>
    const int PlaneBudget = 1 << 20;
    /// <summary>Pixels summed in registers per block, at most (images per chunk = this / pixels): amortises the lane reduction.</summary>
    const int ChunkPixels = 4096;
    /// <summary>dy floats of a channel group (512 KB: L2).</summary>
    const int GroupFloats = 1 << 17;
    /// <summary>
    /// Pixels of one pass over a channel group (per image piece, or images of at most this size
    /// together): the tap block's x rows of a pass (NR x this x 4 bytes, 12 KB) stay in L1 while the
    /// group's channel blocks stream their dy rows from L2; the accumulators of each block wait in a
    /// small tile buffer between passes.
    /// </summary>
    const int PassPixels = 512;

    /// <summary>Whether this path serves the shape on this CPU.</summary>
    public static bool Supported(ConvShape s) => (Wide || Narrow) && s.Same && !s.Pointwise && s.Pixels % Lanes == 0;

    /// <summary>dW (Cout, Cin*kh*kw) = (or += when <paramref name="accumulate"/>) the weight gradient; see the file header.</summary>
    public static void Run(float* x, float* dy, float* dw, ConvShape s, bool accumulate)
    {
        int p = s.Pixels, w = s.W, lanes = Lanes;
        var (halo, len) = ShiftedPlanes.Layout(s);
        long perImage = (long)s.KW * s.Cin * len;
        int chunk = (int)Math.Clamp(Math.Min(ChunkPixels / p, PlaneBudget / perImage), 1, s.Batch);
        int kdim = s.KDim, mr = MR;
        int rBlocks = (kdim + NR - 1) / NR, cBlocks = (s.Cout + mr - 1) / mr;
        // Channel blocks in groups whose dy rows (group x MR rows x chunk images x p) stay in L2 while
        // a task's tap blocks go by; each tap block's x rows (NR x chunk planes) stay in L1 across the group.
        int group = Math.Max(1, GroupFloats / (mr * chunk * p));
        if (!accumulate) new Span<float>(dw, s.Cout * kdim).Clear();
        int padLen = (int)(chunk * perImage);
        float[] pad = ArrayPool<float>.Shared.Rent(padLen + 16);
        try
        {
            fixed (float* raw = pad)
            {
                float* pp = ShiftedPlanes.Align64(raw);
                nint apad = (nint)pp, ax = (nint)x, ady = (nint)dy, adw = (nint)dw;
                for (int b0 = 0; b0 < s.Batch; b0 += chunk)
                {
                    int n = Math.Min(chunk, s.Batch - b0);
                    CpuParallel.For(n * s.KW * s.Cin, (start, count) =>
                    {
                        for (int q = start; q < start + count; q++) ShiftedPlanes.Fill((float*)ax, (float*)apad, s, b0, q, halo, len);
                    }, minChunk: Math.Max(1, 8192 / p));
                    // Passes over the chunk: whole images of at most PassPixels together, or pieces of
                    // PassPixels of one image (PassPixels is a multiple of the lanes, and so is p).
                    int passImages = Math.Max(1, Math.Min(n, PassPixels / p)), piece = Math.Min(p, PassPixels);
                    int tileFloats = MR * NR * lanes;
                    CpuParallel.For(rBlocks, (start, count) =>
                    {
                        float** xr = stackalloc float*[NR];
                        float[] tilesArr = ArrayPool<float>.Shared.Rent(group * tileFloats + 16);
                        try
                        {
                            fixed (float* tilesRaw = tilesArr)
                            {
                                float* tiles = ShiftedPlanes.Align64(tilesRaw);
                                for (int cg = 0; cg < cBlocks; cg += group)
                                {
                                    int cEnd = Math.Min(cBlocks, cg + group);
                                    for (int rb = start; rb < start + count; rb++)
                                    {
                                        int r0 = rb * NR, nr = Math.Min(NR, kdim - r0);
                                        for (int j = 0; j < NR; j++)
                                        {
                                            int r = Math.Min(r0 + j, kdim - 1);             // a missing tap repeats the last (result discarded)
                                            int ci = r / (s.KH * s.KW), ky = r / s.KW % s.KH, kx = r % s.KW;
                                            xr[j] = (float*)apad + ((long)kx * s.Cin + ci) * len + halo + (ky - s.PadT) * w;
                                        }
                                        long aImg = (long)s.Cout * p;
                                        bool first = true;
                                        for (int i0 = 0; i0 < n; i0 += passImages)
                                        {
                                            int ni = Math.Min(passImages, n - i0);
                                            for (int q0 = 0; q0 < p; q0 += piece)
                                            {
                                                int pq = Math.Min(piece, p - q0);
                                                long xo = i0 * perImage + q0;
                                                for (int cb = cg; cb < cEnd; cb++)
                                                {
                                                    int co0 = cb * mr, m = Math.Min(mr, s.Cout - co0);
                                                    float* a = (float*)ady + ((long)(b0 + i0) * s.Cout + co0) * p + q0;
                                                    float* tile = tiles + (cb - cg) * tileFloats;
                                                    // A missing channel row repeats the last one (result discarded).
                                                    if (Wide)
                                                        Block512(a, a + Math.Min(1, m - 1) * p, a + Math.Min(2, m - 1) * p, a + Math.Min(3, m - 1) * p,
                                                            xr[0] + xo, xr[1] + xo, xr[2] + xo, xr[3] + xo, xr[4] + xo, xr[5] + xo, ni, aImg, perImage, pq, tile, first);
                                                    else
                                                        Block256(a, a + Math.Min(1, m - 1) * p, xr[0] + xo, xr[1] + xo, xr[2] + xo, xr[3] + xo, xr[4] + xo, xr[5] + xo,
                                                            ni, aImg, perImage, pq, tile, first);
                                                }
                                                first = false;
                                            }
                                        }
                                        for (int cb = cg; cb < cEnd; cb++)
                                        {
                                            int co0 = cb * mr, m = Math.Min(mr, s.Cout - co0);
                                            float* tile = tiles + (cb - cg) * tileFloats;
                                            float* dst = (float*)adw + (long)co0 * kdim + r0;
                                            for (int i = 0; i < m; i++)
                                                for (int j = 0; j < nr; j++)
                                                    dst[(long)i * kdim + j] += Wide
                                                        ? Vector512.Sum(Vector512.Load(tile + (i * NR + j) * lanes))
                                                        : Vector256.Sum(Vector256.Load(tile + (i * NR + j) * lanes));
                                        }
                                    }
                                }
                            }
                        }
                        finally { ArrayPool<float>.Shared.Return(tilesArr); }
                    }, minChunk: 1);
                }
            }
        }
        finally { ArrayPool<float>.Shared.Return(pad); }
    }

    /// <summary>4 channels x 6 taps of 16-lane partial sums over <paramref name="images"/> images of p pixels, stored to tile (24 x 16).</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization), SkipLocalsInit]
    static void Block512(float* a0, float* a1, float* a2, float* a3, float* x0, float* x1, float* x2, float* x3, float* x4, float* x5,
        int images, long aImg, long xImg, int p, float* tile, bool first)
    {
        Vector512<float> c00 = default, c01 = default, c02 = default, c03 = default, c04 = default, c05 = default;
        Vector512<float> c10 = default, c11 = default, c12 = default, c13 = default, c14 = default, c15 = default;
        Vector512<float> c20 = default, c21 = default, c22 = default, c23 = default, c24 = default, c25 = default;
        Vector512<float> c30 = default, c31 = default, c32 = default, c33 = default, c34 = default, c35 = default;
        if (!first)
        {
            // The previous passes' partial sums of this block.
            c00 = Vector512.Load(tile); c01 = Vector512.Load(tile + 16); c02 = Vector512.Load(tile + 32);
            c03 = Vector512.Load(tile + 48); c04 = Vector512.Load(tile + 64); c05 = Vector512.Load(tile + 80);
            c10 = Vector512.Load(tile + 96); c11 = Vector512.Load(tile + 112); c12 = Vector512.Load(tile + 128);
            c13 = Vector512.Load(tile + 144); c14 = Vector512.Load(tile + 160); c15 = Vector512.Load(tile + 176);
            c20 = Vector512.Load(tile + 192); c21 = Vector512.Load(tile + 208); c22 = Vector512.Load(tile + 224);
            c23 = Vector512.Load(tile + 240); c24 = Vector512.Load(tile + 256); c25 = Vector512.Load(tile + 272);
            c30 = Vector512.Load(tile + 288); c31 = Vector512.Load(tile + 304); c32 = Vector512.Load(tile + 320);
            c33 = Vector512.Load(tile + 336); c34 = Vector512.Load(tile + 352); c35 = Vector512.Load(tile + 368);
        }
        for (int i = 0; i < images; i++)
        {
            for (int q = 0; q < p; q += 16)
            {
                var v0 = Vector512.Load(a0 + q);
                var v1 = Vector512.Load(a1 + q);
                var v2 = Vector512.Load(a2 + q);
                var v3 = Vector512.Load(a3 + q);
                var b = Vector512.Load(x0 + q);
                c00 = Vector512.FusedMultiplyAdd(v0, b, c00); c10 = Vector512.FusedMultiplyAdd(v1, b, c10);
                c20 = Vector512.FusedMultiplyAdd(v2, b, c20); c30 = Vector512.FusedMultiplyAdd(v3, b, c30);
                b = Vector512.Load(x1 + q);
                c01 = Vector512.FusedMultiplyAdd(v0, b, c01); c11 = Vector512.FusedMultiplyAdd(v1, b, c11);
                c21 = Vector512.FusedMultiplyAdd(v2, b, c21); c31 = Vector512.FusedMultiplyAdd(v3, b, c31);
                b = Vector512.Load(x2 + q);
                c02 = Vector512.FusedMultiplyAdd(v0, b, c02); c12 = Vector512.FusedMultiplyAdd(v1, b, c12);
                c22 = Vector512.FusedMultiplyAdd(v2, b, c22); c32 = Vector512.FusedMultiplyAdd(v3, b, c32);
                b = Vector512.Load(x3 + q);
                c03 = Vector512.FusedMultiplyAdd(v0, b, c03); c13 = Vector512.FusedMultiplyAdd(v1, b, c13);
                c23 = Vector512.FusedMultiplyAdd(v2, b, c23); c33 = Vector512.FusedMultiplyAdd(v3, b, c33);
                b = Vector512.Load(x4 + q);
                c04 = Vector512.FusedMultiplyAdd(v0, b, c04); c14 = Vector512.FusedMultiplyAdd(v1, b, c14);
                c24 = Vector512.FusedMultiplyAdd(v2, b, c24); c34 = Vector512.FusedMultiplyAdd(v3, b, c34);
                b = Vector512.Load(x5 + q);
                c05 = Vector512.FusedMultiplyAdd(v0, b, c05); c15 = Vector512.FusedMultiplyAdd(v1, b, c15);
                c25 = Vector512.FusedMultiplyAdd(v2, b, c25); c35 = Vector512.FusedMultiplyAdd(v3, b, c35);
            }
            a0 += aImg; a1 += aImg; a2 += aImg; a3 += aImg;
            x0 += xImg; x1 += xImg; x2 += xImg; x3 += xImg; x4 += xImg; x5 += xImg;
        }
        Vector512.Store(c00, tile); Vector512.Store(c01, tile + 16); Vector512.Store(c02, tile + 32);
        Vector512.Store(c03, tile + 48); Vector512.Store(c04, tile + 64); Vector512.Store(c05, tile + 80);
        Vector512.Store(c10, tile + 96); Vector512.Store(c11, tile + 112); Vector512.Store(c12, tile + 128);
        Vector512.Store(c13, tile + 144); Vector512.Store(c14, tile + 160); Vector512.Store(c15, tile + 176);
        Vector512.Store(c20, tile + 192); Vector512.Store(c21, tile + 208); Vector512.Store(c22, tile + 224);
        Vector512.Store(c23, tile + 240); Vector512.Store(c24, tile + 256); Vector512.Store(c25, tile + 272);
        Vector512.Store(c30, tile + 288); Vector512.Store(c31, tile + 304); Vector512.Store(c32, tile + 320);
        Vector512.Store(c33, tile + 336); Vector512.Store(c34, tile + 352); Vector512.Store(c35, tile + 368);
    }

    /// <summary>2 channels x 6 taps of 8-lane partial sums (AVX2: 12 accumulators of 16 registers), stored to tile (12 x 8).</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization), SkipLocalsInit]
    static void Block256(float* a0, float* a1, float* x0, float* x1, float* x2, float* x3, float* x4, float* x5,
        int images, long aImg, long xImg, int p, float* tile, bool first)
    {
        Vector256<float> c00 = default, c01 = default, c02 = default, c03 = default, c04 = default, c05 = default;
        Vector256<float> c10 = default, c11 = default, c12 = default, c13 = default, c14 = default, c15 = default;
        if (!first)
        {
            c00 = Vector256.Load(tile); c01 = Vector256.Load(tile + 8); c02 = Vector256.Load(tile + 16);
            c03 = Vector256.Load(tile + 24); c04 = Vector256.Load(tile + 32); c05 = Vector256.Load(tile + 40);
            c10 = Vector256.Load(tile + 48); c11 = Vector256.Load(tile + 56); c12 = Vector256.Load(tile + 64);
            c13 = Vector256.Load(tile + 72); c14 = Vector256.Load(tile + 80); c15 = Vector256.Load(tile + 88);
        }
        for (int i = 0; i < images; i++)
        {
            for (int q = 0; q < p; q += 8)
            {
                var v0 = Vector256.Load(a0 + q);
                var v1 = Vector256.Load(a1 + q);
                var b = Vector256.Load(x0 + q);
                c00 = Vector256.FusedMultiplyAdd(v0, b, c00); c10 = Vector256.FusedMultiplyAdd(v1, b, c10);
                b = Vector256.Load(x1 + q);
                c01 = Vector256.FusedMultiplyAdd(v0, b, c01); c11 = Vector256.FusedMultiplyAdd(v1, b, c11);
                b = Vector256.Load(x2 + q);
                c02 = Vector256.FusedMultiplyAdd(v0, b, c02); c12 = Vector256.FusedMultiplyAdd(v1, b, c12);
                b = Vector256.Load(x3 + q);
                c03 = Vector256.FusedMultiplyAdd(v0, b, c03); c13 = Vector256.FusedMultiplyAdd(v1, b, c13);
                b = Vector256.Load(x4 + q);
                c04 = Vector256.FusedMultiplyAdd(v0, b, c04); c14 = Vector256.FusedMultiplyAdd(v1, b, c14);
                b = Vector256.Load(x5 + q);
                c05 = Vector256.FusedMultiplyAdd(v0, b, c05); c15 = Vector256.FusedMultiplyAdd(v1, b, c15);
            }
            a0 += aImg; a1 += aImg;
            x0 += xImg; x1 += xImg; x2 += xImg; x3 += xImg; x4 += xImg; x5 += xImg;
        }
        Vector256.Store(c00, tile); Vector256.Store(c01, tile + 8); Vector256.Store(c02, tile + 16);
        Vector256.Store(c03, tile + 24); Vector256.Store(c04, tile + 32); Vector256.Store(c05, tile + 40);
        Vector256.Store(c10, tile + 48); Vector256.Store(c11, tile + 56); Vector256.Store(c12, tile + 64);
        Vector256.Store(c13, tile + 72); Vector256.Store(c14, tile + 80); Vector256.Store(c15, tile + 88);
    }
}

/// <summary>
/// The padded, column-shifted copies of x that the CPU "same" convolution reads its taps from. Per
/// image, kx and input channel one plane: value [oy, ox] = x[ci, oy, ox + dx] with dx = kx - pl, 0
/// where ox + dx leaves the row (exact zeros, written, so an inf or NaN elsewhere in x never meets
/// them), between zero halos of whole rows (the row shifts (ky - pt) W that leave the image). Tap
/// (ci, ky, kx)'s shifted plane is then the contiguous run at halo + (ky - pt) W of plane (kx, ci).
/// Halos are rounded to 16 floats, so that every plane, and every row shift of it when W is a
/// multiple of 16, starts on a 64-byte boundary, and planes are 16 floats apart beyond that (a skew:
/// whole vectors only would put the planes of a tap block a multiple of 4 KB apart, in the same L1 sets).
/// Plane q = (i kw + kx) cin + ci of a buffer starts at q len.
/// </summary>
internal static unsafe class ShiftedPlanes
{
    /// <summary>Zero floats before each plane (and at least as many after it), and the stride between planes.</summary>
    public static (int Halo, int Len) Layout(ConvShape s)
    {
        int halo = (Math.Max(s.PadT, s.KH - 1 - s.PadT) * s.W + 15) / 16 * 16;
        return (halo, s.Pixels + 2 * halo + 16);
    }

    /// <summary>The first 64-byte boundary at or after <paramref name="p"/> (buffers are rented with 16 floats to spare).</summary>
    public static float* Align64(float* p) => (float*)(((nint)p + 63) & ~(nint)63);

    /// <summary>dst[0, n) = src[0, n) in vector loads and stores (Buffer.Memmove was slower here, at 1-4 KB planes).</summary>
    static void Copy(float* src, float* dst, int n)
    {
        int i = 0;
        if (Vector512.IsHardwareAccelerated)
            for (; i + 16 <= n; i += 16) Vector512.Store(Vector512.Load(src + i), dst + i);
        for (; i + 8 <= n; i += 8) Vector256.Store(Vector256.Load(src + i), dst + i);
        for (; i < n; i++) dst[i] = src[i];
    }

    /// <summary>Writes plane q = (i, kx, ci) of image b0 + i of x (B, Cin, H, W), halos included, into [q len, q len + len) of <paramref name="pad"/>.</summary>
    public static void Fill(float* x, float* pad, ConvShape s, int b0, int q, int halo, int len)
    {
        int ci = q % s.Cin, kx = q / s.Cin % s.KW, i = q / (s.Cin * s.KW);
        int w = s.W, dx = kx - s.PadL;
        float* dst = pad + (long)q * len;
        new Span<float>(dst, halo).Clear();
        new Span<float>(dst + halo + s.Pixels, len - halo - s.Pixels).Clear();
        dst += halo;
        float* src = x + ((long)(b0 + i) * s.Cin + ci) * s.Pixels;
        int p = s.Pixels;
        // One flat copy shifted by dx, then the |dx| columns per row that took a neighbouring row's
        // values are zeroed (per-row copies cost more than the data at 4x4 and 8x8 planes).
        var plane = new Span<float>(dst, p);
        int a = Math.Min(Math.Abs(dx), p);
        if (dx >= 0)
        {
            Copy(src + a, dst, p - a);
            plane[(p - a)..].Clear();
        }
        else
        {
            Copy(src, dst + a, p - a);
            plane[..a].Clear();
        }
        if (dx == 0) return;
        int c0 = dx > 0 ? w - Math.Min(dx, w) : 0, nz = Math.Min(Math.Abs(dx), w);
        for (int oy = 0; oy < s.H; oy++)
            for (int c = 0; c < nz; c++) dst[oy * w + c0 + c] = 0f;
    }
}

// Implicit-GEMM convolution for the kernel path (GPUs; the CPU accelerator with CpuFastPaths off):
// the three products of Conv2d.cs as GEMMs whose im2col operand is gathered from x as the tiles are
// loaded, so no col matrix is written or read (docs/kernels.md, "Implicit-GEMM convolution").
//   forward:        y (Cout, B*P) = W (Cout, KDim) col (KDim, B*P), the bias added in the epilogue;
//                   one launch over all images (N = B*P columns), any stride, padding and kernel.
//   backward-data:  stride 1: dx = the forward of dy with W flipped and transposed
//                   (W'[ci, co, ky, kx] = W[co, ci, kh-1-ky, kw-1-kx], padding kh-1-pt, kw-1-pl).
//   backward-weight: dW (Cout, KDim) = dy (Cout, B*P) col^T (B*P, KDim), the B*P reduction split
//                   into chunks fixed by the shape alone (grid z), each chunk's partial summed in
//                   order by Conv2dKernels' SumBatch: deterministic, and a GPU gets enough groups.
// The tiles, shared layout, double buffering and 128-bit shared loads are GEMM variant 5's
// (Gemm.cs); only the loads of the gathered operand and the epilogue differ. The divisions of a
// depth index into (ci, ky, kx) are by kh*kw and kw, passed as specialised values, so each kernel
// geometry compiles once with constant divisors (DDPM++ has two: 3x3 and 1x1).
using ILGPU;
using ILGPU.Runtime;

namespace Edm.Kernels;

/// <summary>The implicit-GEMM convolution kernels, loaded once per device.</summary>
public sealed class ConvImplicitKernels : IKernelFamily<ConvImplicitKernels>
{
    const int Tile = GemmKernels.Tile128, TileK = GemmKernels.Tile128K;
    // Shared tiles sized for the wider (TF32) pitch, so one allocation serves both accumulators.
    const int SharedQuads = 2 * GemmKernels.BufferTf32 / 4;

    /// <summary>Groups per launch the weight-gradient split aims for (two per multiprocessor of a 132-SM GPU; a constant, so the split depends on the shape alone).</summary>
    public const int WeightGradTargetGroups = 264;

    internal readonly Action<KernelConfig, ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>, ConvShape, int, SpecializedValue<int>, SpecializedValue<int>> Forward;
    internal readonly Action<KernelConfig, ArrayView<float>, ArrayView<float>, ArrayView<float>, ConvShape, int, SpecializedValue<int>, SpecializedValue<int>> WeightGrad;
    internal readonly Action<Index1D, ArrayView<float>, ArrayView<float>, ConvShape, int> FlipWeight;
    readonly Accelerator _acc;
    Action<KernelConfig, ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>, ConvShape, int, SpecializedValue<int>, SpecializedValue<int>>? _forwardTf32;
    Action<KernelConfig, ArrayView<float>, ArrayView<float>, ArrayView<float>, ConvShape, int, SpecializedValue<int>, SpecializedValue<int>>? _weightGradTf32;

    ConvImplicitKernels(Accelerator acc)
    {
        _acc = acc;
        Forward = acc.LoadStreamKernel<ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>, ConvShape, int, SpecializedValue<int>, SpecializedValue<int>>(ForwardKernel<GemmAcc8x8>);
        WeightGrad = acc.LoadStreamKernel<ArrayView<float>, ArrayView<float>, ArrayView<float>, ConvShape, int, SpecializedValue<int>, SpecializedValue<int>>(WeightGradKernel<GemmAcc8x8>);
        FlipWeight = acc.LoadAutoGroupedStreamKernel<Index1D, ArrayView<float>, ArrayView<float>, ConvShape, int>(FlipWeightKernel);
    }

    /// <summary>The forward on TF32 tensor cores (GEMM variant 4's warp tiles), loaded on first use: CUDA, or the CPU accelerator's emulation.</summary>
    internal Action<KernelConfig, ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>, ConvShape, int, SpecializedValue<int>, SpecializedValue<int>> ForwardTf32 =>
        _forwardTf32 ??= _acc.LoadStreamKernel<ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>, ConvShape, int, SpecializedValue<int>, SpecializedValue<int>>(ForwardKernel<GemmAccTf32>);

    /// <summary>The weight gradient on TF32 tensor cores, loaded on first use.</summary>
    internal Action<KernelConfig, ArrayView<float>, ArrayView<float>, ArrayView<float>, ConvShape, int, SpecializedValue<int>, SpecializedValue<int>> WeightGradTf32 =>
        _weightGradTf32 ??= _acc.LoadStreamKernel<ArrayView<float>, ArrayView<float>, ArrayView<float>, ConvShape, int, SpecializedValue<int>, SpecializedValue<int>>(WeightGradKernel<GemmAccTf32>);

    /// <inheritdoc/>
    public static ConvImplicitKernels Load(EdmDevice device) => new(device.Accelerator);

    /// <summary>
    /// y (B, Cout, Ho, Wo) = W col + bias, one 128x128 tile of (Cout, B*P) per group of 256; grid
    /// (ceil(B*P/128), ceil(Cout/128)). A = W rows (GemmSlots along K); B gathered: each thread loads
    /// column n = n0 + (tid &amp; 127) (its image and output pixel decoded once) at depths
    /// kb, kb+2, kb+4, kb+6 of every tile (kb = tid / 128), zero outside the image.
    /// <paramref name="khw"/> = kh*kw and <paramref name="kw"/> are the specialised divisors.
    /// </summary>
    static void ForwardKernel<TAcc>(ArrayView<float> w, ArrayView<float> x, ArrayView<float> bias, ArrayView<float> y, ConvShape s, int hasBias,
        SpecializedValue<int> khw, SpecializedValue<int> kw) where TAcc : struct, ITileAcc
    {
        var sa4 = SharedMemory.Allocate<Float4>(SharedQuads);
        var sb4 = SharedMemory.Allocate<Float4>(SharedQuads);
        var sa = sa4.Cast<float>();
        var sb = sb4.Cast<float>();
        var acc = default(TAcc);
        int pitch = acc.Pitch, buffer = TileK * pitch;
        bool tf32 = acc.Tf32;
        int tid = Group.IdxX;
        int n0 = Grid.IdxX * Tile, m0 = Grid.IdxY * Tile;
        int kdim = s.Cin * khw, pixels = s.Ho * s.Wo, total = s.Batch * pixels, plane = s.H * s.W;
        var la = GemmSlots.Make(tid, m0, s.Cout, kdim, 1, contiguousMN: false, pitch);
        var lb = new ConvColumnSlot(tid, n0, total, pixels, s, pitch);
        var xv = x.SubView((long)lb.Image * s.Cin * plane);
        int tiles = (kdim + TileK - 1) / TileK;
        float pa0, pa1, pa2, pa3, pb0, pb1, pb2, pb3;
        la.Load(w, 0, kdim, out pa0, out pa1, out pa2, out pa3);
        lb.Load(xv, 0, kdim, s, plane, khw, kw, out pb0, out pb1, out pb2, out pb3);
        la.Store(sa, 0, pa0, pa1, pa2, pa3, tf32);
        lb.Store(sb, 0, pb0, pb1, pb2, pb3, tf32);
        Group.Barrier();
        for (int t = 0; t < tiles; t++)
        {
            int cur = (t & 1) * buffer;
            bool more = t + 1 < tiles;
            if (more)
            {
                int k0 = (t + 1) * TileK;
                la.Load(w, k0, kdim, out pa0, out pa1, out pa2, out pa3);
                lb.Load(xv, k0, kdim, s, plane, khw, kw, out pb0, out pb1, out pb2, out pb3);
            }
            acc.Tile(sa4, sb4, sa, sb, cur, tid, 0);
            if (more)
            {
                la.Store(sa, buffer - cur, pa0, pa1, pa2, pa3, tf32);
                lb.Store(sb, buffer - cur, pb0, pb1, pb2, pb3, tf32);
            }
            Group.Barrier();
        }
        acc.StoreConv(y, bias, hasBias, s.Cout, pixels, total, m0, n0, tid);
    }

    /// <summary>
    /// One chunk (grid z) of dW = dy col^T: C (Cout, KDim) tile per group, the depth running over
    /// output pixels n of all images from z*<paramref name="chunk"/>; grid (ceil(KDim/128),
    /// ceil(Cout/128), chunks). Both operands are loaded along the depth: thread tid takes pixel
    /// tid &amp; 7 of each tile (decoded once per tile, shared by its A and B loads), A rows
    /// (tid / 8) + 32r of dy and B columns (tid / 8) + 32r of col (their (ci, ky, kx) decoded once
    /// per launch). partial[z] (Cout, KDim) is overwritten.
    /// </summary>
    static void WeightGradKernel<TAcc>(ArrayView<float> dy, ArrayView<float> x, ArrayView<float> partial, ConvShape s, int chunk,
        SpecializedValue<int> khw, SpecializedValue<int> kw) where TAcc : struct, ITileAcc
    {
        var sa4 = SharedMemory.Allocate<Float4>(SharedQuads);
        var sb4 = SharedMemory.Allocate<Float4>(SharedQuads);
        var sa = sa4.Cast<float>();
        var sb = sb4.Cast<float>();
        var acc = default(TAcc);
        int pitch = acc.Pitch, buffer = TileK * pitch;
        bool tf32 = acc.Tf32;
        int tid = Group.IdxX;
        int n0 = Grid.IdxX * Tile, m0 = Grid.IdxY * Tile;
        int kdim = s.Cin * khw, pixels = s.Ho * s.Wo, plane = s.H * s.W;
        int start = Grid.IdxZ * chunk;
        int end = IntrinsicMath.Min(s.Batch * pixels, start + chunk);
        var rows = new ConvRowSlots(tid, m0, s.Cout, pixels);
        var cols = new ConvDepthSlots(tid, n0, kdim, plane, s.W, khw, kw);
        int lane = tid & 7;
        int shared = lane * pitch + (tid >> 3);
        int tiles = (end - start + TileK - 1) / TileK;
        float pa0, pa1, pa2, pa3, pb0, pb1, pb2, pb3;
        LoadPixel(dy, x, s, rows, cols, start + lane, end, pixels, plane, out pa0, out pa1, out pa2, out pa3, out pb0, out pb1, out pb2, out pb3);
        StoreSlots(sa, sb, shared, pa0, pa1, pa2, pa3, pb0, pb1, pb2, pb3, tf32);
        Group.Barrier();
        for (int t = 0; t < tiles; t++)
        {
            int cur = (t & 1) * buffer;
            bool more = t + 1 < tiles;
            if (more)
                LoadPixel(dy, x, s, rows, cols, start + (t + 1) * TileK + lane, end, pixels, plane, out pa0, out pa1, out pa2, out pa3, out pb0, out pb1, out pb2, out pb3);
            acc.Tile(sa4, sb4, sa, sb, cur, tid, 0);
            if (more)
                StoreSlots(sa, sb, buffer - cur + shared, pa0, pa1, pa2, pa3, pb0, pb1, pb2, pb3, tf32);
            Group.Barrier();
        }
        var shape = new GemmShape(s.Cout, kdim, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0, kdim, 1f, 0f);
        acc.StoreTile(partial, shape, Grid.IdxZ * s.Cout * kdim, m0, n0, tid);
    }

    /// <summary>The weight-gradient loads of one pixel n: dy at four rows, x at four depth columns (zero past <paramref name="end"/>, outside the image or the matrix).</summary>
    static void LoadPixel(ArrayView<float> dy, ArrayView<float> x, ConvShape s, ConvRowSlots rows, ConvDepthSlots cols, int n, int end, int pixels, int plane,
        out float a0, out float a1, out float a2, out float a3, out float b0, out float b1, out float b2, out float b3)
    {
        bool inside = n < end;
        int nn = inside ? n : 0;
        int img = nn / pixels, p = nn - img * pixels;
        int oy = p / s.Wo, ox = p - oy * s.Wo;
        var dyv = dy.SubView((long)img * s.Cout * pixels + p);
        a0 = rows.Load(dyv, 0, inside);
        a1 = rows.Load(dyv, 1, inside);
        a2 = rows.Load(dyv, 2, inside);
        a3 = rows.Load(dyv, 3, inside);
        var xv = x.SubView((long)img * s.Cin * plane);
        int iy0 = oy * s.SH - s.PadT, ix0 = ox * s.SW - s.PadL;
        b0 = cols.Load(xv, 0, inside, iy0, ix0, s);
        b1 = cols.Load(xv, 1, inside, iy0, ix0, s);
        b2 = cols.Load(xv, 2, inside, iy0, ix0, s);
        b3 = cols.Load(xv, 3, inside, iy0, ix0, s);
    }

    static void StoreSlots(ArrayView<float> sa, ArrayView<float> sb, int i, float a0, float a1, float a2, float a3, float b0, float b1, float b2, float b3, bool tf32)
    {
        if (tf32)
        {
            a0 = GemmKernels.ToTf32(a0); a1 = GemmKernels.ToTf32(a1); a2 = GemmKernels.ToTf32(a2); a3 = GemmKernels.ToTf32(a3);
            b0 = GemmKernels.ToTf32(b0); b1 = GemmKernels.ToTf32(b1); b2 = GemmKernels.ToTf32(b2); b3 = GemmKernels.ToTf32(b3);
        }
        sa[i] = a0; sa[i + 32] = a1; sa[i + 64] = a2; sa[i + 96] = a3;
        sb[i] = b0; sb[i + 32] = b1; sb[i + 64] = b2; sb[i + 96] = b3;
    }

    /// <summary>wt (Cin, Cout, kh, kw) = w (Cout, Cin, kh, kw) transposed in the channels and flipped in both kernel axes; grid-stride.</summary>
    static void FlipWeightKernel(Index1D tid, ArrayView<float> w, ArrayView<float> wt, ConvShape s, int stride)
    {
        int khw = s.KH * s.KW, total = s.Cout * s.Cin * khw;
        for (int i = tid; i < total; i += stride)
        {
            int r = i % khw, pair = i / khw;
            int co = pair % s.Cout, ci = pair / s.Cout;
            wt[i] = w[(co * s.Cin + ci) * khw + khw - 1 - r];
        }
    }
}

/// <summary>
/// The gathered column of a forward load (implicit im2col): output column n (image, pixel), its
/// input window origin, and the depths kb + 2r (r &lt; 4) this thread loads in every tile.
/// </summary>
internal readonly struct ConvColumnSlot
{
    const int Outside = int.MaxValue / 2;
    public readonly int Image;
    readonly int _iy0, _ix0, _kb, _shared, _pitch;

    public ConvColumnSlot(int tid, int n0, int total, int pixels, ConvShape s, int pitch)
    {
        _pitch = pitch;
        int n = n0 + (tid & 127);
        bool ok = n < total;
        int nn = ok ? n : 0;
        Image = nn / pixels;
        int p = nn - Image * pixels;
        int oy = p / s.Wo, ox = p - oy * s.Wo;
        _iy0 = oy * s.SH - s.PadT;
        _ix0 = ox * s.SW - s.PadL;
        _kb = ok ? tid >> 7 : Outside;
        _shared = (tid >> 7) * pitch + (tid & 127);
    }

    /// <summary>x at depths k0 + kb + 2r of this column (zero past <paramref name="kdim"/> or outside the image).</summary>
    public void Load(ArrayView<float> xv, int k0, int kdim, ConvShape s, int plane, int khw, int kw,
        out float v0, out float v1, out float v2, out float v3)
    {
        int k = k0 + _kb;
        v0 = One(xv, k, kdim, s, plane, khw, kw);
        v1 = One(xv, k + 2, kdim, s, plane, khw, kw);
        v2 = One(xv, k + 4, kdim, s, plane, khw, kw);
        v3 = One(xv, k + 6, kdim, s, plane, khw, kw);
    }

    float One(ArrayView<float> xv, int k, int kdim, ConvShape s, int plane, int khw, int kw)
    {
        int ci = k / khw, r = k - ci * khw;
        int ky = r / kw, kx = r - ky * kw;
        int iy = _iy0 + ky, ix = _ix0 + kx;
        bool inside = k < kdim && (uint)iy < (uint)s.H && (uint)ix < (uint)s.W;
        float v = xv[inside ? ci * plane + iy * s.W + ix : 0];
        return inside ? v : 0f;
    }

    /// <summary>Stores the four values into the B tile at <paramref name="buf"/> (depth rows kb + 2r), rounded to TF32 when <paramref name="tf32"/>.</summary>
    public void Store(ArrayView<float> sb, int buf, float v0, float v1, float v2, float v3, bool tf32)
    {
        if (tf32) { v0 = GemmKernels.ToTf32(v0); v1 = GemmKernels.ToTf32(v1); v2 = GemmKernels.ToTf32(v2); v3 = GemmKernels.ToTf32(v3); }
        int i = buf + _shared;
        sb[i] = v0;
        sb[i + 2 * _pitch] = v1;
        sb[i + 4 * _pitch] = v2;
        sb[i + 6 * _pitch] = v3;
    }
}

/// <summary>The weight gradient's dy rows of one thread: channels m0 + tid/8 + 32r (r &lt; 4), each an offset co*P into an image's dy (-1: outside).</summary>
internal readonly struct ConvRowSlots
{
    readonly int _o0, _o1, _o2, _o3;

    public ConvRowSlots(int tid, int m0, int cout, int pixels)
    {
        int co = m0 + (tid >> 3);
        _o0 = co < cout ? co * pixels : -1;
        _o1 = co + 32 < cout ? (co + 32) * pixels : -1;
        _o2 = co + 64 < cout ? (co + 64) * pixels : -1;
        _o3 = co + 96 < cout ? (co + 96) * pixels : -1;
    }

    public float Load(ArrayView<float> dyv, int r, bool inside)
    {
        int o = r == 0 ? _o0 : r == 1 ? _o1 : r == 2 ? _o2 : _o3;
        bool ok = inside && o >= 0;
        float v = dyv[ok ? o : 0];
        return ok ? v : 0f;
    }
}

/// <summary>The weight gradient's col columns of one thread: depths k = n0 + tid/8 + 32r (r &lt; 4) decoded once into a plane offset ci*H*W + ky*W + kx and (ky, kx).</summary>
internal readonly struct ConvDepthSlots
{
    readonly int _off0, _off1, _off2, _off3;
    readonly int _yx0, _yx1, _yx2, _yx3; // ky << 16 | kx; -1: outside the matrix

    public ConvDepthSlots(int tid, int n0, int kdim, int plane, int width, int khw, int kw)
    {
        int k = n0 + (tid >> 3);
        Decode(k, kdim, plane, width, khw, kw, out _off0, out _yx0);
        Decode(k + 32, kdim, plane, width, khw, kw, out _off1, out _yx1);
        Decode(k + 64, kdim, plane, width, khw, kw, out _off2, out _yx2);
        Decode(k + 96, kdim, plane, width, khw, kw, out _off3, out _yx3);
    }

    static void Decode(int k, int kdim, int plane, int width, int khw, int kw, out int off, out int yx)
    {
        int ci = k / khw, r = k - ci * khw;
        int ky = r / kw, kx = r - ky * kw;
        off = ci * plane + ky * width + kx;
        yx = k < kdim ? (ky << 16) | kx : -1;
    }

    public float Load(ArrayView<float> xv, int r, bool inside, int iy0, int ix0, ConvShape s)
    {
        int off = r == 0 ? _off0 : r == 1 ? _off1 : r == 2 ? _off2 : _off3;
        int yx = r == 0 ? _yx0 : r == 1 ? _yx1 : r == 2 ? _yx2 : _yx3;
        int iy = iy0 + (yx >> 16), ix = ix0 + (yx & 0xFFFF);
        bool ok = inside && yx >= 0 && (uint)iy < (uint)s.H && (uint)ix < (uint)s.W;
        float v = xv[ok ? off + iy0 * s.W + ix0 : 0];
        return ok ? v : 0f;
    }
}

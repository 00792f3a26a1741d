// Winograd's minimal filtering F(2x2, 3x3) for the 3x3 "same" convolutions of the CPU fast path
// (Lavin & Gray 2016, "Fast Algorithms for Convolutional Neural Networks"; docs/kernels.md#winograd).
//
// The output is cut into 2x2 tiles; tile t reads the 4x4 input patch d_t[ci] starting one row and
// one column before it (zero outside the image). With
//
//   B^T = [1 0 -1 0; 0 1 1 0; 0 -1 1 0; 0 1 0 -1],  G = [1 0 0; 1/2 1/2 1/2; 1/2 -1/2 1/2; 0 0 1],
//   A^T = [1 1 1 0; 0 1 -1 -1],
//
// U[co, ci] = G g[co, ci] G^T and V_t[ci] = B^T d_t[ci] B (4x4 each), the tile's output is
//
//   Y_t[co] = A^T ( sum_ci U[co, ci] .* V_t[ci] ) A,
//
// so for each of the 16 positions xi of the 4x4 transforms the channel sum is one GEMM,
// M[xi] (Cout x T) = U[xi] (Cout x Cin) V[xi] (Cin x T): 16 Cout Cin multiply-adds per tile of
// 4 outputs, against 36 Cout Cin for the direct product (2.25x fewer). The transforms are adds and
// subtractions only (and the halves in G, exact in binary), done on vectors of tiles.
//
// The weight gradient by the same algebra: dM_t = A dY_t A^T, dU[xi] = sum_t dM_t[xi] V_t[xi] (one
// GEMM per xi over the tiles), dW = G^T dU G (WeightGrad). A first version summed dot products
// along the tiles (both operands tile-contiguous) and was no faster than the direct weight gradient:
// with a few hundred tiles per dot the lane reductions cost as much as the products. V is therefore
// built from a channels-last copy of x, so that it is stored V[xi, t, ci] and the product is a plain
// GEMM (dM row-major along t, V along ci).
//
// Blocking: tiles are taken in chunks of whole tile rows (about TargetTiles tiles); a task
// transforms its chunk's input into V (16 x Cin x chunk, a few hundred KB), runs the 16 GEMMs and
// transforms the products back. The chunks write disjoint outputs, so the bits do not
// depend on the thread count.
using System.Buffers;
using System.Numerics;
using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;

namespace Edm.Kernels;

internal static unsafe class WinogradConv
{
    /// <summary>Fewest input and output channels for which the transforms pay for themselves (measured, docs/kernels.md#winograd).</summary>
    public const int MinChannels = 32;
    /// <summary>Tiles per chunk (rounded to whole tile rows).</summary>
    const int TargetTiles = 128;

    static readonly int VW = Vector<float>.Count;

    /// <summary>True when F(2x2, 3x3) applies: 3x3 kernel, stride 1, padding 1, output the size of the input, enough channels.</summary>
    public static bool Supported(ConvShape s) =>
        s.KH == 3 && s.KW == 3 && s.PadT == 1 && s.PadL == 1 && s.Same && s.Cin >= MinChannels && s.Cout >= MinChannels;

    /// <summary>(tile rows, tiles per row) of a shape.</summary>
    static (int TH, int TW) Tiles(ConvShape s) => ((s.H + 1) / 2, (s.W + 1) / 2);

    /// <summary>Tile rows per chunk, and the row stride of a chunk's V and M rows (room for a whole vector past the last tile).</summary>
    static (int Rows, int Stride) Chunking(ConvShape s, int tw)
    {
        int rows = Math.Max(1, TargetTiles / tw);
        return (rows, (rows * tw + 15) / 16 * 16 + 16);
    }

    /// <summary>
    /// U[xi] (Cout x Cin, at u + xi <paramref name="plane"/>) = G g G^T of every 3x3 filter g = w[co, ci].
    /// The plane stride is padded past Cout Cin so that the 16 output streams do not share cache sets.
    /// With <paramref name="flipped"/>, w is the (Cin, Cout, 3, 3) weight of the convolution whose
    /// backward-data this is, read as g[co, ci] = w[ci, co] rotated by 180 degrees (no flipped copy).
    /// </summary>
    static void TransformWeights(float* w, float* u, int cout, int cin, long plane, bool flipped)
    {
        nint aw = (nint)w, au = (nint)u;
        Parallel.For(0, cout, new ParallelOptions { MaxDegreeOfParallelism = Environment.ProcessorCount }, co =>
        {
            int vw = Vector<float>.Count;
            float* t = stackalloc float[9 * Vector<float>.Count];  // 9 taps x a vector of channels
            Span<Vector<float>> r = stackalloc Vector<float>[12];
            float* src = (float*)aw + (long)co * cin * 9, dst = (float*)au + (long)co * cin;
            for (int c0 = 0; c0 < cin; c0 += vw)
            {
                int n = Math.Min(vw, cin - c0);
                if (flipped)
                    for (int l = 0; l < n; l++)
                    {
                        float* f = (float*)aw + ((long)(c0 + l) * cout + co) * 9;
                        for (int k = 0; k < 9; k++) t[k * vw + l] = f[8 - k];
                    }
                else
                    for (int l = 0; l < n; l++)
                        for (int k = 0; k < 9; k++) t[k * vw + l] = src[(c0 + l) * 9 + k];
                var half = new Vector<float>(0.5f);
                Vector<float> T(int k) => Unsafe.ReadUnaligned<Vector<float>>(t + k * vw);
                // G g: rows (g0, (g0 + g1 + g2) / 2, (g0 - g1 + g2) / 2, g2), column j of each.
                for (int j = 0; j < 3; j++)
                {
                    Vector<float> g0 = T(j), g1 = T(3 + j), g2 = T(6 + j);
                    r[j] = g0;
                    r[3 + j] = half * (g0 + g1 + g2);
                    r[6 + j] = half * (g0 - g1 + g2);
                    r[9 + j] = g2;
                }
                float* o = dst + c0;
                for (int i = 0; i < 4; i++)
                {
                    Vector<float> a = r[3 * i], b = r[3 * i + 1], c = r[3 * i + 2];
                    Put(o + (4 * i + 0) * plane, a, n);
                    Put(o + (4 * i + 1) * plane, half * (a + b + c), n);
                    Put(o + (4 * i + 2) * plane, half * (a - b + c), n);
                    Put(o + (4 * i + 3) * plane, c, n);
                }
            }
        });
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    static void Put(float* p, Vector<float> v, int n)
    {
        if (n == Vector<float>.Count) Unsafe.WriteUnaligned(p, v);
        else for (int l = 0; l < n; l++) p[l] = v[l];
    }

    /// <summary>
    /// V[xi, ci, t] (row stride <paramref name="ts"/> per (xi, ci), xi stride <paramref name="xiStride"/>) = B^T d B of the
    /// tiles of tile rows [r0, r1) (tile row R = b TH + ty), t counted from the chunk's first tile.
    /// </summary>
    static void TransformInput(float* x, ConvShape s, int th, int tw, int r0, int r1, float* v, int ts, long xiStride, float* eo, int c0, int c1)
    {
        int half = tw + 1 + VW;                                   // E then O, each tw + 1 used, + a vector of slack
        float* e = eo, o = eo + 4 * half;                         // 4 rows of E, then 4 rows of O
        // Ring of 4 deinterleaved rows: padded row p of image b sits in slot p & 3 (consecutive tile
        // rows share two rows); held[slot] says which (b, p) it holds.
        int* held = stackalloc int[4];
        float** es = stackalloc float*[4];
        float** os = stackalloc float*[4];
        for (int ci = c0; ci < c1; ci++)
        {
            for (int q = 0; q < 4; q++) held[q] = -1;
            for (int rr = r0; rr < r1; rr++)
            {
                int b = rr / th, ty = rr % th;
                float* plane = x + ((long)b * s.Cin + ci) * s.H * s.W;
                for (int i = 0; i < 4; i++)
                {
                    // Padded row p = 2 ty + i is x row p - 1; padded column q is x column q - 1.
                    // E[k] = padded column 2k (x column 2k - 1), O[k] = padded column 2k + 1 (x column 2k).
                    int pr = 2 * ty + i, slot = pr & 3, key = b * (2 * th + 2) + pr;
                    float* ei = e + slot * half, oi = o + slot * half;
                    es[i] = ei;
                    os[i] = oi;
                    if (held[slot] == key) continue;
                    held[slot] = key;
                    int y = pr - 1;
                    if (y < 0 || y >= s.H)
                    {
                        new Span<float>(ei, tw + 1).Clear();
                        new Span<float>(oi, tw + 1).Clear();
                        continue;
                    }
                    ei[0] = 0;
                    oi[tw] = 0;                                       // x column 2 tw >= W
                    Deinterleave(plane + (long)y * s.W, s.W, oi, ei + 1, tw);
                }
                float* dst = v + (long)ci * ts + (long)(rr - r0) * tw;
                for (int k = 0; k < tw; k += VW)
                {
                    // Column transform of each row i: (E[k] - E[k+1], O[k] + E[k+1], E[k+1] - O[k], O[k] - O[k+1]).
                    Vector<float> c00, c01, c02, c03, c10, c11, c12, c13, c20, c21, c22, c23, c30, c31, c32, c33;
                    Cols(es[0], os[0], k, out c00, out c01, out c02, out c03);
                    Cols(es[1], os[1], k, out c10, out c11, out c12, out c13);
                    Cols(es[2], os[2], k, out c20, out c21, out c22, out c23);
                    Cols(es[3], os[3], k, out c30, out c31, out c32, out c33);
                    // Row transform: (r0 - r2, r1 + r2, r2 - r1, r1 - r3).
                    float* p = dst + k;
                    RowsOut(c00, c10, c20, c30, p, 0, xiStride); RowsOut(c01, c11, c21, c31, p, 1, xiStride);
                    RowsOut(c02, c12, c22, c32, p, 2, xiStride); RowsOut(c03, c13, c23, c33, p, 3, xiStride);
                }
            }
        }
    }

    /// <summary>Column j of B^T's row transform of rows (r0, r1, r2, r3): (r0 - r2, r1 + r2, r2 - r1, r1 - r3) to xi = j, 4 + j, 8 + j, 12 + j.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    static void RowsOut(Vector<float> r0, Vector<float> r1, Vector<float> r2, Vector<float> r3, float* p, int j, long xiStride)
    {
        Store(r0 - r2, p, j, xiStride);
        Store(r1 + r2, p, 4 + j, xiStride);
        Store(r2 - r1, p, 8 + j, xiStride);
        Store(r1 - r3, p, 12 + j, xiStride);
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    static void Cols(float* e, float* o, int k, out Vector<float> c0, out Vector<float> c1, out Vector<float> c2, out Vector<float> c3)
    {
        var e0 = Unsafe.ReadUnaligned<Vector<float>>(e + k);
        var e1 = Unsafe.ReadUnaligned<Vector<float>>(e + k + 1);
        var o0 = Unsafe.ReadUnaligned<Vector<float>>(o + k);
        var o1 = Unsafe.ReadUnaligned<Vector<float>>(o + k + 1);
        c0 = e0 - e1;
        c1 = o0 + e1;
        c2 = e1 - o0;
        c3 = o0 - o1;
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    static void Store(Vector<float> value, float* p, int xi, long xiStride) => Unsafe.WriteUnaligned(p + xi * xiStride, value);

    /// <summary>
    /// y[b, co] tiles of tile rows [r0, r1) = A^T M A (+ bias), M[xi, co, t] with row stride
    /// <paramref name="ts"/> per (xi, co) and <paramref name="xiStride"/> per xi.
    /// </summary>
    static void TransformOutput(float* m, float* bias, float* y, ConvShape s, int th, int tw, int r0, int r1, int ts, long xiStride, float* tmp)
    {
        for (int co = 0; co < s.Cout; co++)
        {
            var bv = new Vector<float>(bias == null ? 0f : bias[co]);
            for (int rr = r0; rr < r1; rr++)
            {
                int b = rr / th, ty = rr % th;
                float* plane = y + ((long)b * s.Cout + co) * s.Pixels;
                float* src = m + (long)co * ts + (long)(rr - r0) * tw;
                int oy = 2 * ty;
                bool second = oy + 1 < s.H;
                for (int k = 0; k < tw; k += VW)
                {
                    float* p = src + k;
                    // A^T over rows: s0 = m0 + m1 + m2, s1 = m1 - m2 - m3 (mi rows of the 4x4), then over columns.
                    var s00 = Load(p, 0, xiStride) + Load(p, 4, xiStride) + Load(p, 8, xiStride);
                    var s01 = Load(p, 1, xiStride) + Load(p, 5, xiStride) + Load(p, 9, xiStride);
                    var s02 = Load(p, 2, xiStride) + Load(p, 6, xiStride) + Load(p, 10, xiStride);
                    var s03 = Load(p, 3, xiStride) + Load(p, 7, xiStride) + Load(p, 11, xiStride);
                    var s10 = Load(p, 4, xiStride) - Load(p, 8, xiStride) - Load(p, 12, xiStride);
                    var s11 = Load(p, 5, xiStride) - Load(p, 9, xiStride) - Load(p, 13, xiStride);
                    var s12 = Load(p, 6, xiStride) - Load(p, 10, xiStride) - Load(p, 14, xiStride);
                    var s13 = Load(p, 7, xiStride) - Load(p, 11, xiStride) - Load(p, 15, xiStride);
                    int n = Math.Min(VW, tw - k);
                    float* row0 = plane + (long)oy * s.W + 2 * k;
                    PutPairs(s00 + s01 + s02 + bv, s01 - s02 - s03 + bv, row0, n, 2 * k, s.W, tmp);
                    if (second)
                        PutPairs(s10 + s11 + s12 + bv, s11 - s12 - s13 + bv, row0 + s.W, n, 2 * k, s.W, tmp);
                }
            }
        }
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    static Vector<float> Load(float* p, int xi, long xiStride) => Unsafe.ReadUnaligned<Vector<float>>(p + xi * xiStride);

    /// <summary>Writes a0 b0 a1 b1 ... for the first <paramref name="n"/> lanes, stopping at column <paramref name="w"/> (col0 = the first column's index).</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    static void PutPairs(Vector<float> a, Vector<float> b, float* dst, int n, int col0, int w, float* tmp)
    {
        if (n == 8 && col0 + 16 <= w && Vector<float>.Count == 8 && Avx.IsSupported)
        {
            var va = a.AsVector256();
            var vb = b.AsVector256();
            var lo = Avx.UnpackLow(va, vb);                           // a0 b0 a1 b1 | a4 b4 a5 b5
            var hi = Avx.UnpackHigh(va, vb);                          // a2 b2 a3 b3 | a6 b6 a7 b7
            Avx.Store(dst, Avx.Permute2x128(lo, hi, 0x20));
            Avx.Store(dst + 8, Avx.Permute2x128(lo, hi, 0x31));
            return;
        }
        Unsafe.WriteUnaligned(tmp, a);
        Unsafe.WriteUnaligned(tmp + VW, b);
        for (int l = 0; l < n; l++)
        {
            dst[2 * l] = tmp[l];
            if (col0 + 2 * l + 1 < w) dst[2 * l + 1] = tmp[VW + l];
        }
    }

    /// <summary>
    /// y (B, Cout, H, W) = conv3x3(x, w) (+ bias) by F(2x2, 3x3); <paramref name="s"/> must be
    /// <see cref="Supported"/>. With <paramref name="flipped"/>, w is (Cin, Cout, 3, 3) and the filter
    /// of (co, ci) is w[ci, co] rotated by 180 degrees: the backward-data of a convolution by w.
    /// </summary>
    public static void Forward(float* x, float* w, float* bias, float* y, ConvShape s, bool flipped = false)
    {
        var (th, tw) = Tiles(s);
        var (rowsPer, ts) = Chunking(s, tw);
        int tileRows = s.Batch * th, chunks = (tileRows + rowsPer - 1) / rowsPer;
        var g = new GemmShape(s.Cout, 0, s.Cin, 1, 0, 0, s.Cin, 1, 0, ts, 1, 0, ts, 1f, 0f);
        int packLen = GemmCpu.PackedLength(g);
        long plane = (long)s.Cout * s.Cin + 48;                    // 48: the 16 planes start in different cache sets
        float[] u = ArrayPool<float>.Shared.Rent((int)(16 * plane));
        float[] packed = ArrayPool<float>.Shared.Rent(16 * packLen);
        int[] offsets = new int[s.Cin];
        for (int k = 0; k < s.Cin; k++) offsets[k] = k * ts;
        try
        {
            fixed (float* pu = u, pp = packed)
            {
                TransformWeights(w, pu, s.Cout, s.Cin, plane, flipped);
                nint au = (nint)pu, app = (nint)pp;
                Parallel.For(0, 16, new ParallelOptions { MaxDegreeOfParallelism = Environment.ProcessorCount },
                    xi => GemmCpu.PackWhole((float*)au + xi * plane, g, (float*)app + (long)xi * packLen));
                nint ap = (nint)pp, ax = (nint)x, ay = (nint)y, ab = (nint)bias;
                // xi planes skewed off multiples of 4 KB (as in WeightGrad: 16 streams 4 KB apart share an L1 set).
                long vXi = Skewed((long)s.Cin * ts), mXi = Skewed((long)s.Cout * ts);
                int vLen = (int)(16 * vXi) + 64, mLen = (int)(16 * mXi) + 64, eoLen = 8 * (tw + 1 + VW) + 2 * VW;
                Parallel.For(0, chunks, new ParallelOptions { MaxDegreeOfParallelism = Environment.ProcessorCount }, c =>
                {
                    int r0 = c * rowsPer, r1 = Math.Min(tileRows, r0 + rowsPer), n = (r1 - r0) * tw;
                    float[] vArr = ArrayPool<float>.Shared.Rent(vLen), mArr = ArrayPool<float>.Shared.Rent(mLen), eoArr = ArrayPool<float>.Shared.Rent(eoLen);
                    try
                    {
                        fixed (float* pv = vArr, pm = mArr, peo = eoArr)
                        fixed (int* poff = offsets)
                        {
                            new Span<float>(peo, eoLen).Clear();
                            TransformInput((float*)ax, s, th, tw, r0, r1, pv, ts, vXi, peo, 0, s.Cin);
                            var gc = g with { N = n };
                            for (int xi = 0; xi < 16; xi++)
                            {
                                float* pa = (float*)ap + (long)xi * packLen, vb = pv + xi * vXi, mc = pm + xi * mXi;
                                if (GemmCpu.Wide) GemmCpu.RunDirect(pa, vb, poff, mc, gc, 1, null);
                                else GemmCpu.RunPacked(null, new StridedB(vb, n, ts, 1), mc, gc, 1, null, pa);
                            }
                            TransformOutput(pm, (float*)ab, (float*)ay, s, th, tw, r0, r1, ts, mXi, peo);
                        }
                    }
                    finally
                    {
                        ArrayPool<float>.Shared.Return(vArr);
                        ArrayPool<float>.Shared.Return(mArr);
                        ArrayPool<float>.Shared.Return(eoArr);
                    }
                });
            }
        }
        finally
        {
            ArrayPool<float>.Shared.Return(u);
            ArrayPool<float>.Shared.Return(packed);
        }
    }

    /// <summary>Floats of V, dM and x's transposed copy held at once by <see cref="WeightGrad"/> (images per chunk = this / per image): 32 MB.</summary>
    const int GradBudget = 1 << 21;

    /// <summary>Whether <see cref="WeightGrad"/> serves the shape (as <see cref="Supported"/>).</summary>
    public static bool SupportsWeightGrad(ConvShape s) => Supported(s);

    /// <summary>
    /// dW (Cout, Cin, 3, 3) = (or += when <paramref name="accumulate"/>) the weight gradient by
    /// F(2x2, 3x3). Per chunk of whole images: x is copied channels-last with a zero border
    /// (xT[b, py, px, ci], padded row py = x row py - 1), so that V = B^T d B is computed on vectors
    /// of channels and stored V[xi, t, ci]; dM = A dY A^T of dy's 2x2 tiles (the forward's output
    /// transform, transposed) is stored dM[xi, co, t]. Then for each xi one GEMM,
    /// dU[xi] (Cout x Cin) (+)= dM[xi] (Cout x T) V[xi] (T x Cin), and at the end dW = G^T dU G.
    /// Chunks are added in order and each xi's GEMM runs on one task, so the bits do not depend on
    /// the thread count.
    /// </summary>
    public static void WeightGrad(float* x, float* dy, float* dw, ConvShape s, bool accumulate)
    {
        if (!SupportsWeightGrad(s)) throw new ArgumentException($"WinogradConv.WeightGrad: a 3x3 same convolution with >= {MinChannels} channels");
        var (th, tw) = Tiles(s);
        int perImageTiles = th * tw, cpad = (s.Cin + VW - 1) / VW * VW, ph = 2 * th + 2, pw = 2 * tw + 2;
        long perImage = 16L * perImageTiles * (cpad + s.Cout) + (long)ph * pw * cpad;
        int images = (int)Math.Clamp(GradBudget / perImage, 1, s.Batch);
        int maxTiles = images * perImageTiles, ts = (maxTiles + 15) / 16 * 16 + 2 * VW;  // dM rows: room for a vector past the last tile
        // The 16 xi planes of V and dM are 64 bytes past a multiple of 4 KB apart, so that the 16
        // store streams of a transform fall in different L1 sets (4 KB apart they thrashed one set).
        long plane = (long)s.Cout * s.Cin + 48, vXi = Skewed((long)maxTiles * cpad), mXi = Skewed((long)s.Cout * ts), xtImage = (long)ph * pw * cpad;
        float[] vArr = ArrayPool<float>.Shared.Rent((int)(16 * vXi) + 16);
        float[] mArr = ArrayPool<float>.Shared.Rent((int)(16 * mXi) + 16);
        float[] xtArr = ArrayPool<float>.Shared.Rent((int)(images * xtImage) + 16);
        float[] duArr = ArrayPool<float>.Shared.Rent((int)(16 * plane));
        try
        {
            fixed (float* pv = vArr, pm = mArr, pxt = xtArr, pdu = duArr)
            {
                nint av = (nint)pv, am = (nint)pm, axt = (nint)pxt, adu = (nint)pdu, ax = (nint)x, ady = (nint)dy;
                int scratchLen = 4 * (tw + 1 + VW) + VW;
                for (int b0 = 0; b0 < s.Batch; b0 += images)
                {
                    int n = Math.Min(images, s.Batch - b0), tiles = n * perImageTiles, r0 = b0 * th, r1 = (b0 + n) * th;
                    // x channels-last with its zero border; then V from it, and dM from dy.
                    CpuParallel.For(n * ph, (start, count) =>
                    {
                        for (int q = start; q < start + count; q++)
                            ChannelsLastRow((float*)ax, s, b0 + q / ph, q % ph, (float*)axt + (q / ph) * xtImage + (long)(q % ph) * pw * cpad, pw, cpad);
                    }, minChunk: 1);
                    CpuParallel.For(r1 - r0, (start, count) =>
                    {
                        for (int rr = start; rr < start + count; rr++)
                            TransformInputChannels((float*)axt + (rr / th) * xtImage, rr % th, tw, pw, cpad,
                                (float*)av + (long)rr * tw * cpad, vXi);
                    }, minChunk: 1);
                    CpuParallel.For(s.Cout, (start, count) =>
                    {
                        float[] scr = ArrayPool<float>.Shared.Rent(scratchLen);
                        try
                        {
                            fixed (float* ps = scr)
                            {
                                new Span<float>(ps, scratchLen).Clear();
                                for (int co = start; co < start + count; co++)
                                    TransformGradOutput((float*)ady, s, th, tw, r0, r1, (float*)am, ts, mXi, ps, co);
                            }
                        }
                        finally { ArrayPool<float>.Shared.Return(scr); }
                    }, minChunk: 1);
                    var g = new GemmShape(s.Cout, s.Cin, tiles, 1, 0, 0, ts, 1, 0, cpad, 1, 0, s.Cin, 1f, b0 == 0 ? 0f : 1f);
                    CpuParallel.For(16, (start, count) =>
                    {
                        for (int xi = start; xi < start + count; xi++)
                            GemmCpu.Run((float*)am + xi * mXi, (float*)av + xi * vXi, (float*)adu + xi * plane, g, 1);
                    }, minChunk: 1);
                }
                CpuParallel.For(s.Cout, (start, count) =>
                {
                    for (int co = start; co < start + count; co++) GradWeights((float*)adu, plane, dw, s.Cin, co, accumulate);
                }, minChunk: 1);
            }
        }
        finally
        {
            ArrayPool<float>.Shared.Return(vArr);
            ArrayPool<float>.Shared.Return(mArr);
            ArrayPool<float>.Shared.Return(xtArr);
            ArrayPool<float>.Shared.Return(duArr);
        }
    }

    /// <summary>n rounded up to a multiple of 1,024 floats (4 KB), plus 16 (64 bytes).</summary>
    static long Skewed(long n) => (n + 1023) / 1024 * 1024 + 16;

    /// <summary>
    /// Padded row <paramref name="py"/> of image <paramref name="b"/> channels-last: dst[px, ci] =
    /// x[b, ci, py - 1, px - 1], 0 outside the image and for ci in [Cin, cpad).
    /// </summary>
    static void ChannelsLastRow(float* x, ConvShape s, int b, int py, float* dst, int pw, int cpad)
    {
        int y = py - 1;
        if (y < 0 || y >= s.H)
        {
            new Span<float>(dst, pw * cpad).Clear();
            return;
        }
        new Span<float>(dst, cpad).Clear();                                         // column 0
        new Span<float>(dst + (long)(s.W + 1) * cpad, (pw - s.W - 1) * cpad).Clear(); // columns past the image
        float* src = x + ((long)b * s.Cin * s.H + y) * s.W;
        long cStride = (long)s.H * s.W;
        float* d = dst + cpad;
        // Blocks of 8 channels x 8 columns: 8 reads of a row piece, 8 writes of a channel piece.
        nint* rows = stackalloc nint[8];
        for (int x0 = 0; x0 < s.W; x0 += 8)
        {
            int nx = Math.Min(8, s.W - x0);
            for (int c0 = 0; c0 < s.Cin; c0 += 8)
            {
                int nc = Math.Min(8, s.Cin - c0);
                if (nc == 8 && nx == 8 && Avx.IsSupported)
                {
                    for (int c = 0; c < 8; c++) rows[c] = (nint)(src + (c0 + c) * cStride + x0);
                    GemmCpu.Transpose8(rows, 8, d + (long)x0 * cpad + c0, cpad);
                    continue;
                }
                for (int c = 0; c < nc; c++)
                {
                    float* row = src + (c0 + c) * cStride + x0;
                    float* o = d + (long)x0 * cpad + c0 + c;
                    for (int k = 0; k < nx; k++) o[k * cpad] = row[k];
                }
            }
            for (int k = 0; k < nx; k++) new Span<float>(d + (long)(x0 + k) * cpad + s.Cin, cpad - s.Cin).Clear();
        }
    }

    /// <summary>
    /// V[xi, t, ci] = (B^T d_t B)[xi] for the tiles of tile row <paramref name="ty"/> of one image,
    /// d_t the 4x4 patch of the channels-last padded image <paramref name="xt"/> at padded row 2 ty,
    /// column 2 tx; v points at the row's first tile, <paramref name="xiStride"/> apart per xi.
    /// </summary>
    static void TransformInputChannels(float* xt, int ty, int tw, int pw, int cpad, float* v, long xiStride)
    {
        long rowStride = (long)pw * cpad;
        for (int tx = 0; tx < tw; tx++)
        {
            float* patch = xt + 2L * ty * rowStride + 2L * tx * cpad;
            float* dst = v + (long)tx * cpad;
            for (int c = 0; c < cpad; c += VW)
            {
                float* p = patch + c;
                // Column transform of each patch row i: (d0 - d2, d1 + d2, d2 - d1, d1 - d3) over columns.
                Row4(p, cpad, out var c00, out var c01, out var c02, out var c03);
                Row4(p + rowStride, cpad, out var c10, out var c11, out var c12, out var c13);
                Row4(p + 2 * rowStride, cpad, out var c20, out var c21, out var c22, out var c23);
                Row4(p + 3 * rowStride, cpad, out var c30, out var c31, out var c32, out var c33);
                float* o = dst + c;
                // Row transform: (r0 - r2, r1 + r2, r2 - r1, r1 - r3).
                RowsOut(c00, c10, c20, c30, o, 0, xiStride); RowsOut(c01, c11, c21, c31, o, 1, xiStride);
                RowsOut(c02, c12, c22, c32, o, 2, xiStride); RowsOut(c03, c13, c23, c33, o, 3, xiStride);
            }
        }
    }

    /// <summary>B^T applied along one patch row of 4 channel vectors <paramref name="step"/> apart: (d0 - d2, d1 + d2, d2 - d1, d1 - d3).</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    static void Row4(float* p, int step, out Vector<float> c0, out Vector<float> c1, out Vector<float> c2, out Vector<float> c3)
    {
        var d0 = Unsafe.ReadUnaligned<Vector<float>>(p);
        var d1 = Unsafe.ReadUnaligned<Vector<float>>(p + step);
        var d2 = Unsafe.ReadUnaligned<Vector<float>>(p + 2 * step);
        var d3 = Unsafe.ReadUnaligned<Vector<float>>(p + 3 * step);
        c0 = d0 - d2;
        c1 = d1 + d2;
        c2 = d2 - d1;
        c3 = d1 - d3;
    }

    /// <summary>
    /// dM[xi, co, t] (row stride <paramref name="ts"/>, xi stride <paramref name="xiStride"/>) = A dY_t A^T of channel
    /// <paramref name="co"/>'s 2x2 output tiles of tile rows [r0, r1) (0 where a tile leaves the image).
    /// A's rows are (1, 0), (1, 1), (1, -1), (0, -1): rows (y0, y0 + y1, y0 - y1, -y1), then columns likewise.
    /// </summary>
    static void TransformGradOutput(float* dy, ConvShape s, int th, int tw, int r0, int r1, float* m, int ts, long xiStride, float* scratch, int co)
    {
        int half = tw + 1 + VW;
        float* e0 = scratch, o0 = e0 + half, e1 = o0 + half, o1 = e1 + half;
        for (int rr = r0; rr < r1; rr++)
        {
            int b = rr / th, ty = rr % th;
            float* plane = dy + ((long)b * s.Cout + co) * s.H * s.W;
            Deinterleave(plane + 2L * ty * s.W, s.W, e0, o0, tw);
            if (2 * ty + 1 < s.H) Deinterleave(plane + (2L * ty + 1) * s.W, s.W, e1, o1, tw);
            else
            {
                new Span<float>(e1, tw).Clear();
                new Span<float>(o1, tw).Clear();
            }
            float* dst = m + (long)co * ts + (long)(rr - r0) * tw;
            for (int k = 0; k < tw; k += VW)
            {
                var ye0 = Unsafe.ReadUnaligned<Vector<float>>(e0 + k);
                var yo0 = Unsafe.ReadUnaligned<Vector<float>>(o0 + k);
                var ye1 = Unsafe.ReadUnaligned<Vector<float>>(e1 + k);
                var yo1 = Unsafe.ReadUnaligned<Vector<float>>(o1 + k);
                float* p = dst + k;
                GradCols(ye0, yo0, p, 0, xiStride);
                GradCols(ye0 + ye1, yo0 + yo1, p, 4, xiStride);
                GradCols(ye0 - ye1, yo0 - yo1, p, 8, xiStride);
                GradCols(-ye1, -yo1, p, 12, xiStride);
            }
        }
    }

    /// <summary>Columns of one row (even, odd) of A dY: (e, e + o, e - o, -o) at xi0 .. xi0 + 3.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    static void GradCols(Vector<float> e, Vector<float> o, float* p, int xi0, long xiStride)
    {
        Store(e, p, xi0, xiStride);
        Store(e + o, p, xi0 + 1, xiStride);
        Store(e - o, p, xi0 + 2, xiStride);
        Store(-o, p, xi0 + 3, xiStride);
    }

    /// <summary>
    /// dW[co, ci] (=, or += when <paramref name="accumulate"/>) G^T dU[co, ci] G for every ci, dU[xi]
    /// at du + xi <paramref name="plane"/> (Cout x Cin). G's columns are (1, 1/2, 1/2, 0),
    /// (0, 1/2, -1/2, 0), (0, 1/2, 1/2, 1): rows (d0 + (d1 + d2)/2, (d1 - d2)/2, (d1 + d2)/2 + d3), then columns likewise.
    /// </summary>
    static void GradWeights(float* du, long plane, float* dw, int cin, int co, bool accumulate)
    {
        float* d = stackalloc float[16];
        float* t = stackalloc float[12];
        float* src = du + (long)co * cin;
        float* dst = dw + (long)co * cin * 9;
        for (int ci = 0; ci < cin; ci++)
        {
            for (int xi = 0; xi < 16; xi++) d[xi] = src[xi * plane + ci];
            for (int j = 0; j < 4; j++)
            {
                float d0 = d[j], d1 = d[4 + j], d2 = d[8 + j], d3 = d[12 + j];
                t[j] = d0 + 0.5f * (d1 + d2);
                t[4 + j] = 0.5f * (d1 - d2);
                t[8 + j] = 0.5f * (d1 + d2) + d3;
            }
            float* o = dst + ci * 9;
            for (int a = 0; a < 3; a++)
            {
                float u0 = t[4 * a], u1 = t[4 * a + 1], u2 = t[4 * a + 2], u3 = t[4 * a + 3];
                float g0 = u0 + 0.5f * (u1 + u2), g1 = 0.5f * (u1 - u2), g2 = 0.5f * (u1 + u2) + u3;
                if (accumulate)
                {
                    o[3 * a] += g0; o[3 * a + 1] += g1; o[3 * a + 2] += g2;
                }
                else
                {
                    o[3 * a] = g0; o[3 * a + 1] = g1; o[3 * a + 2] = g2;
                }
            }
        }
    }

    /// <summary>even[k] = row[2k], odd[k] = row[2k + 1] for k &lt; <paramref name="count"/>, 0 past column <paramref name="w"/>.</summary>
    static void Deinterleave(float* row, int w, float* even, float* odd, int count)
    {
        int k = 0;
        if (Avx2.IsSupported)
            for (; 2 * k + 16 <= w && k + 8 <= count; k += 8)
            {
                var lo = Avx.LoadVector256(row + 2 * k);
                var hi = Avx.LoadVector256(row + 2 * k + 8);
                // Within each 128-bit lane: (lo0 lo2 hi0 hi2 | lo4 lo6 hi4 hi6); then the 64-bit pairs reordered.
                var ev = Avx.Shuffle(lo, hi, 0b10_00_10_00).AsDouble();
                var od = Avx.Shuffle(lo, hi, 0b11_01_11_01).AsDouble();
                Avx.Store(even + k, Avx2.Permute4x64(ev, 0b11_01_10_00).AsSingle());
                Avx.Store(odd + k, Avx2.Permute4x64(od, 0b11_01_10_00).AsSingle());
            }
        for (; k < count; k++)
        {
            even[k] = 2 * k < w ? row[2 * k] : 0;
            odd[k] = 2 * k + 1 < w ? row[2 * k + 1] : 0;
        }
    }
}

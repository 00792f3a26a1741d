// Conv2d: 2-D cross-correlation (PyTorch conv2d), NCHW, kernels kh x kw (any sizes), strides
// (sh, sw), zero padding top/bottom/left/right (pt, pb, pl, pr; asymmetric allowed), optional bias;
// forward, backward-data, backward-weight, bias gradient. The original stride-1 "same" form
// (odd square k, pad = k/2) is the special case every EDM network uses, and keeps its fast paths.
//
//   y[b, co, oy, ox]  = bias[co] + sum_{ci, ky, kx} W[co, ci, ky, kx] x[b, ci, oy sh + ky - pt, ox sw + kx - pl]
//   dx[b, ci, iy, ix] = sum over (co, ky, kx, oy, ox) with oy sh + ky - pt = iy, ox sw + kx - pl = ix
//                       of W[co, ci, ky, kx] dy[b, co, oy, ox]
//   dW[co, ci, ky, kx] = sum_{b, oy, ox} dy[b, co, oy, ox] x[b, ci, oy sh + ky - pt, ox sw + kx - pl]
//   db[co]            = sum_{b, oy, ox} dy[b, co, oy, ox]
// Layouts: x (B, Cin, H, W), W (Cout, Cin, kh, kw), bias (Cout), y (B, Cout, Ho, Wo) with
// Ho = floor((H + pt + pb - kh) / sh) + 1, Wo likewise (PyTorch's rule). With the im2col matrix
// col[b] (Cin*kh*kw, Ho*Wo) of image b, the three products are GEMMs: y[b] = W col[b],
// dcol[b] = W^T dy[b] (then col2im), dW = sum_b dy[b] col[b]^T.
// Variants:
//   0. Implicit GEMM (ConvImplicitGemm.cs): the kernel path's default (Ops.ImplicitConv): no col
//      matrix; forward and weight gradient for any geometry, backward-data for stride 1 (other
//      strides use variant 1's col2im).
//   1. im2col + GEMM (this file): Im2Col / Col2Im grid-stride kernels and the tiled GEMM batched over
//      a chunk of images (W broadcast with batch stride 0; dW as per-image GEMM partials summed by
//      SumBatch, which keeps a GPU busier than Gemm's in-group ReduceBatch would), chunks sized so
//      col stays under 2^26 floats. A 1x1 kernel without padding skips im2col (col is x itself).
//      Strides and rectangular kernels only change the index maps of Im2Col / Col2Im (col2im gathers
//      the (ky, oy) pairs with oy sh = iy + pt - ky), so one path serves every geometry.
//   CPU fast path, other geometries: per image im2col (contiguous row copies; a strided gather when
//      sw > 1) + the CPU GEMM, Parallel.For over images (each GEMM serial) when B >= 2, else one
//      parallel GEMM; dW summed per group of images fixed by the batch size alone (at most 8
//      groups) and the groups added in order, so it repeats bit for bit whatever the thread count.
//   CPU fast path, "same" convolutions (stride 1, output the input's size: every EDM conv but 1x1):
//      per image the column-shifted padded planes of x (ShiftedPlanes, ConvWeightGradCpu.cs; KW
//      times x) instead of col (KH KW times x). Forward: y = W col with col's rows read from the
//      planes, in place by the Vector512 micro-kernels (GemmCpu.RunDirect, PlaneRows) or copied
//      into B panels (SameConvPanels) otherwise; the weight packed once per call; the bias in the
//      GEMM epilogue. Backward-data: the forward on the flipped, transposed weight (no dcol, no
//      col2im). Backward-weight: blocks of dot products over the planes (SameConvWeightGrad),
//      deterministic image chunks.
// Gradient semantics: dx is a fresh tensor; dW and db may accumulate (the *Into forms).
using System.Buffers;
using System.Numerics;
using System.Runtime.CompilerServices;
using ILGPU;
using ILGPU.Runtime;

namespace Edm.Kernels;

/// <summary>
/// Stride and zero padding of a convolution (PyTorch's conv2d with padding given per side, as
/// F.pad's (left, right, top, bottom) then a valid conv).
/// </summary>
public readonly record struct Conv2dParams(int StrideH, int StrideW, int PadTop, int PadBottom, int PadLeft, int PadRight)
{
    /// <summary>Stride 1, padding p on every side.</summary>
    public static Conv2dParams Pad(int p) => new(1, 1, p, p, p, p);

    /// <summary>PyTorch's Conv2d(stride=(sh, sw), padding=(ph, pw)): symmetric padding per axis.</summary>
    public static Conv2dParams Symmetric(int strideH, int strideW, int padH, int padW) => new(strideH, strideW, padH, padH, padW, padW);

    /// <summary>"stride (sh, sw), pad (t, b, l, r)", for messages and bench rows.</summary>
    public override string ToString() => $"stride ({StrideH}, {StrideW}), pad (t {PadTop}, b {PadBottom}, l {PadLeft}, r {PadRight})";
}

/// <summary>Shape record of one convolution for the kernels (Batch = images in this launch).</summary>
public readonly record struct ConvShape(int Batch, int Cin, int H, int W, int Cout, int KH, int KW, int SH, int SW, int PadT, int PadL, int Ho, int Wo)
{
    /// <summary>Rows of the im2col matrix: Cin*kh*kw.</summary>
    public int KDim => Cin * KH * KW;
    /// <summary>Output pixels per image: Ho*Wo.</summary>
    public int Pixels => Ho * Wo;
    /// <summary>True when col equals x (1x1 kernel, stride 1, no padding), so im2col is skipped.</summary>
    public bool Pointwise => KH == 1 && KW == 1 && SH == 1 && SW == 1 && PadT == 0 && PadL == 0 && Ho == H && Wo == W;
    /// <summary>True for stride 1 with the output the size of the input (the shifted-plane CPU im2col).</summary>
    public bool Same => SH == 1 && SW == 1 && Ho == H && Wo == W;
}

/// <summary>The im2col / col2im kernels, loaded once per device.</summary>
public sealed class Conv2dKernels : IKernelFamily<Conv2dKernels>
{
    internal readonly Action<Index1D, ArrayView<float>, ArrayView<float>, ConvShape, int> Im2Col;
    internal readonly Action<Index1D, ArrayView<float>, ArrayView<float>, ConvShape, int> Col2Im;
    internal readonly Action<Index1D, ArrayView<float>, ArrayView<float>, int, float, int> SumBatch;

    Conv2dKernels(Accelerator acc)
    {
        SumBatch = acc.LoadAutoGroupedStreamKernel<Index1D, ArrayView<float>, ArrayView<float>, int, float, int>(SumBatchKernel);
        Im2Col = acc.LoadAutoGroupedStreamKernel<Index1D, ArrayView<float>, ArrayView<float>, ConvShape, int>(Im2ColKernel);
        Col2Im = acc.LoadAutoGroupedStreamKernel<Index1D, ArrayView<float>, ArrayView<float>, ConvShape, int>(Col2ImKernel);
    }

    /// <inheritdoc/>
    public static Conv2dKernels Load(EdmDevice device) => new(device.Accelerator);

    /// <summary>col (Batch, Cin*kh*kw, Ho*Wo) from x (Batch, Cin, H, W), zero outside the image; grid-stride.</summary>
    static void Im2ColKernel(Index1D tid, ArrayView<float> x, ArrayView<float> col, ConvShape s, int stride)
    {
        int total = s.Batch * s.KDim * s.Pixels;
        for (int i = tid; i < total; i += stride)
        {
            int ox = i % s.Wo;
            int oy = (i / s.Wo) % s.Ho;
            int r = (i / s.Pixels) % s.KDim;
            int b = i / (s.Pixels * s.KDim);
            int kx = r % s.KW, ky = (r / s.KW) % s.KH, ci = r / (s.KH * s.KW);
            int iy = oy * s.SH + ky - s.PadT, ix = ox * s.SW + kx - s.PadL;
            col[i] = iy >= 0 && iy < s.H && ix >= 0 && ix < s.W ? x[((b * s.Cin + ci) * s.H + iy) * s.W + ix] : 0f;
        }
    }

    /// <summary>dst (L) = keep*dst + sum_b src[b] over src (n, L); grid-stride over L.</summary>
    static void SumBatchKernel(Index1D tid, ArrayView<float> src, ArrayView<float> dst, int n, float keep, int stride)
    {
        int len = dst.IntLength;
        for (int i = tid; i < len; i += stride)
        {
            float acc = 0f;
            for (int b = 0; b < n; b++) acc += src[b * len + i];
            dst[i] = keep == 0f ? acc : keep * dst[i] + acc;
        }
    }

    /// <summary>dx (Batch, Cin, H, W) = gather-sum of dcol (Batch, Cin*kh*kw, Ho*Wo) (the adjoint of im2col); grid-stride.</summary>
    static void Col2ImKernel(Index1D tid, ArrayView<float> dcol, ArrayView<float> dx, ConvShape s, int stride)
    {
        int total = s.Batch * s.Cin * s.H * s.W;
        for (int i = tid; i < total; i += stride)
        {
            int ix = i % s.W;
            int iy = (i / s.W) % s.H;
            int ci = (i / (s.W * s.H)) % s.Cin;
            int b = i / (s.W * s.H * s.Cin);
            float acc = 0f;
            for (int ky = 0; ky < s.KH; ky++)
            {
                int ty = iy - ky + s.PadT; // = oy sh
                if (ty < 0) continue;
                // Stride 1 (every EDM conv) skips the integer division; the branch is uniform.
                int oy = ty;
                if (s.SH != 1)
                {
                    if (ty % s.SH != 0) continue;
                    oy = ty / s.SH;
                }
                if (oy >= s.Ho) continue;
                for (int kx = 0; kx < s.KW; kx++)
                {
                    int tx = ix - kx + s.PadL;
                    if (tx < 0) continue;
                    int ox = tx;
                    if (s.SW != 1)
                    {
                        if (tx % s.SW != 0) continue;
                        ox = tx / s.SW;
                    }
                    if (ox >= s.Wo) continue;
                    int r = (ci * s.KH + ky) * s.KW + kx;
                    acc += dcol[(b * s.KDim + r) * s.Pixels + oy * s.Wo + ox];
                }
            }
            dx[i] = acc;
        }
    }
}

public static partial class Ops
{
    /// <summary>Largest im2col buffer (floats) the kernel path allocates at once.</summary>
    const int ConvColBudget = 1 << 26;

    /// <summary>
    /// Conv2d forward, stride 1: <paramref name="x"/> (B, Cin, H, W), <paramref name="weight"/>
    /// (Cout, Cin, k, k) with k odd when <paramref name="padding"/> is -1 (same, k/2),
    /// <paramref name="bias"/> (Cout) or null. Returns (B, Cout, H+2pad-k+1, W+2pad-k+1).
    /// </summary>
    public static Tensor Conv2d(Tensor x, Tensor weight, Tensor? bias = null, int padding = -1) =>
        Conv2d(x, weight, bias, SamePadding("Conv2d", weight.Shape, padding));

    /// <summary>
    /// Conv2d forward with any geometry: <paramref name="x"/> (B, Cin, H, W), <paramref name="weight"/>
    /// (Cout, Cin, kh, kw), <paramref name="bias"/> (Cout) or null, stride and per-side zero padding
    /// <paramref name="p"/>. Returns (B, Cout, Ho, Wo), Ho = (H + pt + pb - kh) / sh + 1.
    /// </summary>
    public static Tensor Conv2d(Tensor x, Tensor weight, Tensor? bias, Conv2dParams p)
    {
        var s = CheckConv("Conv2d", x, weight, p);
        if (bias is not null) Shapes.RequireEqual("Conv2d", "bias", [s.Cout], bias.Shape);
        var y = Tensor.Empty(x.Device, s.Batch, s.Cout, s.Ho, s.Wo);
        try
        {
            if (x.Device.UseCpuFastPath) ConvForwardCpu(x, weight, bias, y, s);
            else if (UseImplicitConv(s)) ConvForwardImplicit(x.Device, x.View, weight.View, bias, y.View, s);
            else
            {
                ConvForwardKernel(x, weight, y, s);
                if (bias is not null) AddBias(y, bias, s.Batch, s.Cout, s.Pixels);
            }
        }
        catch
        {
            y.Dispose();
            throw;
        }
        return y;
    }

    /// <summary>
    /// Conv2d backward-data, stride 1: dx (B, Cin, H, W) from <paramref name="dy"/> (B, Cout, Ho, Wo) and
    /// <paramref name="weight"/> (Cout, Cin, k, k); H = Ho - 2 pad + k - 1. A fresh tensor.
    /// </summary>
    public static Tensor Conv2dBackwardData(Tensor dy, Tensor weight, int padding = -1)
    {
        if (dy.Rank != 4 || weight.Rank != 4)
            throw new ArgumentException($"Conv2dBackwardData: dy must be (B, Cout, Ho, Wo) and weight (Cout, Cin, k, k), got dy {dy.ShapeString}, weight {weight.ShapeString}");
        var p = SamePadding("Conv2dBackwardData", weight.Shape, padding);
        int h = dy.Shape[2] + weight.Shape[2] - 1 - p.PadTop - p.PadBottom, w = dy.Shape[3] + weight.Shape[3] - 1 - p.PadLeft - p.PadRight;
        if (h < 1 || w < 1)
            throw new ArgumentException($"Conv2dBackwardData: dy {dy.ShapeString} with weight {weight.ShapeString} and padding {p.PadTop} implies an empty input ({h}x{w})");
        return Conv2dBackwardData(dy, weight, h, w, p);
    }

    /// <summary>
    /// Conv2d backward-data with any geometry: dx (B, Cin, <paramref name="h"/>, <paramref name="w"/>)
    /// from <paramref name="dy"/> (B, Cout, Ho, Wo) and <paramref name="weight"/> (Cout, Cin, kh, kw).
    /// The input size is given because with a stride several sizes give the same Ho. A fresh tensor.
    /// </summary>
    public static Tensor Conv2dBackwardData(Tensor dy, Tensor weight, int h, int w, Conv2dParams p)
    {
        if (dy.Rank != 4 || weight.Rank != 4)
            throw new ArgumentException($"Conv2dBackwardData: dy must be (B, Cout, Ho, Wo) and weight (Cout, Cin, kh, kw), got dy {dy.ShapeString}, weight {weight.ShapeString}");
        var s = CheckConvShapes("Conv2dBackwardData", [dy.Shape[0], weight.Shape[1], h, w], weight.Shape, p);
        Shapes.RequireEqual("Conv2dBackwardData", "dy", [s.Batch, s.Cout, s.Ho, s.Wo], dy.Shape);
        var dx = Tensor.Empty(dy.Device, s.Batch, s.Cin, s.H, s.W);
        try
        {
            if (dy.Device.UseCpuFastPath) ConvBackwardDataCpu(dy, weight, dx, s);
            else if (UseImplicitConv(s) && s.SH == 1 && s.SW == 1) ConvBackwardDataImplicit(dy, weight, dx, s);
            else ConvBackwardDataKernel(dy, weight, dx, s);
        }
        catch
        {
            dx.Dispose();
            throw;
        }
        return dx;
    }

    /// <summary>Conv2d backward-weight, stride 1: a fresh dW (Cout, Cin, k, k) from x (B, Cin, H, W) and dy (B, Cout, Ho, Wo).</summary>
    public static Tensor Conv2dBackwardWeight(Tensor x, Tensor dy, int kernel, int padding = -1) =>
        Conv2dBackwardWeight(x, dy, kernel, kernel, SamePadding("Conv2dBackwardWeight", [0, 0, kernel, kernel], padding));

    /// <summary>Conv2d backward-weight with any geometry: a fresh dW (Cout, Cin, kh, kw) from x (B, Cin, H, W) and dy (B, Cout, Ho, Wo).</summary>
    public static Tensor Conv2dBackwardWeight(Tensor x, Tensor dy, int kh, int kw, Conv2dParams p)
    {
        if (x.Rank != 4 || dy.Rank != 4)
            throw new ArgumentException($"Conv2dBackwardWeight: x must be (B, Cin, H, W) and dy (B, Cout, Ho, Wo), got x {x.ShapeString}, dy {dy.ShapeString}");
        if (kh < 1 || kw < 1) throw new ArgumentException($"Conv2dBackwardWeight: kernel {kh}x{kw} must be at least 1x1");
        var dw = Tensor.Empty(x.Device, dy.Shape[1], x.Shape[1], kh, kw);
        try
        {
            Conv2dBackwardWeightInto(x, dy, dw, accumulate: false, p);
        }
        catch
        {
            dw.Dispose();
            throw;
        }
        return dw;
    }

    /// <summary>dW (Cout, Cin, k, k) = (or += when <paramref name="accumulate"/>) sum over images and pixels of dy x-patches; stride 1.</summary>
    public static void Conv2dBackwardWeightInto(Tensor x, Tensor dy, Tensor dw, bool accumulate, int padding = -1) =>
        Conv2dBackwardWeightInto(x, dy, dw, accumulate, SamePadding("Conv2dBackwardWeight", dw.Shape, padding));

    /// <summary>dW (Cout, Cin, kh, kw) = (or += when <paramref name="accumulate"/>) sum over images and pixels of dy x-patches.</summary>
    public static void Conv2dBackwardWeightInto(Tensor x, Tensor dy, Tensor dw, bool accumulate, Conv2dParams p)
    {
        var s = CheckConv("Conv2dBackwardWeight", x, dw, p);
        Shapes.RequireEqual("Conv2dBackwardWeight", "dy", [s.Batch, s.Cout, s.Ho, s.Wo], dy.Shape);
        if (x.Device.UseCpuFastPath) ConvBackwardWeightCpu(x, dy, dw, s, accumulate);
        else if (UseImplicitConv(s)) ConvBackwardWeightImplicit(x, dy, dw, s, accumulate);
        else ConvBackwardWeightKernel(x, dy, dw, s, accumulate);
    }

    /// <summary>Conv2d bias gradient: a fresh db (Cout) = sum of dy (B, Cout, Ho, Wo) over B, Ho, Wo.</summary>
    public static Tensor Conv2dBackwardBias(Tensor dy)
    {
        if (dy.Rank != 4) throw new ArgumentException($"Conv2dBackwardBias: dy must be (B, Cout, Ho, Wo), got {dy.ShapeString}");
        var db = Tensor.Empty(dy.Device, dy.Shape[1]);
        BiasGradInto(dy, db, dy.Shape[0], dy.Shape[1], dy.Shape[2] * dy.Shape[3], accumulate: false);
        return db;
    }

    /// <summary>db (Cout) = (or += when <paramref name="accumulate"/>) sum of dy (B, Cout, Ho, Wo) over B, Ho, Wo.</summary>
    public static void Conv2dBackwardBiasInto(Tensor dy, Tensor db, bool accumulate)
    {
        if (dy.Rank != 4) throw new ArgumentException($"Conv2dBackwardBias: dy must be (B, Cout, Ho, Wo), got {dy.ShapeString}");
        Shapes.RequireEqual("Conv2dBackwardBias", "db", [dy.Shape[1]], db.Shape);
        BiasGradInto(dy, db, dy.Shape[0], dy.Shape[1], dy.Shape[2] * dy.Shape[3], accumulate);
    }

    /// <summary>The stride-1 geometry of the square-kernel API: padding on every side, -1 meaning same (k/2, k odd).</summary>
    static Conv2dParams SamePadding(string op, int[] w, int padding)
    {
        if (w.Length != 4 || w[2] != w[3])
            throw new ArgumentException($"{op}: weight must be (Cout, Cin, k, k), got {Shapes.Format(w)}");
        if (padding >= 0) return Conv2dParams.Pad(padding);
        if (w[2] % 2 == 0)
            throw new ArgumentException($"{op}: kernel size must be odd (1, 3, 5, ...) for same padding, got weight {Shapes.Format(w)}; give the padding, or use the Conv2dParams overload");
        return Conv2dParams.Pad(w[2] / 2);
    }

    static ConvShape CheckConv(string op, Tensor x, Tensor weight, Conv2dParams p)
    {
        if (x.Device != weight.Device) throw new ArgumentException($"{op}: x and weight are on different devices");
        return CheckConvShapes(op, x.Shape, weight.Shape, p);
    }

    /// <summary>Validates x (B, Cin, H, W) against weight (Cout, Cin, kh, kw) and the geometry, and derives the conv shape.</summary>
    static ConvShape CheckConvShapes(string op, int[] x, int[] w, Conv2dParams p)
    {
        if (x.Length != 4) throw new ArgumentException($"{op}: x must be (B, Cin, H, W), got {Shapes.Format(x)}");
        if (w.Length != 4 || w[2] < 1 || w[3] < 1)
            throw new ArgumentException($"{op}: weight must be (Cout, Cin, kh, kw) with kh, kw >= 1, got {Shapes.Format(w)}");
        if (p.StrideH < 1 || p.StrideW < 1)
            throw new ArgumentException($"{op}: stride ({p.StrideH}, {p.StrideW}) must be >= 1 on both axes");
        if (p.PadTop < 0 || p.PadBottom < 0 || p.PadLeft < 0 || p.PadRight < 0)
            throw new ArgumentException($"{op}: padding must be >= 0 on every side, got {p}");
        int kh = w[2], kw = w[3];
        if (w[1] != x[1])
            throw new ArgumentException($"{op}: x {Shapes.Format(x)} has {x[1]} channels but weight {Shapes.Format(w)} expects Cin = {w[1]}");
        long hp = (long)x[2] + p.PadTop + p.PadBottom, wp = (long)x[3] + p.PadLeft + p.PadRight;
        if (hp < kh || wp < kw)
            throw new ArgumentException($"{op}: x {Shapes.Format(x)} is smaller than weight {Shapes.Format(w)} with {p}");
        int ho = (int)((hp - kh) / p.StrideH + 1), wo = (int)((wp - kw) / p.StrideW + 1);
        Shapes.Validate(op, [x[0], w[0], ho, wo]);
        long colPerImage = (long)x[1] * kh * kw * ho * wo;
        if (colPerImage > int.MaxValue)
            throw new ArgumentException($"{op}: x {Shapes.Format(x)} with weight {Shapes.Format(w)} needs an im2col matrix of {colPerImage} elements per image, over 32-bit indexing");
        return new ConvShape(x[0], x[1], x[2], x[3], w[0], kh, kw, p.StrideH, p.StrideW, p.PadTop, p.PadLeft, ho, wo);
    }

    // ---- kernel path (GPU, or the CPU accelerator with CpuFastPaths off) ----

    /// <summary>Environment variable that picks the kernel path's convolution: "implicit" (the default) or "im2col" (for A/B comparisons).</summary>
    public const string ConvAlgorithmEnvironmentVariable = "EDM_CONV_GPU";

    /// <summary>
    /// Whether the kernel path runs convolutions as implicit GEMMs (ConvImplicitGemm.cs: no col matrix,
    /// the bias in the epilogue; backward-data that way for stride 1) rather than im2col + GEMM.
    /// Default true, or as <see cref="ConvAlgorithmEnvironmentVariable"/> says; the CPU fast path ignores it.
    /// </summary>
    public static bool ImplicitConv { get; set; } = ParseConvAlgorithm(Environment.GetEnvironmentVariable(ConvAlgorithmEnvironmentVariable));

    /// <summary>Whether <see cref="ConvAlgorithmEnvironmentVariable"/>'s value selects the implicit GEMMs; an ArgumentException names a bad value and the allowed ones (EdmDevice.Create checks it first).</summary>
    public static bool ParseConvAlgorithm(string? value) => value?.Trim().ToLowerInvariant() switch
    {
        null or "" or "implicit" => true,
        "im2col" => false,
        var v => throw new ArgumentException($"{ConvAlgorithmEnvironmentVariable}={v} is not a convolution algorithm; allowed: implicit, im2col"),
    };

    /// <summary>
    /// For tests: lets <see cref="EdmDevice.AllowTf32"/> select the TF32 implicit-GEMM convolutions on
    /// the CPU accelerator too, where the mma is emulated (slow: tiny shapes only). On CUDA,
    /// AllowTf32 alone selects them, as PyTorch's allow_tf32 does for cuDNN.
    /// </summary>
    public static bool EmulateTf32Conv { get; set; }

    static bool UseTf32Conv(EdmDevice d) => d.AllowTf32 && (d.Kind == DeviceKind.Cuda || (EmulateTf32Conv && d.IsCpu));

    // The implicit kernels index an output (and one image) with 32-bit integers.
    static bool UseImplicitConv(ConvShape s) =>
        ImplicitConv && (long)s.Batch * s.Cout * s.Pixels < int.MaxValue && (long)s.Batch * s.Cin * s.H * s.W < int.MaxValue;

    static KernelConfig ConvTiles(int columns, int rows, int depthChunks = 1) =>
        new(new Index3D((columns + GemmKernels.Tile128 - 1) / GemmKernels.Tile128, (rows + GemmKernels.Tile128 - 1) / GemmKernels.Tile128, depthChunks),
            new Index3D(GemmKernels.GroupSize, 1, 1));

    static void ConvForwardImplicit(EdmDevice device, ArrayView<float> x, ArrayView<float> weight, Tensor? bias, ArrayView<float> y, ConvShape s)
    {
        var k = device.Kernels<ConvImplicitKernels>();
        var b = bias?.View ?? y.SubView(0, 1);
        (UseTf32Conv(device) ? k.ForwardTf32 : k.Forward)(ConvTiles(s.Batch * s.Pixels, s.Cout), weight, x, b, y, s, bias is null ? 0 : 1,
            SpecializedValue.New(s.KH * s.KW), SpecializedValue.New(s.KW));
    }

    static void ConvBackwardDataImplicit(Tensor dy, Tensor weight, Tensor dx, ConvShape s)
    {
        var device = dy.Device;
        // Stride 1: dx = conv(dy, W') with W'[ci, co] = W[co, ci] flipped, padding kh-1-pt, kw-1-pl.
        using var flipped = Tensor.Empty(device, s.Cin, s.Cout, s.KH, s.KW);
        int threads = device.LaunchThreads(flipped.Length);
        device.Kernels<ConvImplicitKernels>().FlipWeight(threads, weight.View, flipped.View, s, threads);
        var t = new ConvShape(s.Batch, s.Cout, s.Ho, s.Wo, s.Cin, s.KH, s.KW, 1, 1, s.KH - 1 - s.PadT, s.KW - 1 - s.PadL, s.H, s.W);
        ConvForwardImplicit(device, dy.View, flipped.View, null, dx.View, t);
    }

    static void ConvBackwardWeightImplicit(Tensor x, Tensor dy, Tensor dw, ConvShape s, bool accumulate)
    {
        var device = x.Device;
        var (chunks, chunk) = WeightGradSplit(s);
        int wLen = s.Cout * s.KDim;
        using var partial = Tensor.Empty(device, chunks * wLen);
        var k = device.Kernels<ConvImplicitKernels>();
        (UseTf32Conv(device) ? k.WeightGradTf32 : k.WeightGrad)(ConvTiles(s.KDim, s.Cout, chunks), dy.View, x.View, partial.View, s, chunk,
            SpecializedValue.New(s.KH * s.KW), SpecializedValue.New(s.KW));
        int threads = device.LaunchThreads(wLen);
        device.Kernels<Conv2dKernels>().SumBatch(threads, partial.View, dw.View, chunks, accumulate ? 1f : 0f, threads);
    }

    /// <summary>
    /// The weight gradient's split of its B*P reduction into (chunks, pixels per chunk): enough
    /// chunks that tiles x chunks reaches <see cref="ConvImplicitKernels.WeightGradTargetGroups"/>,
    /// at least 256 pixels each, the partials within <see cref="ConvPartialBudget"/>. It depends on
    /// the shape alone, so the sum (chunks added in order) repeats bit for bit on any device.
    /// </summary>
    public static (int Chunks, int Chunk) WeightGradSplit(ConvShape s)
    {
        int total = s.Batch * s.Pixels;
        long tiles = (long)((s.KDim + GemmKernels.Tile128 - 1) / GemmKernels.Tile128) * ((s.Cout + GemmKernels.Tile128 - 1) / GemmKernels.Tile128);
        long want = Math.Max(1, (ConvImplicitKernels.WeightGradTargetGroups + tiles - 1) / tiles);
        long most = Math.Min(Math.Min((total + 255) / 256, 65535), Math.Max(1, ConvPartialBudget / ((long)s.Cout * s.KDim)));
        int chunks = (int)Math.Clamp(want, 1, Math.Max(1, most));
        int chunk = (total + chunks - 1) / chunks;
        chunk = (chunk + GemmKernels.Tile128K - 1) / GemmKernels.Tile128K * GemmKernels.Tile128K;
        return ((total + chunk - 1) / chunk, chunk);
    }

    static int ConvChunk(ConvShape s) => s.Pointwise ? s.Batch : Math.Clamp(ConvColBudget / Math.Max(1, s.KDim * s.Pixels), 1, s.Batch);

    static void ConvForwardKernel(Tensor x, Tensor weight, Tensor y, ConvShape s)
    {
        var device = x.Device;
        int chunk = ConvChunk(s);
        using var col = s.Pointwise ? null : Tensor.Empty(device, chunk * s.KDim * s.Pixels);
        int xImg = s.Cin * s.H * s.W, yImg = s.Cout * s.Pixels;
        for (int b0 = 0; b0 < s.Batch; b0 += chunk)
        {
            int bc = Math.Min(chunk, s.Batch - b0);
            var cs = s with { Batch = bc };
            var xs = x.View.SubView(b0 * xImg, bc * xImg);
            var colView = col is null ? xs : Im2ColLaunch(device, xs, col, cs);
            // y[b] (Cout, P) = W (Cout, KDim) col[b] (KDim, P); W broadcast over the chunk.
            var g = new GemmShape(s.Cout, s.Pixels, s.KDim, bc, 0,
                ABatch: 0, ARow: s.KDim, ACol: 1,
                BBatch: s.KDim * s.Pixels, BRow: s.Pixels, BCol: 1,
                CBatch: yImg, CRow: s.Pixels, Alpha: 1f, Beta: 0f);
            RunGemmKernel(device, weight.View, colView, y.View.SubView(b0 * yImg, bc * yImg), g, GemmVariant.Auto);
        }
    }

    static ArrayView<float> Im2ColLaunch(EdmDevice device, ArrayView<float> x, Tensor col, ConvShape cs)
    {
        int n = cs.Batch * cs.KDim * cs.Pixels;
        int threads = device.LaunchThreads(n);
        var view = col.View.SubView(0, n);
        device.Kernels<Conv2dKernels>().Im2Col(threads, x, view, cs, threads);
        return view;
    }

    static void ConvBackwardDataKernel(Tensor dy, Tensor weight, Tensor dx, ConvShape s)
    {
        var device = dy.Device;
        int chunk = ConvChunk(s);
        using var dcol = s.Pointwise ? null : Tensor.Empty(device, chunk * s.KDim * s.Pixels);
        int xImg = s.Cin * s.H * s.W, yImg = s.Cout * s.Pixels;
        for (int b0 = 0; b0 < s.Batch; b0 += chunk)
        {
            int bc = Math.Min(chunk, s.Batch - b0);
            var cs = s with { Batch = bc };
            var dxs = dx.View.SubView(b0 * xImg, bc * xImg);
            // dcol[b] (KDim, P) = W^T (KDim, Cout) dy[b] (Cout, P).
            var target = dcol is null ? dxs : dcol.View.SubView(0, bc * s.KDim * s.Pixels);
            var g = new GemmShape(s.KDim, s.Pixels, s.Cout, bc, 0,
                ABatch: 0, ARow: 1, ACol: s.KDim,
                BBatch: yImg, BRow: s.Pixels, BCol: 1,
                CBatch: s.KDim * s.Pixels, CRow: s.Pixels, Alpha: 1f, Beta: 0f);
            RunGemmKernel(device, weight.View, dy.View.SubView(b0 * yImg, bc * yImg), target, g, GemmVariant.Auto);
            if (dcol is not null)
            {
                int threads = device.LaunchThreads((long)bc * xImg);
                device.Kernels<Conv2dKernels>().Col2Im(threads, target, dxs, cs, threads);
            }
        }
    }

    /// <summary>Largest per-image dW partial buffer (floats) of the kernel path.</summary>
    const int ConvPartialBudget = 1 << 25;

    static void ConvBackwardWeightKernel(Tensor x, Tensor dy, Tensor dw, ConvShape s, bool accumulate)
    {
        var device = x.Device;
        int wLen = s.Cout * s.KDim;
        // Per-image partial products, then a batch sum: the batched GEMM launches (Cout/64)(KDim/64)
        // groups per image, while Gemm's in-group ReduceBatch would launch that many in all (36 for
        // 128 channels and a 3x3 kernel: too few groups to fill a GPU).
        int chunk = Math.Min(ConvChunk(s), Math.Max(1, ConvPartialBudget / wLen));
        using var col = s.Pointwise ? null : Tensor.Empty(device, chunk * s.KDim * s.Pixels);
        using var partial = Tensor.Empty(device, chunk * wLen);
        int xImg = s.Cin * s.H * s.W, yImg = s.Cout * s.Pixels;
        var k = device.Kernels<Conv2dKernels>();
        for (int b0 = 0; b0 < s.Batch; b0 += chunk)
        {
            int bc = Math.Min(chunk, s.Batch - b0);
            var cs = s with { Batch = bc };
            var xs = x.View.SubView(b0 * xImg, bc * xImg);
            var colView = col is null ? xs : Im2ColLaunch(device, xs, col, cs);
            // partial[b] (Cout, KDim) = dy[b] (Cout, P) col[b]^T (P, KDim).
            var g = new GemmShape(s.Cout, s.KDim, s.Pixels, bc, 0,
                ABatch: yImg, ARow: s.Pixels, ACol: 1,
                BBatch: s.KDim * s.Pixels, BRow: 1, BCol: s.Pixels,
                CBatch: wLen, CRow: s.KDim, Alpha: 1f, Beta: 0f);
            var pv = partial.View.SubView(0, bc * wLen);
            RunGemmKernel(device, dy.View.SubView(b0 * yImg, bc * yImg), colView, pv, g, GemmVariant.Auto);
            int threads = device.LaunchThreads(wLen);
            k.SumBatch(threads, pv, dw.View, bc, accumulate || b0 > 0 ? 1f : 0f, threads);
        }
    }

    // ---- CPU fast path ----

    // im2col / col2im on the CPU. For a "same" convolution (stride 1, Ho = H, Wo = W: every conv of
    // the EDM networks) row r = (ci, ky, kx) of col is the plane x[ci] shifted by
    // d = (ky - pt) W + (kx - pl) in flat index: one contiguous copy (zeros where n + d leaves the
    // plane), then the |kx - pl| columns per row that wrapped around a row edge are zeroed. (A pixel
    // whose source row is outside the image but whose column is inside lands outside the plane, so
    // the flat bounds handle rows.) One copy per (ci, ky, kx) instead of one per (ci, ky, kx, oy): at
    // 16x16 and 16 channels the per-row copies cost more than the GEMM. Other shapes copy row
    // segments (stride 1 in x) or gather every sw-th value (strided).

    /// <summary>col (Cin*kh*kw, Ho*Wo) of one image x (Cin, H, W).</summary>
    static void Im2ColCpu(ReadOnlySpan<float> x, Span<float> col, ConvShape s)
    {
        if (!s.Same)
        {
            Im2ColSegments(x, col, s);
            return;
        }
        int w = s.W, p = s.H * s.W;
        for (int ci = 0; ci < s.Cin; ci++)
            for (int ky = 0; ky < s.KH; ky++)
                for (int kx = 0; kx < s.KW; kx++)
                {
                    int r = (ci * s.KH + ky) * s.KW + kx, dx = kx - s.PadL, d = (ky - s.PadT) * w + dx;
                    var dst = col.Slice(r * p, p);
                    int lo = Math.Clamp(-d, 0, p), hi = Math.Clamp(p - d, lo, p);
                    dst[..lo].Clear();
                    if (hi > lo) x.Slice(ci * p + lo + d, hi - lo).CopyTo(dst[lo..hi]);
                    dst[hi..].Clear();
                    ZeroWrappedColumns(dst, s.H, w, dx);
                }
    }

    /// <summary>Zeroes, in each row of a (rows, w) plane, the columns ox with ox + dx outside [0, w).</summary>
    static void ZeroWrappedColumns(Span<float> plane, int rows, int w, int dx)
    {
        if (dx == 0) return;
        int c0 = dx > 0 ? w - dx : 0, n = Math.Min(Math.Abs(dx), w);
        for (int oy = 0; oy < rows; oy++) plane.Slice(oy * w + c0, n).Clear();
    }

    /// <summary>The output columns [lo, hi) whose input column ox sw + kx - pl lies inside [0, W).</summary>
    static (int Lo, int Hi) ValidColumns(ConvShape s, int kx)
    {
        int a = s.PadL - kx;                                   // need ox sw >= a and ox sw <= W - 1 + a
        int lo = a <= 0 ? 0 : (a + s.SW - 1) / s.SW;
        int top = s.W - 1 + a;
        int hi = top < 0 ? 0 : Math.Min(s.Wo, top / s.SW + 1);
        return (lo, Math.Max(lo, hi));
    }

    /// <summary>col of one image for any geometry: each (r, oy) row segment is a copy (stride 1) or a strided gather.</summary>
    static void Im2ColSegments(ReadOnlySpan<float> x, Span<float> col, ConvShape s)
    {
        for (int ci = 0; ci < s.Cin; ci++)
            for (int ky = 0; ky < s.KH; ky++)
                for (int kx = 0; kx < s.KW; kx++)
                {
                    int r = (ci * s.KH + ky) * s.KW + kx;
                    var (oxLo, oxHi) = ValidColumns(s, kx);
                    for (int oy = 0; oy < s.Ho; oy++)
                    {
                        var dst = col.Slice(r * s.Pixels + oy * s.Wo, s.Wo);
                        int iy = oy * s.SH + ky - s.PadT;
                        if (iy < 0 || iy >= s.H || oxLo >= oxHi) { dst.Clear(); continue; }
                        dst[..oxLo].Clear();
                        var src = x.Slice((ci * s.H + iy) * s.W);
                        int ix0 = oxLo * s.SW + kx - s.PadL;
                        if (s.SW == 1) src.Slice(ix0, oxHi - oxLo).CopyTo(dst[oxLo..oxHi]);
                        else for (int ox = oxLo, ix = ix0; ox < oxHi; ox++, ix += s.SW) dst[ox] = src[ix];
                        dst[oxHi..].Clear();
                    }
                }
    }

    /// <summary>
    /// dx (Cin, H, W) += col2im(dcol (Cin*kh*kw, Ho*Wo)) for one image. For a "same" convolution the
    /// wrapped columns of each dcol row are zeroed (dcol is scratch) and the row is added to the
    /// shifted plane in one pass; other shapes add row segments (or scatter every sw-th value).
    /// </summary>
    static void Col2ImCpu(Span<float> dcol, Span<float> dx, ConvShape s)
    {
        bool same = s.Same;
        int p = s.H * s.W;
        for (int ci = 0; ci < s.Cin; ci++)
            for (int ky = 0; ky < s.KH; ky++)
                for (int kx = 0; kx < s.KW; kx++)
                {
                    int r = (ci * s.KH + ky) * s.KW + kx;
                    if (same)
                    {
                        int sx = kx - s.PadL, d = (ky - s.PadT) * s.W + sx;
                        var src = dcol.Slice(r * p, p);
                        ZeroWrappedColumns(src, s.H, s.W, sx);
                        int lo = Math.Clamp(-d, 0, p), hi = Math.Clamp(p - d, lo, p);
                        if (hi == lo) continue;
                        var dst = dx.Slice(ci * p + lo + d, hi - lo);
                        System.Numerics.Tensors.TensorPrimitives.Add(dst, src[lo..hi], dst);
                        continue;
                    }
                    var (oxLo, oxHi) = ValidColumns(s, kx);
                    if (oxLo >= oxHi) continue;
                    for (int oy = 0; oy < s.Ho; oy++)
                    {
                        int iy = oy * s.SH + ky - s.PadT;
                        if (iy < 0 || iy >= s.H) continue;
                        int ix0 = oxLo * s.SW + kx - s.PadL;
                        var row = dx.Slice((ci * s.H + iy) * s.W);
                        var g = dcol.Slice(r * s.Pixels + oy * s.Wo);
                        if (s.SW == 1)
                        {
                            var seg = row.Slice(ix0, oxHi - oxLo);
                            System.Numerics.Tensors.TensorPrimitives.Add(seg, g.Slice(oxLo, oxHi - oxLo), seg);
                        }
                        else for (int ox = oxLo, ix = ix0; ox < oxHi; ox++, ix += s.SW) row[ix] += g[ox];
                    }
                }
    }

    /// <summary>Runs body(b, threadsForGemm) over images: in parallel with serial GEMMs when B >= 2.</summary>
    static void ForEachImage(int batch, Action<int, int> body)
    {
        int cores = Environment.ProcessorCount;
        if (batch >= 2 && cores > 1)
            Parallel.For(0, batch, new ParallelOptions { MaxDegreeOfParallelism = cores }, b => body(b, 1));
        else
            for (int b = 0; b < batch; b++) body(b, cores);
    }

    // The forward product y[b] = W col[b] (+ bias) of a "same" convolution never materialises col:
    // per image, the column-shifted planes of x (ShiftedPlanes, KW times x) are filled once; the
    // Vector512 micro-kernels read col's rows from them in place (RunDirect), other ISAs copy each
    // B panel row from them (SameConvPanels); the GEMM's first depth block stores C with the bias
    // (no clearing pass, no bias pass). Other geometries build col (Im2ColCpu) and pack it.
    static unsafe void ConvForwardCpu(Tensor x, Tensor weight, Tensor? bias, Tensor y, ConvShape s)
    {
        fixed (float* px = x.CpuSpan(), pw = weight.CpuSpan(), py = y.CpuSpan(), pbias = bias is null ? Span<float>.Empty : bias.CpuSpan())
            ConvForwardCpu(px, pw, bias is null ? null : pbias, py, s, x.Device.AllowWinograd);
    }

    /// <summary>
    /// y (B, Cout, Ho, Wo) = conv(x, W) (+ bias when not null) over raw CPU buffers; by Winograd's
    /// F(2x2, 3x3) when <paramref name="winograd"/> and the shape allows it (ConvWinogradCpu.cs).
    /// </summary>
    static unsafe void ConvForwardCpu(float* px, float* pw, float* pbias, float* py, ConvShape s, bool winograd)
    {
        if (winograd && WinogradConv.Supported(s))
        {
            WinogradConv.Forward(px, pw, pbias, py, s);
            return;
        }
        int xImg = s.Cin * s.H * s.W, yImg = s.Cout * s.Pixels, colLen = s.KDim * s.Pixels;
        var g = new GemmShape(s.Cout, s.Pixels, s.KDim, 1, 0, 0, s.KDim, 1, 0, s.Pixels, 1, 0, s.Pixels, 1f, 0f);
        bool panels = s.Same && !s.Pointwise;
        int nr = GemmCpu.PanelWidth;
        var (halo, len) = ShiftedPlanes.Layout(s);
        int planesLen = s.KW * s.Cin * len + nr + 16;                  // the last panel may read nr past the last plane
        // The weight (GEMM A) is packed once for all images instead of once per image.
        float[]? packedW = panels ? ArrayPool<float>.Shared.Rent(GemmCpu.PackedLength(g)) : null;
        // With the Vector512 micro-kernels B is not packed at all: row r = (ci, ky, kx) of a panel is
        // read where tap r's shifted plane starts (offsets[r]) plus the panel's first pixel.
        bool direct = panels && GemmCpu.Wide;
        int[]? offsets = direct ? new int[s.KDim] : null;
        if (offsets is not null)
            for (int r = 0; r < s.KDim; r++)
            {
                int ci = r / (s.KH * s.KW), ky = r / s.KW % s.KH, kx = r % s.KW;
                offsets[r] = (kx * s.Cin + ci) * len + halo + (ky - s.PadT) * s.W;
            }
        try
        {
            fixed (float* ppw = packedW)
            fixed (int* poff = offsets)
            {
                if (panels) GemmCpu.PackWhole(pw, g, ppw);
                nint ax = (nint)px, aw = (nint)pw, ay = (nint)py, ab = (nint)pbias, apw = (nint)ppw, aoff = (nint)poff;
                ForEachImage(s.Batch, (b, threads) =>
                {
                    float* xb = (float*)ax + (long)b * xImg, yb = (float*)ay + (long)b * yImg;
                    if (s.Pointwise)
                    {
                        GemmHost((float*)aw, xb, yb, g, threads, (float*)ab);
                        return;
                    }
                    if (panels)
                    {
                        float[] planes = ArrayPool<float>.Shared.Rent(planesLen);
                        try
                        {
                            fixed (float* raw = planes)
                            {
                                float* pl = ShiftedPlanes.Align64(raw);
                                new Span<float>(pl + s.KW * s.Cin * len, nr).Clear();
                                for (int q = 0; q < s.KW * s.Cin; q++) ShiftedPlanes.Fill(xb, pl, s, 0, q, halo, len);
                                if (direct) GemmCpu.RunDirect((float*)apw, pl, (int*)aoff, yb, g, threads, (float*)ab);
                                else GemmCpu.RunPacked((float*)aw, new SameConvPanels(pl, s, halo, len), yb, g, threads, (float*)ab, (float*)apw);
                            }
                        }
                        finally { ArrayPool<float>.Shared.Return(planes); }
                        return;
                    }
                    float[] col = ArrayPool<float>.Shared.Rent(colLen);
                    try
                    {
                        fixed (float* pc = col)
                        {
                            Im2ColCpu(new ReadOnlySpan<float>(xb, xImg), new Span<float>(pc, colLen), s);
                            GemmHost((float*)aw, pc, yb, g, threads, (float*)ab);
                        }
                    }
                    finally { ArrayPool<float>.Shared.Return(col); }
                });
            }
        }
        finally { if (packedW is not null) ArrayPool<float>.Shared.Return(packedW); }
    }

    // Backward-data of a "same" convolution is itself a "same" convolution: dx = conv(dy, W'),
    // W'[ci, co, ky, kx] = W[co, ci, kh-1-ky, kw-1-kx], padding kh-1-pt on top and kw-1-pl on the
    // left (dx[ci, iy, ix] sums W[co, ci, ky, kx] dy[co, iy - ky + pt, ix - kx + pl]; substitute
    // ky' = kh-1-ky). So it runs the forward's panel path (no dcol matrix, 9x dx for a 3x3 kernel,
    // and no col2im pass); the flipped weight is Cout*Cin*kh*kw floats. Other geometries: GEMM
    // into dcol, then col2im.
    static unsafe void ConvBackwardDataCpu(Tensor dy, Tensor weight, Tensor dx, ConvShape s)
    {
        if (s.Same && !s.Pointwise)
        {
            var t2 = s with { Cin = s.Cout, Cout = s.Cin, PadT = s.KH - 1 - s.PadT, PadL = s.KW - 1 - s.PadL };
            if (dy.Device.AllowWinograd && WinogradConv.Supported(t2))
            {
                // The flip is folded into Winograd's weight transform.
                fixed (float* pdy = dy.CpuSpan(), pw = weight.CpuSpan(), pdx = dx.CpuSpan())
                    WinogradConv.Forward(pdy, pw, null, pdx, t2, flipped: true);
                return;
            }
            int taps = s.KH * s.KW;
            var flipped = ArrayPool<float>.Shared.Rent(s.Cout * s.KDim);
            try
            {
                var w = weight.CpuSpan();
                for (int co = 0; co < s.Cout; co++)
                    for (int ci = 0; ci < s.Cin; ci++)
                    {
                        int src = (co * s.Cin + ci) * taps, dst = (ci * s.Cout + co) * taps;
                        for (int t = 0; t < taps; t++) flipped[dst + taps - 1 - t] = w[src + t];
                    }
                fixed (float* pdy = dy.CpuSpan(), pf = flipped, pdx = dx.CpuSpan())
                    ConvForwardCpu(pdy, pf, null, pdx, t2, winograd: false);
            }
            finally { ArrayPool<float>.Shared.Return(flipped); }
            return;
        }
        int xImg = s.Cin * s.H * s.W, yImg = s.Cout * s.Pixels, colLen = s.KDim * s.Pixels;
        var g = new GemmShape(s.KDim, s.Pixels, s.Cout, 1, 0, 0, 1, s.KDim, 0, s.Pixels, 1, 0, s.Pixels, 1f, 0f);
        fixed (float* pdy = dy.CpuSpan(), pw = weight.CpuSpan(), pdx = dx.CpuSpan())
        {
            nint ady = (nint)pdy, aw = (nint)pw, adx = (nint)pdx;
            ForEachImage(s.Batch, (b, threads) =>
            {
                float* dyb = (float*)ady + (long)b * yImg;
                float* dxb = (float*)adx + (long)b * xImg;
                if (s.Pointwise)
                {
                    GemmHost((float*)aw, dyb, dxb, g, threads);
                    return;
                }
                float[] dcol = ArrayPool<float>.Shared.Rent(colLen);
                try
                {
                    fixed (float* pc = dcol)
                    {
                        GemmHost((float*)aw, dyb, pc, g, threads);
                        var dxs = new Span<float>(dxb, xImg);
                        dxs.Clear();
                        Col2ImCpu(new Span<float>(pc, colLen), dxs, s);
                    }
                }
                finally { ArrayPool<float>.Shared.Return(dcol); }
            });
        }
    }

    static unsafe void ConvBackwardWeightCpu(Tensor x, Tensor dy, Tensor dw, ConvShape s, bool accumulate)
    {
        int xImg = s.Cin * s.H * s.W, yImg = s.Cout * s.Pixels, colLen = s.KDim * s.Pixels, wLen = s.Cout * s.KDim;
        // Computed transposed, dW^T (KDim, Cout) += col[b] (KDim, P) dy[b]^T (P, Cout): the large
        // operand col is then read along its rows when packed, and only dy (Cout x P, the smaller)
        // is gathered across rows; dW = dW^T^T is added at the end. (dW = dy col^T packed col^T,
        // a strided gather of KDim x P floats per image, which dominated at small channel counts.)
        // 3x3 same convolutions with >= 32 channels: Winograd F(2x2, 3x3) (ConvWinogradCpu.cs); other
        // same convolutions: the direct dot products (ConvWeightGradCpu.cs); the rest: im2col + GEMM.
        if (x.Device.AllowWinograd && WinogradConv.SupportsWeightGrad(s))
        {
            fixed (float* px = x.CpuSpan(), pdy = dy.CpuSpan(), pdw = dw.CpuSpan())
                WinogradConv.WeightGrad(px, pdy, pdw, s, accumulate);
            return;
        }
        if (SameConvWeightGrad.Supported(s))
        {
            fixed (float* px = x.CpuSpan(), pdy = dy.CpuSpan(), pdw = dw.CpuSpan())
                SameConvWeightGrad.Run(px, pdy, pdw, s, accumulate);
            return;
        }
        var g = new GemmShape(s.KDim, s.Cout, s.Pixels, 1, 0, 0, s.Pixels, 1, 0, 1, s.Pixels, 0, s.Cout, 1f, 1f);
        var dws = dw.CpuSpan();
        if (!accumulate) dws.Clear();
        int cores = Environment.ProcessorCount;
        fixed (float* px = x.CpuSpan(), pdy = dy.CpuSpan(), pdw = dws)
        {
            nint ax = (nint)px, ady = (nint)pdy;
            void OneImage(int b, float* target, int threads)
            {
                float* xb = (float*)ax + (long)b * xImg;
                float* dyb = (float*)ady + (long)b * yImg;
                if (s.Pointwise)
                {
                    GemmHost(xb, dyb, target, g, threads);
                    return;
                }
                float[] col = ArrayPool<float>.Shared.Rent(colLen);
                try
                {
                    fixed (float* pc = col)
                    {
                        Im2ColCpu(new ReadOnlySpan<float>(xb, xImg), new Span<float>(pc, colLen), s);
                        GemmHost(pc, dyb, target, g, threads);
                    }
                }
                finally { ArrayPool<float>.Shared.Return(col); }
            }
            // Images are cut into groups fixed by the batch size alone; each group sums its images in
            // order into its own dW^T, and the groups are added in order: the same bits whatever the
            // thread count or scheduling (a reduction partitioned by index, not by worker).
            int groups = Math.Min(s.Batch, DeterministicChunks.MaxChunks / 2);
            float[][] partials = groups == 1
                ? [SumImages(0, s.Batch, cores)]
                : DeterministicChunks.Map(s.Batch, groups, (b0, count) => SumImages(b0, count, 1));

            float[] SumImages(int b0, int count, int threads)
            {
                var partial = ArrayPool<float>.Shared.Rent(wLen);
                Array.Clear(partial, 0, wLen);
                fixed (float* pp = partial)
                    for (int b = b0; b < b0 + count; b++) OneImage(b, pp, threads);
                return partial;
            }

            var total = partials[0];
            for (int q = 1; q < partials.Length; q++)
            {
                System.Numerics.Tensors.TensorPrimitives.Add(total.AsSpan(0, wLen), partials[q].AsSpan(0, wLen), total.AsSpan(0, wLen));
                ArrayPool<float>.Shared.Return(partials[q]);
            }
            for (int co = 0; co < s.Cout; co++)                      // dW[co, r] += dW^T[r, co]
            {
                float* row = pdw + (long)co * s.KDim;
                for (int r = 0; r < s.KDim; r++) row[r] += total[r * s.Cout + co];
            }
            ArrayPool<float>.Shared.Return(total);
        }
    }
}

/// <summary>
/// im2col of one image of a "same" convolution (stride 1, output the size of the input) written
/// straight into the GEMM's B panels: row r = (ci, ky, kx) of panel j holds the nr output pixels
/// [j nr, j nr + nr) of tap r's shifted plane, a contiguous run of the image's
/// <see cref="ShiftedPlanes"/> (filled once per image), so each panel row is a plain vector copy.
/// The last panel may read past the plane's pixels: those columns of the product are never stored.
/// </summary>
internal readonly unsafe struct SameConvPanels(float* planes, ConvShape s, int halo, int len) : IBPanelPacker
{
    readonly float* P = planes;

    public void PackPanel(int j, int p0, int kc, float* dst, int nr)
    {
        int taps = s.KH * s.KW, n0 = j * nr;
        int ci = p0 / taps, ky = p0 % taps / s.KW, kx = p0 % s.KW;
        int vw = Vector<float>.Count;
        for (int k = 0; k < kc; k++, dst += nr)
        {
            float* src = P + ((long)kx * s.Cin + ci) * len + halo + (ky - s.PadT) * s.W + n0;
            for (int jj = 0; jj < nr; jj += vw)
                Unsafe.WriteUnaligned(dst + jj, Unsafe.ReadUnaligned<Vector<float>>(src + jj));
            if (++kx == s.KW)
            {
                kx = 0;
                if (++ky == s.KH) { ky = 0; ci++; }
            }
        }
    }
}

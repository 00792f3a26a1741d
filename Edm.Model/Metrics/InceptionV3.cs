// The FID Inception-v3 feature network: the 2048 pool3 features of the Inception model that
// TensorFlow's FID used (inception-2015-12-05), as pytorch-fid ports it (mseitzer/pytorch-fid,
// src/pytorch_fid/inception.py: torchvision's Inception3 with its Mixed_5b..5d, 6b..6e, 7b, 7c
// replaced by the FIDInceptionA / C / E_1 / E_2 variants). Written from the architecture; the
// parameter names are PyTorch's ("Mixed_6b.branch7x7_2.conv.weight", "...bn.running_var"), so
// the converted pt_inception weights load (scripts/inception_parity.py writes such files).
//
//   input (B, 3, H, W) in [0, 1] -> bilinear resize to 299 x 299 (align_corners=False) -> 2x - 1
//   block 0: Conv2d_1a_3x3 (3->32, 3x3 stride 2), Conv2d_2a_3x3 (32->32, 3x3), Conv2d_2b_3x3
//            (32->64, 3x3 pad 1), max pool 3 stride 2                        -> (B, 64, 73, 73)
//   block 1: Conv2d_3b_1x1 (64->80), Conv2d_4a_3x3 (80->192, 3x3), max pool 3 stride 2
//                                                                             -> (B, 192, 35, 35)
//   block 2: Mixed_5b, 5c, 5d (A: 256, 288, 288 channels), Mixed_6a (B: grid 35 -> 17, 768),
//            Mixed_6b..6e (C, channels_7x7 = 128, 160, 160, 192)              -> (B, 768, 17, 17)
//   block 3: Mixed_7a (D: grid 17 -> 8, 1280), Mixed_7b (E_1, 2048), Mixed_7c (E_2, 2048),
//            adaptive average pool to 1 x 1                                    -> (B, 2048, 1, 1)
// Every conv is a BasicConv2d: conv without bias, BatchNorm2d(eps = 0.001), ReLU. The FID blocks
// differ from torchvision's in their pool branch: A, C and E_1 average 3x3 stride 1 padding 1
// without counting the padding (TensorFlow's pooling); E_2 takes a 3x3 stride 1 max pool instead.
// Widths: every channel count divided by WidthDivisor (1, 2, 4, 8 or 16) gives the reduced-width
// variants the parity fixture uses; 1 is the real network.
using Edm.Autograd;
using Edm.Kernels;
using Edm.Model.IO;
using Edm.Model.Modules;

namespace Edm.Model.Metrics;

/// <summary>BasicConv2d: conv (no bias), batch norm (eps 0.001), ReLU.</summary>
public sealed class BasicConv2d : Module
{
    readonly TorchConv2d _conv;
    readonly BatchNorm2d _bn;

    /// <summary>Output channels.</summary>
    public int OutChannels { get; }

    /// <summary>Creates the unit with kernel (kh, kw) and geometry <paramref name="p"/>.</summary>
    public BasicConv2d(InitContext ctx, int inChannels, int outChannels, int kh, int kw, Conv2dParams p) : base(ctx.Device)
    {
        OutChannels = outChannels;
        _conv = RegisterModule("conv", new TorchConv2d(ctx, inChannels, outChannels, kh, kw, p));
        _bn = RegisterModule("bn", new BatchNorm2d(ctx.Device, outChannels, eps: 1e-3f));
    }

    /// <summary>Square kernel k, stride s, symmetric padding pad.</summary>
    public BasicConv2d(InitContext ctx, int inChannels, int outChannels, int k, int stride = 1, int pad = 0)
        : this(ctx, inChannels, outChannels, k, k, Conv2dParams.Symmetric(stride, stride, pad, pad)) { }

    /// <summary>relu(bn(conv(x))).</summary>
    public Variable Forward(Variable x)
    {
        var c = _conv.Forward(x);
        var b = _bn.Forward(c);
        var y = Fn.Relu(b);
        Inception.Release(c, b);
        return y;
    }
}

/// <summary>Shared helpers of the Inception blocks.</summary>
internal static class Inception
{
    /// <summary>Frees intermediates at once when nothing records them (inference keeps memory at a few layers).</summary>
    public static void Release(params Variable[] xs)
    {
        if (Tape.IsRecording) return;
        foreach (var x in xs) x.Dispose();
    }

    /// <summary>Concatenates branches along channels, freeing them in inference.</summary>
    public static Variable Cat(params Variable[] branches)
    {
        var y = Fn.Concat(1, branches);
        Release(branches);
        return y;
    }

    /// <summary>3x3 stride-1 padding-1 pooling of the FID pool branches.</summary>
    public static readonly Conv2dParams Same3 = Conv2dParams.Pad(1);
    /// <summary>3x3 stride-2 grid reduction without padding.</summary>
    public static readonly Conv2dParams Reduce3 = Conv2dParams.Symmetric(2, 2, 0, 0);
    /// <summary>1x7 same.</summary>
    public static readonly Conv2dParams Row7 = Conv2dParams.Symmetric(1, 1, 0, 3);
    /// <summary>7x1 same.</summary>
    public static readonly Conv2dParams Col7 = Conv2dParams.Symmetric(1, 1, 3, 0);
    /// <summary>1x3 same.</summary>
    public static readonly Conv2dParams Row3 = Conv2dParams.Symmetric(1, 1, 0, 1);
    /// <summary>3x1 same.</summary>
    public static readonly Conv2dParams Col3 = Conv2dParams.Symmetric(1, 1, 1, 0);
}

/// <summary>FIDInceptionA: 1x1 | 1x1, 5x5 | 1x1, 3x3, 3x3 | avg pool (no padding counted), 1x1.</summary>
public sealed class InceptionA : Module
{
    readonly BasicConv2d _b1, _b5a, _b5b, _b3a, _b3b, _b3c, _pool;

    /// <summary>Output channels: (64 + 64 + 96) / d + poolFeatures.</summary>
    public int OutChannels { get; }

    /// <summary>Creates the block; <paramref name="d"/> divides every width.</summary>
    public InceptionA(InitContext ctx, int inChannels, int poolFeatures, int d) : base(ctx.Device)
    {
        _b1 = RegisterModule("branch1x1", new BasicConv2d(ctx, inChannels, 64 / d, 1));
        _b5a = RegisterModule("branch5x5_1", new BasicConv2d(ctx, inChannels, 48 / d, 1));
        _b5b = RegisterModule("branch5x5_2", new BasicConv2d(ctx, 48 / d, 64 / d, 5, pad: 2));
        _b3a = RegisterModule("branch3x3dbl_1", new BasicConv2d(ctx, inChannels, 64 / d, 1));
        _b3b = RegisterModule("branch3x3dbl_2", new BasicConv2d(ctx, 64 / d, 96 / d, 3, pad: 1));
        _b3c = RegisterModule("branch3x3dbl_3", new BasicConv2d(ctx, 96 / d, 96 / d, 3, pad: 1));
        _pool = RegisterModule("branch_pool", new BasicConv2d(ctx, inChannels, poolFeatures, 1));
        OutChannels = (64 + 64 + 96) / d + poolFeatures;
    }

    /// <summary>(B, in, H, W) -> (B, OutChannels, H, W).</summary>
    public Variable Forward(Variable x)
    {
        var a = _b1.Forward(x);
        var t = _b5a.Forward(x);
        var b = _b5b.Forward(t);
        Inception.Release(t);
        var u = _b3a.Forward(x);
        var v = _b3b.Forward(u);
        var c = _b3c.Forward(v);
        Inception.Release(u, v);
        var p = Fn.AvgPool2d(x, 3, 3, Inception.Same3, countIncludePad: false);
        var e = _pool.Forward(p);
        Inception.Release(p);
        return Inception.Cat(a, b, c, e);
    }
}

/// <summary>InceptionB (Mixed_6a): 3x3 stride 2 | 1x1, 3x3, 3x3 stride 2 | max pool 3 stride 2.</summary>
public sealed class InceptionB : Module
{
    readonly BasicConv2d _b3, _d1, _d2, _d3;

    /// <summary>Output channels: (384 + 96) / d + in.</summary>
    public int OutChannels { get; }

    /// <summary>Creates the block.</summary>
    public InceptionB(InitContext ctx, int inChannels, int d) : base(ctx.Device)
    {
        _b3 = RegisterModule("branch3x3", new BasicConv2d(ctx, inChannels, 384 / d, 3, stride: 2));
        _d1 = RegisterModule("branch3x3dbl_1", new BasicConv2d(ctx, inChannels, 64 / d, 1));
        _d2 = RegisterModule("branch3x3dbl_2", new BasicConv2d(ctx, 64 / d, 96 / d, 3, pad: 1));
        _d3 = RegisterModule("branch3x3dbl_3", new BasicConv2d(ctx, 96 / d, 96 / d, 3, stride: 2));
        OutChannels = (384 + 96) / d + inChannels;
    }

    /// <summary>(B, in, H, W) -> (B, OutChannels, (H-3)/2+1, (W-3)/2+1).</summary>
    public Variable Forward(Variable x)
    {
        var a = _b3.Forward(x);
        var t = _d1.Forward(x);
        var u = _d2.Forward(t);
        var b = _d3.Forward(u);
        Inception.Release(t, u);
        var p = Fn.MaxPool2d(x, 3, 3, Inception.Reduce3);
        return Inception.Cat(a, b, p);
    }
}

/// <summary>FIDInceptionC: 1x1 | 1x1, 1x7, 7x1 | 1x1, 7x1, 1x7, 7x1, 1x7 | avg pool (no padding counted), 1x1.</summary>
public sealed class InceptionC : Module
{
    readonly BasicConv2d _b1, _s1, _s2, _s3, _d1, _d2, _d3, _d4, _d5, _pool;

    /// <summary>Output channels: 768 / d.</summary>
    public int OutChannels { get; }

    /// <summary>Creates the block; <paramref name="c7"/> is channels_7x7 (already divided by d).</summary>
    public InceptionC(InitContext ctx, int inChannels, int c7, int d) : base(ctx.Device)
    {
        int o = 192 / d;
        _b1 = RegisterModule("branch1x1", new BasicConv2d(ctx, inChannels, o, 1));
        _s1 = RegisterModule("branch7x7_1", new BasicConv2d(ctx, inChannels, c7, 1));
        _s2 = RegisterModule("branch7x7_2", new BasicConv2d(ctx, c7, c7, 1, 7, Inception.Row7));
        _s3 = RegisterModule("branch7x7_3", new BasicConv2d(ctx, c7, o, 7, 1, Inception.Col7));
        _d1 = RegisterModule("branch7x7dbl_1", new BasicConv2d(ctx, inChannels, c7, 1));
        _d2 = RegisterModule("branch7x7dbl_2", new BasicConv2d(ctx, c7, c7, 7, 1, Inception.Col7));
        _d3 = RegisterModule("branch7x7dbl_3", new BasicConv2d(ctx, c7, c7, 1, 7, Inception.Row7));
        _d4 = RegisterModule("branch7x7dbl_4", new BasicConv2d(ctx, c7, c7, 7, 1, Inception.Col7));
        _d5 = RegisterModule("branch7x7dbl_5", new BasicConv2d(ctx, c7, o, 1, 7, Inception.Row7));
        _pool = RegisterModule("branch_pool", new BasicConv2d(ctx, inChannels, o, 1));
        OutChannels = 4 * o;
    }

    /// <summary>(B, in, H, W) -> (B, OutChannels, H, W).</summary>
    public Variable Forward(Variable x)
    {
        var a = _b1.Forward(x);
        var b = Chain(x, _s1, _s2, _s3);
        var c = Chain(x, _d1, _d2, _d3, _d4, _d5);
        var p = Fn.AvgPool2d(x, 3, 3, Inception.Same3, countIncludePad: false);
        var e = _pool.Forward(p);
        Inception.Release(p);
        return Inception.Cat(a, b, c, e);
    }

    static Variable Chain(Variable x, params BasicConv2d[] units)
    {
        var h = x;
        foreach (var u in units)
        {
            var next = u.Forward(h);
            if (!ReferenceEquals(h, x)) Inception.Release(h);
            h = next;
        }
        return h;
    }
}

/// <summary>InceptionD (Mixed_7a): 1x1, 3x3 stride 2 | 1x1, 1x7, 7x1, 3x3 stride 2 | max pool 3 stride 2.</summary>
public sealed class InceptionD : Module
{
    readonly BasicConv2d _a1, _a2, _b1, _b2, _b3, _b4;

    /// <summary>Output channels: (320 + 192) / d + in.</summary>
    public int OutChannels { get; }

    /// <summary>Creates the block.</summary>
    public InceptionD(InitContext ctx, int inChannels, int d) : base(ctx.Device)
    {
        _a1 = RegisterModule("branch3x3_1", new BasicConv2d(ctx, inChannels, 192 / d, 1));
        _a2 = RegisterModule("branch3x3_2", new BasicConv2d(ctx, 192 / d, 320 / d, 3, stride: 2));
        _b1 = RegisterModule("branch7x7x3_1", new BasicConv2d(ctx, inChannels, 192 / d, 1));
        _b2 = RegisterModule("branch7x7x3_2", new BasicConv2d(ctx, 192 / d, 192 / d, 1, 7, Inception.Row7));
        _b3 = RegisterModule("branch7x7x3_3", new BasicConv2d(ctx, 192 / d, 192 / d, 7, 1, Inception.Col7));
        _b4 = RegisterModule("branch7x7x3_4", new BasicConv2d(ctx, 192 / d, 192 / d, 3, stride: 2));
        OutChannels = (320 + 192) / d + inChannels;
    }

    /// <summary>(B, in, H, W) -> (B, OutChannels, (H-3)/2+1, (W-3)/2+1).</summary>
    public Variable Forward(Variable x)
    {
        var t = _a1.Forward(x);
        var a = _a2.Forward(t);
        var u = _b1.Forward(x);
        var v = _b2.Forward(u);
        var w = _b3.Forward(v);
        var b = _b4.Forward(w);
        Inception.Release(t, u, v, w);
        var p = Fn.MaxPool2d(x, 3, 3, Inception.Reduce3);
        return Inception.Cat(a, b, p);
    }
}

/// <summary>
/// FIDInceptionE_1 / E_2: 1x1 | 1x1, (1x3 ++ 3x1) | 1x1, 3x3, (1x3 ++ 3x1) | pool, 1x1; the pool is
/// an average without the padding (E_1, Mixed_7b) or a max (E_2, Mixed_7c).
/// </summary>
public sealed class InceptionE : Module
{
    readonly BasicConv2d _b1, _s1, _s2a, _s2b, _d1, _d2, _d3a, _d3b, _pool;
    readonly bool _maxPool;

    /// <summary>Output channels: 2048 / d.</summary>
    public int OutChannels { get; }

    /// <summary>Creates the block; <paramref name="maxPool"/> selects E_2.</summary>
    public InceptionE(InitContext ctx, int inChannels, bool maxPool, int d) : base(ctx.Device)
    {
        _maxPool = maxPool;
        int c384 = 384 / d;
        _b1 = RegisterModule("branch1x1", new BasicConv2d(ctx, inChannels, 320 / d, 1));
        _s1 = RegisterModule("branch3x3_1", new BasicConv2d(ctx, inChannels, c384, 1));
        _s2a = RegisterModule("branch3x3_2a", new BasicConv2d(ctx, c384, c384, 1, 3, Inception.Row3));
        _s2b = RegisterModule("branch3x3_2b", new BasicConv2d(ctx, c384, c384, 3, 1, Inception.Col3));
        _d1 = RegisterModule("branch3x3dbl_1", new BasicConv2d(ctx, inChannels, 448 / d, 1));
        _d2 = RegisterModule("branch3x3dbl_2", new BasicConv2d(ctx, 448 / d, c384, 3, pad: 1));
        _d3a = RegisterModule("branch3x3dbl_3a", new BasicConv2d(ctx, c384, c384, 1, 3, Inception.Row3));
        _d3b = RegisterModule("branch3x3dbl_3b", new BasicConv2d(ctx, c384, c384, 3, 1, Inception.Col3));
        _pool = RegisterModule("branch_pool", new BasicConv2d(ctx, inChannels, 192 / d, 1));
        OutChannels = (320 + 4 * 384 + 192) / d;
    }

    /// <summary>(B, in, H, W) -> (B, OutChannels, H, W).</summary>
    public Variable Forward(Variable x)
    {
        var a = _b1.Forward(x);
        var t = _s1.Forward(x);
        var b = Inception.Cat(_s2a.Forward(t), _s2b.Forward(t));
        Inception.Release(t);
        var u = _d1.Forward(x);
        var v = _d2.Forward(u);
        var c = Inception.Cat(_d3a.Forward(v), _d3b.Forward(v));
        Inception.Release(u, v);
        var p = _maxPool ? Fn.MaxPool2d(x, 3, 3, Inception.Same3) : Fn.AvgPool2d(x, 3, 3, Inception.Same3, countIncludePad: false);
        var e = _pool.Forward(p);
        Inception.Release(p);
        return Inception.Cat(a, b, c, e);
    }
}

/// <summary>The FID Inception-v3 (see the file header): images in [0, 1] to pool3 features.</summary>
public sealed class InceptionV3 : Module
{
    /// <summary>Pool3 features of the full-width network.</summary>
    public const int FullFeatureDim = 2048;
    /// <summary>Input size the images are resized to.</summary>
    public const int InputSize = 299;
    /// <summary>Width divisors of the supported variants.</summary>
    public static readonly int[] WidthDivisors = [1, 2, 4, 8, 16];

    readonly BasicConv2d _c1a, _c2a, _c2b, _c3b, _c4a;
    readonly InceptionA _m5b, _m5c, _m5d;
    readonly InceptionB _m6a;
    readonly InceptionC _m6b, _m6c, _m6d, _m6e;
    readonly InceptionD _m7a;
    readonly InceptionE _m7b, _m7c;

    /// <summary>Every channel count is divided by this (1: the real network).</summary>
    public int WidthDivisor { get; }
    /// <summary>Feature width: 2048 / WidthDivisor.</summary>
    public int FeatureDim => FullFeatureDim / WidthDivisor;

    /// <summary>Builds the network (eval mode) with weights drawn from <paramref name="ctx"/>; load real ones with <see cref="Load"/>.</summary>
    public InceptionV3(InitContext ctx, int widthDivisor = 1) : base(ctx.Device)
    {
        if (!WidthDivisors.Contains(widthDivisor))
            throw new InvalidOptionException("WidthDivisor", $"{widthDivisor} is not supported; allowed: {string.Join(", ", WidthDivisors)}");
        int d = WidthDivisor = widthDivisor;
        _c1a = RegisterModule("Conv2d_1a_3x3", new BasicConv2d(ctx, 3, 32 / d, 3, stride: 2));
        _c2a = RegisterModule("Conv2d_2a_3x3", new BasicConv2d(ctx, 32 / d, 32 / d, 3));
        _c2b = RegisterModule("Conv2d_2b_3x3", new BasicConv2d(ctx, 32 / d, 64 / d, 3, pad: 1));
        _c3b = RegisterModule("Conv2d_3b_1x1", new BasicConv2d(ctx, 64 / d, 80 / d, 1));
        _c4a = RegisterModule("Conv2d_4a_3x3", new BasicConv2d(ctx, 80 / d, 192 / d, 3));
        _m5b = RegisterModule("Mixed_5b", new InceptionA(ctx, 192 / d, 32 / d, d));
        _m5c = RegisterModule("Mixed_5c", new InceptionA(ctx, _m5b.OutChannels, 64 / d, d));
        _m5d = RegisterModule("Mixed_5d", new InceptionA(ctx, _m5c.OutChannels, 64 / d, d));
        _m6a = RegisterModule("Mixed_6a", new InceptionB(ctx, _m5d.OutChannels, d));
        _m6b = RegisterModule("Mixed_6b", new InceptionC(ctx, _m6a.OutChannels, 128 / d, d));
        _m6c = RegisterModule("Mixed_6c", new InceptionC(ctx, _m6b.OutChannels, 160 / d, d));
        _m6d = RegisterModule("Mixed_6d", new InceptionC(ctx, _m6c.OutChannels, 160 / d, d));
        _m6e = RegisterModule("Mixed_6e", new InceptionC(ctx, _m6d.OutChannels, 192 / d, d));
        _m7a = RegisterModule("Mixed_7a", new InceptionD(ctx, _m6e.OutChannels, d));
        _m7b = RegisterModule("Mixed_7b", new InceptionE(ctx, _m7a.OutChannels, maxPool: false, d));
        _m7c = RegisterModule("Mixed_7c", new InceptionE(ctx, _m7b.OutChannels, maxPool: true, d));
        Eval();
    }

    /// <summary>
    /// Pool3 features (B, FeatureDim) of images (B, 3, H, W) in [0, 1], any H and W (resized to
    /// 299 x 299). <paramref name="observe"/> sees each stage's output by name (Conv2d_1a_3x3, ...,
    /// block0..block3) before it may be freed.
    /// </summary>
    public Variable Features(Variable images, Action<string, Variable>? observe = null)
    {
        var s = images.Value.Shape;
        if (images.Value.Rank != 4 || s[1] != 3 || s[2] < 1 || s[3] < 1)
            throw new ArgumentException($"InceptionV3: images have shape {images.Value.ShapeString}, expected (B, 3, H, W) RGB in [0, 1]");
        var r = Fn.InterpolateBilinear(images, InputSize, InputSize);
        var r2 = Fn.Scale(r, 2f);
        var x = Fn.AddScalar(r2, -1f);                                  // [0, 1] -> [-1, 1]
        Inception.Release(r, r2);
        Variable Step(string name, Variable h, Func<Variable, Variable> f)
        {
            var y = f(h);
            observe?.Invoke(name, y);
            Inception.Release(h);
            return y;
        }
        x = Step("Conv2d_1a_3x3", x, _c1a.Forward);
        x = Step("Conv2d_2a_3x3", x, _c2a.Forward);
        x = Step("Conv2d_2b_3x3", x, _c2b.Forward);
        x = Step("block0", x, h => Fn.MaxPool2d(h, 3, 3, Inception.Reduce3));
        x = Step("Conv2d_3b_1x1", x, _c3b.Forward);
        x = Step("Conv2d_4a_3x3", x, _c4a.Forward);
        x = Step("block1", x, h => Fn.MaxPool2d(h, 3, 3, Inception.Reduce3));
        x = Step("Mixed_5b", x, _m5b.Forward);
        x = Step("Mixed_5c", x, _m5c.Forward);
        x = Step("Mixed_5d", x, _m5d.Forward);
        x = Step("Mixed_6a", x, _m6a.Forward);
        x = Step("Mixed_6b", x, _m6b.Forward);
        x = Step("Mixed_6c", x, _m6c.Forward);
        x = Step("Mixed_6d", x, _m6d.Forward);
        x = Step("Mixed_6e", x, _m6e.Forward);
        observe?.Invoke("block2", x);
        x = Step("Mixed_7a", x, _m7a.Forward);
        x = Step("Mixed_7b", x, _m7b.Forward);
        x = Step("Mixed_7c", x, _m7c.Forward);
        x = Step("block3", x, h => Fn.AdaptiveAvgPool2d(h, 1, 1));
        return Fn.Reshape(x, s[0], FeatureDim);
    }

    /// <summary>Tensors of a PyTorch Inception3 state dict that the feature network does not use.</summary>
    public static bool Unused(string name) =>
        name.StartsWith("fc.", StringComparison.Ordinal) || name.StartsWith("AuxLogits.", StringComparison.Ordinal)
        || name.EndsWith(".num_batches_tracked", StringComparison.Ordinal);

    /// <summary>
    /// Loads FID Inception-v3 weights from a safetensors file with PyTorch's names (pytorch-fid's
    /// pt_inception state dict, converted; fc.*, AuxLogits.* and num_batches_tracked are ignored).
    /// The width follows the file. Another network's file, or a missing or mis-shaped tensor, is an
    /// <see cref="InvalidDataException"/> naming the file and the tensor.
    /// </summary>
    public static InceptionV3 Load(EdmDevice device, string path)
    {
        SafeTensorsFile file;
        try { file = SafeTensors.Read(path); }
        catch (SafeTensorsException e) { throw new InvalidDataException(e.Message, e); }
        const string first = "Conv2d_1a_3x3.conv.weight";
        if (!file.Tensors.TryGetValue(first, out var w))
            throw new InvalidDataException($"'{path}' is not FID Inception-v3 weights: tensor '{first}' is missing " +
                                           "(expected PyTorch's names, as in pytorch-fid's pt_inception-2015-12-05 state dict; see docs/metrics.md)");
        int d = w.Shape.Length == 4 && w.Shape[0] > 0 && 32 % w.Shape[0] == 0 ? 32 / w.Shape[0] : 0;
        if (!WidthDivisors.Contains(d) || w.Shape[1] != 3 || w.Shape[2] != 3 || w.Shape[3] != 3)
            throw new InvalidDataException($"'{path}': tensor '{first}' has shape {Shapes.Format(w.Shape)}; expected (32, 3, 3, 3) (or 32/d output channels for d in {string.Join(", ", WidthDivisors)})");
        var net = new InceptionV3(new InitContext(device), d);
        try
        {
            var used = new Dictionary<string, HostTensor>();
            foreach (var (k, v) in file.Tensors) if (!Unused(k)) used[k] = v;
            Weights.Load(net, used, path);
        }
        catch (SafeTensorsException e)
        {
            net.Dispose();
            throw new InvalidDataException(e.Message, e);
        }
        catch
        {
            net.Dispose();
            throw;
        }
        return net;
    }
}

/// <summary>
/// A feature network for the Frechet distance: images (N, C, R, R) in [-1, 1] (as datasets read
/// PNGs) to features (N, FeatureDim).
/// </summary>
public interface IFeatureNetwork : IDisposable
{
    /// <summary>What the features are, for messages ("the classifier", "Inception-v3").</summary>
    string Description { get; }
    /// <summary>Features per image.</summary>
    int FeatureDim { get; }
    /// <summary>Null when images of <paramref name="channels"/> x <paramref name="resolution"/>^2 can be fed, else why not.</summary>
    string? Refuses(int channels, int resolution);
    /// <summary>Features (N, FeatureDim) of <paramref name="count"/> images (N, C, R, R); <paramref name="progress"/> sees images done.</summary>
    float[] Features(float[] images, int count, int channels, int resolution, Action<int>? progress = null);
}

/// <summary>The FID Inception-v3 as a feature network: RGB or grayscale (tiled to RGB, as pytorch-fid's PIL conversion does) of any size.</summary>
public sealed class InceptionFeatures(InceptionV3 net, int batch = 16) : IFeatureNetwork
{
    /// <summary>The network.</summary>
    public InceptionV3 Network { get; } = net;

    /// <inheritdoc/>
    public string Description => "Inception-v3";

    /// <inheritdoc/>
    public int FeatureDim => Network.FeatureDim;

    /// <inheritdoc/>
    public string? Refuses(int channels, int resolution) =>
        channels is 1 or 3 ? null : $"Inception-v3 takes RGB (3 channels) or grayscale (1) images, not {channels} channels";

    /// <inheritdoc/>
    public float[] Features(float[] images, int count, int channels, int resolution, Action<int>? progress = null)
    {
        if (Refuses(channels, resolution) is { } why) throw new ArgumentException($"InceptionFeatures: {why}");
        int size = channels * resolution * resolution, plane = resolution * resolution;
        if (images.Length != (long)count * size) throw new ArgumentException($"InceptionFeatures: {images.Length} floats for {count} images of {size}");
        var features = new float[(long)count * FeatureDim];
        using var noGrad = Tape.NoGrad();
        for (int start = 0; start < count; start += batch)
        {
            using var scope = new TensorScope();
            int n = Math.Min(batch, count - start);
            // [-1, 1] -> [0, 1] (pytorch-fid's input range), grayscale tiled to three channels.
            var rgb = new float[n * 3 * plane];
            for (int b = 0; b < n; b++)
                for (int c = 0; c < 3; c++)
                {
                    var src = images.AsSpan((start + b) * size + (channels == 1 ? 0 : c) * plane, plane);
                    var dst = rgb.AsSpan((b * 3 + c) * plane, plane);
                    for (int i = 0; i < plane; i++) dst[i] = 0.5f * (src[i] + 1f);
                }
            var x = new Variable(Tensor.FromArray(Network.Device, rgb, n, 3, resolution, resolution));
            Network.Features(x).Value.ToArray().CopyTo(features.AsSpan(start * FeatureDim));
            progress?.Invoke(start + n);
        }
        return features;
    }

    /// <inheritdoc/>
    public void Dispose() => Network.Dispose();
}

// k-diffusion's image_v1 network (ImageDenoiserModelV1; crowsonkb/k-diffusion,
// k_diffusion/models/image_v1.py and k_diffusion/layers.py; structure learned from there, code our own):
//   - Fourier features of c_noise = ln(sigma)/4 with a fixed N(0, 1) buffer (timestep_embed.weight, (F/2, 1)),
//     [cos(2 pi c w), sin(2 pi c w)];
//   - mapping network: two Linear + GELU layers (mapping.0, mapping.2) on the features plus, with
//     augmentation, a bias-free Linear of the augment labels (mapping_cond, as k-diffusion's augment
//     wrapper feeds them) and, our extension, a bias-free Linear of class labels (mapping_class);
//   - proj_in (1x1 conv), a U-Net of DBlocks / UBlocks per level (u_net.d_blocks.i, u_net.u_blocks.j with
//     j = 0 the deepest level, as k-diffusion's reversed ModuleList), proj_out (1x1, zero-initialised);
//   - ResConvBlock: AdaGN -> GELU -> conv3x3 -> dropout -> AdaGN -> GELU -> conv3x3 (zero init) -> dropout,
//     plus the input (through a bias-free 1x1 conv when channels change); sequence indices 0, 2, 4, 6 as
//     k-diffusion's nn.Sequential names them (main.0.mapper.weight, main.2.weight, ...);
//   - AdaGN: group norm without affine (groups = max(1, C/32), eps 1e-5), then x (1 + scale) + shift with
//     (scale, shift) = mapper(mapping output) (zero-initialised Linear, 2C outputs);
//   - SelfAttention2d after each ResConvBlock of the levels with self_attn: AdaGN -> qkv 1x1 -> softmax
//     attention with max(1, C/64) heads (head size 64) -> out_proj (zero init) -> + input;
//   - the UBlock of every level but the deepest concatenates the matching DBlock output (U-Net skip).
// Differences from k-diffusion (stated): resampling uses our FIR Conv2d with k-diffusion's 'linear'
// kernel [1,3,3,1]/8 (same taps and stride) but zero instead of reflect padding at the border;
// dropout is elementwise (k-diffusion: Dropout2d, whole channels) and attention-probability dropout
// is omitted; orthogonal init (mapping, skip convs) is replaced by N(0, 1/fan_in); PyTorch's default
// init is kept elsewhere (U(+-1/sqrt(fan_in)) weights and biases). skip_stages = 0, patch_size = 1.
// With HasVariance, proj_out has one extra channel whose spatial mean is a per-image log-variance
// (ForwardWithVariance; see DenoiserWithVariance).
using Edm.Autograd;
using Edm.Kernels;
using Edm.Model.Modules;

namespace Edm.Model.Networks;

/// <summary>Hyper-parameters of image_v1 (k-diffusion config names in comments; defaults: configs/config_cifar10.json).</summary>
public sealed record ImageV1Options
{
    /// <summary>Image resolution R (images are R x R).</summary>
    public int ImgResolution { get; init; } = 32;              // input_size
    /// <summary>Input image channels.</summary>
    public int InChannels { get; init; } = 3;                  // input_channels
    /// <summary>Number of class labels (0: unconditional).</summary>
    public int LabelDim { get; init; }                         // 0 = unconditional (our extension)
    /// <summary>Augmentation label dimension (9 with augmentation, 0 without).</summary>
    public int AugmentDim { get; init; }                       // mapping_cond_dim (9 with the augment wrapper)
    /// <summary>Width of the mapping network output (feats_in).</summary>
    public int MappingOut { get; init; } = 256;                // mapping_out (feats_in)
    /// <summary>Residual blocks per level.</summary>
    public int[] Depths { get; init; } = [2, 4, 4];            // depths
    /// <summary>Channels per level.</summary>
    public int[] Channels { get; init; } = [128, 256, 512];   // channels
    /// <summary>Self-attention on or off per level.</summary>
    public bool[] SelfAttnDepths { get; init; } = [false, true, true]; // self_attn_depths
    /// <summary>Dropout probability in the residual blocks.</summary>
    public double Dropout { get; init; } = 0.05;               // dropout_rate
    /// <summary>Predict a per-image log-variance too.</summary>
    public bool HasVariance { get; init; }                     // has_variance
    /// <summary>Channels per group-norm group.</summary>
    public int GroupSize { get; init; } = 32;
    /// <summary>Channels per attention head.</summary>
    public int HeadSize { get; init; } = 64;
}

/// <summary>A network with a predicted log-variance (k-diffusion's has_variance).</summary>
public interface IVarianceNetwork : INetwork
{
    /// <summary>F (B, C, R, R) and the per-image log-variance (B).</summary>
    Variable ForwardWithVariance(Variable x, double[] noiseLabels, Variable? classLabels, Variable? augmentLabels, out Variable logvar);
}

/// <summary>k-diffusion's ImageDenoiserModelV1 on our tape.</summary>
public sealed class ImageV1 : NetworkBase, IVarianceNetwork
{
    readonly ImageV1Options _o;
    readonly Tensor _fourier;                  // (F/2, 1)
    readonly Linear? _mappingCond, _mappingClass;
    readonly Linear _map0, _map1;
    readonly Conv2d _projIn, _projOut;
    readonly List<List<Module>> _down = new(), _up = new(); // _up[j]: level L-1-j

    /// <summary>True when proj_out has the log-variance channel.</summary>
    public bool HasVariance => _o.HasVariance;

    internal static readonly Init.Spec TorchDefault = new(Init.Mode.KaimingUniform, Math.Sqrt(1.0 / 3), Math.Sqrt(1.0 / 3));
    internal static readonly Init.Spec Zero = new(Init.Mode.KaimingUniform, 0, 0);
    internal static readonly Init.Spec OrthoLike = new(Init.Mode.KaimingNormal, 1, Math.Sqrt(1.0 / 3));

    /// <summary>Builds the network with parameters drawn from <paramref name="ctx"/>.</summary>
    public ImageV1(InitContext ctx, ImageV1Options o)
        : base(ctx.Device, o.ImgResolution, o.InChannels, o.InChannels, o.LabelDim, o.AugmentDim)
    {
        int levels = o.Depths.Length;
        if (levels == 0 || o.Channels.Length != levels || o.SelfAttnDepths.Length != levels)
            throw new ArgumentException($"ImageV1: depths ({o.Depths.Length}), channels ({o.Channels.Length}) and self_attn_depths ({o.SelfAttnDepths.Length}) must have one entry per level (>= 1)");
        if (o.Depths.Any(d => d < 1)) throw new ArgumentException("ImageV1: every depth must be >= 1");
        if (o.ImgResolution % (1 << (levels - 1)) != 0)
            throw new ArgumentException($"ImageV1: image resolution {o.ImgResolution} must be divisible by {1 << (levels - 1)} for {levels} levels");
        if (o.MappingOut % 2 != 0) throw new ArgumentException($"ImageV1: mapping_out {o.MappingOut} must be even");
        _o = o;
        int f = o.MappingOut;
        _fourier = RegisterBuffer("timestep_embed.weight", ctx.Normal([f / 2, 1], 1.0));
        if (o.AugmentDim > 0) _mappingCond = RegisterModule("mapping_cond", new Linear(ctx, o.AugmentDim, f, bias: false, init: TorchDefault));
        if (o.LabelDim > 0) _mappingClass = RegisterModule("mapping_class", new Linear(ctx, o.LabelDim, f, bias: false, init: TorchDefault));
        var mapping = RegisterModule("mapping", new ModuleDict(ctx.Device));
        _map0 = mapping.Add("0", new Linear(ctx, f, f, init: OrthoLike));
        _map1 = mapping.Add("2", new Linear(ctx, f, f, init: OrthoLike));
        _projIn = RegisterModule("proj_in", new Conv2d(ctx, o.InChannels, o.Channels[0], 1, init: TorchDefault));
        _projOut = RegisterModule("proj_out", new Conv2d(ctx, o.Channels[0], o.InChannels + (o.HasVariance ? 1 : 0), 1, init: Zero));

        var unet = RegisterModule("u_net", new ModuleDict(ctx.Device));
        var dBlocks = unet.Add("d_blocks", new ModuleDict(ctx.Device));
        for (int i = 0; i < levels; i++)
        {
            var blk = dBlocks.Add($"{i}", new ModuleDict(ctx.Device));
            var seq = new List<Module>();
            if (i > 0) seq.Add(blk.Add("0", new Conv2d(ctx, o.Channels[i - 1], o.Channels[i - 1], 0, down: true, resampleFilter: [1, 3, 3, 1])));
            AddLayers(ctx, blk, seq, 1, o.Depths[i], o.Channels[Math.Max(0, i - 1)], o.Channels[i], o.Channels[i], o.SelfAttnDepths[i]);
            _down.Add(seq);
        }
        var uBlocks = unet.Add("u_blocks", new ModuleDict(ctx.Device));
        for (int j = 0; j < levels; j++)
        {
            int i = levels - 1 - j;
            var blk = uBlocks.Add($"{j}", new ModuleDict(ctx.Device));
            var seq = new List<Module>();
            int cIn = i < levels - 1 ? 2 * o.Channels[i] : o.Channels[i];
            int next = AddLayers(ctx, blk, seq, 0, o.Depths[i], cIn, o.Channels[i], o.Channels[Math.Max(0, i - 1)], o.SelfAttnDepths[i]);
            if (i > 0) seq.Add(blk.Add($"{next}", new Conv2d(ctx, o.Channels[i - 1], o.Channels[i - 1], 0, up: true, resampleFilter: [1, 3, 3, 1])));
            _up.Add(seq);
        }
    }

    int AddLayers(InitContext ctx, ModuleDict blk, List<Module> seq, int index, int n, int cIn, int cMid, int cOut, bool attn)
    {
        for (int k = 0; k < n; k++)
        {
            int myIn = k == 0 ? cIn : cMid, myOut = k < n - 1 ? cMid : cOut;
            seq.Add(blk.Add($"{index++}", new ResConvBlock(ctx, Rng, _o, myIn, cMid, myOut)));
            if (attn) seq.Add(blk.Add($"{index++}", new SelfAttention2d(ctx, _o, myOut)));
        }
        return index;
    }

    /// <inheritdoc/>
    public override Variable Forward(Variable x, double[] noiseLabels, Variable? classLabels, Variable? augmentLabels)
    {
        var y = Run(x, noiseLabels, classLabels, augmentLabels);
        return _o.HasVariance ? Fn.Slice(y, 1, 0, _o.InChannels) : y;
    }

    /// <inheritdoc/>
    public Variable ForwardWithVariance(Variable x, double[] noiseLabels, Variable? classLabels, Variable? augmentLabels, out Variable logvar)
    {
        if (!_o.HasVariance) throw new InvalidOperationException("ImageV1: built without HasVariance; there is no log-variance output");
        var y = Run(x, noiseLabels, classLabels, augmentLabels);
        logvar = Fn.Mean(Fn.Slice(y, 1, _o.InChannels, 1), [1, 2, 3]);        // (B): input[:, -1].flatten(1).mean(1)
        return Fn.Slice(y, 1, 0, _o.InChannels);
    }

    Variable Run(Variable x, double[] noiseLabels, Variable? classLabels, Variable? augmentLabels)
    {
        NetworkChecks.Inputs("ImageV1", this, x, noiseLabels, classLabels, augmentLabels);
        int b = x.Shape[0], f = _o.MappingOut, half = f / 2;
        var w = _fourier.ToArray(); // read each call: loading weights may replace the buffer's contents
        var e = new float[b * f];
        for (int i = 0; i < b; i++)
            for (int j = 0; j < half; j++)
            {
                double a = 2 * Math.PI * noiseLabels[i] * w[j];
                e[i * f + j] = (float)Math.Cos(a);
                e[i * f + half + j] = (float)Math.Sin(a);
            }
        var emb = new Variable(Tensor.FromArray(Device, e, b, f));
        if (_mappingCond is not null && augmentLabels is not null) emb = Fn.Add(emb, _mappingCond.Forward(augmentLabels));
        if (_mappingClass is not null && classLabels is not null) emb = Fn.Add(emb, _mappingClass.Forward(classLabels));
        var cond = Fn.Gelu(_map1.Forward(Fn.Gelu(_map0.Forward(emb))));

        x = _projIn.Forward(x);
        var skips = new List<Variable>();
        foreach (var seq in _down)
        {
            foreach (var m in seq) x = Apply(m, x, cond);
            skips.Add(x);
        }
        for (int j = 0; j < _up.Count; j++)
        {
            if (j > 0) x = Fn.Concat(1, x, skips[_up.Count - 1 - j]);
            foreach (var m in _up[j]) x = Apply(m, x, cond);
        }
        return _projOut.Forward(x);
    }

    static Variable Apply(Module m, Variable x, Variable cond) => m switch
    {
        ResConvBlock r => r.Forward(x, cond),
        SelfAttention2d s => s.Forward(x, cond),
        Conv2d c => c.Forward(x),
        _ => throw new InvalidOperationException($"ImageV1: unexpected module {m.GetType().Name}"),
    };
}

/// <summary>k-diffusion's AdaGN: group norm (no affine) then x (1 + scale) + shift, (scale, shift) = mapper(cond).</summary>
public sealed class AdaGN : Module
{
    readonly Linear _mapper;
    readonly int _groups, _c;

    /// <summary>Creates the layer; <paramref name="groups"/> groups over <paramref name="channels"/>.</summary>
    public AdaGN(InitContext ctx, int feats, int channels, int groups) : base(ctx.Device)
    {
        _c = channels; _groups = groups;
        _mapper = RegisterModule("mapper", new Linear(ctx, feats, 2 * channels, init: ImageV1.Zero));
    }

    /// <summary>x (B, C, H, W), cond (B, F).</summary>
    public Variable Forward(Variable x, Variable cond)
    {
        int b = x.Shape[0];
        var ones = Tensor.Empty(Device, _c);
        Ops.Fill(ones, 1);
        var n = Fn.GroupNorm(x, _groups, new Variable(ones), new Variable(Tensor.Zeros(Device, _c)), 1e-5f);
        var p = Fn.Reshape(_mapper.Forward(cond), b, 2 * _c, 1, 1);
        var scale = Fn.Slice(p, 1, 0, _c);
        var shift = Fn.Slice(p, 1, _c, _c);
        return Fn.Add(shift, Fn.Mul(n, Fn.AddScalar(scale, 1)));
    }
}

/// <summary>k-diffusion's ResConvBlock (see the file header).</summary>
public sealed class ResConvBlock : Module
{
    readonly AdaGN _n0, _n1;
    readonly Conv2d _c0, _c1;
    readonly Conv2d? _skip;
    readonly DropoutRng _rng;
    readonly double _p;

    /// <summary>Creates the block.</summary>
    public ResConvBlock(InitContext ctx, DropoutRng rng, ImageV1Options o, int cIn, int cMid, int cOut) : base(ctx.Device)
    {
        _rng = rng; _p = o.Dropout;
        var main = RegisterModule("main", new ModuleDict(ctx.Device));
        _n0 = main.Add("0", new AdaGN(ctx, o.MappingOut, cIn, Math.Max(1, cIn / o.GroupSize)));
        _c0 = main.Add("2", new Conv2d(ctx, cIn, cMid, 3, init: ImageV1.TorchDefault));
        _n1 = main.Add("4", new AdaGN(ctx, o.MappingOut, cMid, Math.Max(1, cMid / o.GroupSize)));
        _c1 = main.Add("6", new Conv2d(ctx, cMid, cOut, 3, init: ImageV1.Zero));
        if (cIn != cOut) _skip = RegisterModule("skip", new Conv2d(ctx, cIn, cOut, 1, bias: false, init: ImageV1.OrthoLike));
    }

    Variable Drop(Variable x)
    {
        if (!Training || _p <= 0) return x;
        var (seed, stream) = _rng.Next();
        return Fn.Dropout(x, (float)_p, seed, stream);
    }

    /// <summary>x (B, in, H, W), cond (B, F) -> (B, out, H, W).</summary>
    public Variable Forward(Variable x, Variable cond)
    {
        var h = Drop(_c0.Forward(Fn.Gelu(_n0.Forward(x, cond))));
        h = Drop(_c1.Forward(Fn.Gelu(_n1.Forward(h, cond))));
        return Fn.Add(h, _skip is not null ? _skip.Forward(x) : x);
    }
}

/// <summary>k-diffusion's SelfAttention2d with an AdaGN input norm.</summary>
public sealed class SelfAttention2d : Module
{
    readonly AdaGN _norm;
    readonly Conv2d _qkv, _out;
    /// <summary>Number of heads.</summary>
    public int Heads { get; }

    /// <summary>Creates the layer over <paramref name="channels"/> channels, heads = max(1, C / head size).</summary>
    public SelfAttention2d(InitContext ctx, ImageV1Options o, int channels) : base(ctx.Device)
    {
        Heads = Math.Max(1, channels / o.HeadSize);
        if (channels % Heads != 0) throw new ArgumentException($"SelfAttention2d: {channels} channels are not divisible by {Heads} heads");
        _norm = RegisterModule("norm_in", new AdaGN(ctx, o.MappingOut, channels, Math.Max(1, channels / o.GroupSize)));
        _qkv = RegisterModule("qkv_proj", new Conv2d(ctx, channels, 3 * channels, 1, init: ImageV1.TorchDefault));
        _out = RegisterModule("out_proj", new Conv2d(ctx, channels, channels, 1, init: ImageV1.Zero));
    }

    /// <summary>x (B, C, H, W), cond (B, F) -> x + out_proj(attention).</summary>
    public Variable Forward(Variable x, Variable cond)
    {
        int b = x.Shape[0], c = x.Shape[1], hh = x.Shape[2], ww = x.Shape[3], n = hh * ww, d = c / Heads;
        // qkv (B, 3C, H, W) viewed as (B, 3, heads, d, N) (k-diffusion: view [B, 3 heads, d, N], chunk 3 on dim 1).
        var qkv = Fn.Reshape(_qkv.Forward(_norm.Forward(x, cond)), b, 3, Heads, d, n);
        var t = Fn.Permute(qkv, 1, 0, 2, 4, 3);                                     // (3, B, heads, N, d)
        var q = Fn.Reshape(Fn.Slice(t, 0, 0, 1), b * Heads, n, d);
        var k = Fn.Reshape(Fn.Slice(t, 0, 1, 1), b * Heads, n, d);
        var v = Fn.Reshape(Fn.Slice(t, 0, 2, 1), b * Heads, n, d);
        var a = Fn.Attention(q, k, v);                                              // scale 1/sqrt(d)
        var y = Fn.Reshape(Fn.Permute(Fn.Reshape(a, b, Heads, n, d), 0, 1, 3, 2), b, c, hh, ww);
        return Fn.Add(x, _out.Forward(y));
    }
}

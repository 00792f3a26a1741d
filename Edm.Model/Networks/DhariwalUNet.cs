// ADM (DhariwalUNet of NVlabs/edm; Dhariwal and Nichol 2021): positional noise embedding, mapping
// network with the class embedding added after it, UNetBlocks with adaptive scale/shift, attention
// at 32, 16 and 8 with 64 channels per head, group norm eps 1e-5, output norm + conv.
using Edm.Autograd;
using Edm.Model.Modules;

namespace Edm.Model.Networks;

/// <summary>Hyper-parameters of DhariwalUNet (NVlabs/edm defaults).</summary>
public sealed record DhariwalUNetOptions
{
    /// <summary>Image resolution R (images are R x R).</summary>
    public int ImgResolution { get; init; } = 64;
    /// <summary>Input image channels.</summary>
    public int InChannels { get; init; } = 3;
    /// <summary>Output image channels.</summary>
    public int OutChannels { get; init; } = 3;
    /// <summary>Number of class labels (0: unconditional).</summary>
    public int LabelDim { get; init; }
    /// <summary>Augmentation label dimension (9 with augmentation, 0 without).</summary>
    public int AugmentDim { get; init; }
    /// <summary>Base channel count (channels of the first level).</summary>
    public int ModelChannels { get; init; } = 192;
    /// <summary>Per-level channel multipliers.</summary>
    public int[] ChannelMult { get; init; } = [1, 2, 3, 4];
    /// <summary>Embedding channels as a multiple of ModelChannels.</summary>
    public int ChannelMultEmb { get; init; } = 4;
    /// <summary>Residual blocks per level.</summary>
    public int NumBlocks { get; init; } = 3;
    /// <summary>Resolutions with self-attention.</summary>
    public int[] AttnResolutions { get; init; } = [32, 16, 8];
    /// <summary>Dropout probability in the residual blocks.</summary>
    public double Dropout { get; init; } = 0.10;
    /// <summary>Probability of dropping a sample's class label in training (classifier-free guidance training).</summary>
    public double LabelDropout { get; init; }                // NVlabs/edm label_dropout, 0 = off
    /// <summary>Channels per attention head.</summary>
    public int ChannelsPerHead { get; init; } = 64;
}

/// <summary>DhariwalUNet (ADM).</summary>
public sealed class DhariwalUNet : NetworkBase
{
    readonly DhariwalUNetOptions _o;
    readonly PositionalEmbedding _mapNoise;
    readonly Linear? _mapAugment, _mapLabel;
    readonly Linear _mapLayer0, _mapLayer1;
    readonly ModuleDict _enc, _dec;
    readonly GroupNorm _outNorm;
    readonly Conv2d _outConv;

    /// <summary>Builds the network.</summary>
    public DhariwalUNet(InitContext ctx, DhariwalUNetOptions o)
        : base(ctx.Device, o.ImgResolution, o.InChannels, o.OutChannels, o.LabelDim, o.AugmentDim)
    {
        if (o.ImgResolution % (1 << (o.ChannelMult.Length - 1)) != 0)
            throw new ArgumentException($"DhariwalUNet: image resolution {o.ImgResolution} must be divisible by {1 << (o.ChannelMult.Length - 1)}");
        CheckLabelDropout("DhariwalUNet", o.LabelDropout);
        _o = o;
        int embChannels = o.ModelChannels * o.ChannelMultEmb;
        var init = new Init.Spec(Init.Mode.KaimingUniform, Math.Sqrt(1.0 / 3), Math.Sqrt(1.0 / 3));
        var initZero = new Init.Spec(Init.Mode.KaimingUniform, 0, 0);
        var bk = new UNetBlockOptions(embChannels, ChannelsPerHead: o.ChannelsPerHead, Dropout: o.Dropout, Init: init, InitZero: initZero);

        _mapNoise = RegisterModule("map_noise", new PositionalEmbedding(ctx, o.ModelChannels));
        if (o.AugmentDim > 0) _mapAugment = RegisterModule("map_augment", new Linear(ctx, o.AugmentDim, o.ModelChannels, bias: false, init: initZero));
        _mapLayer0 = RegisterModule("map_layer0", new Linear(ctx, o.ModelChannels, embChannels, init: init));
        _mapLayer1 = RegisterModule("map_layer1", new Linear(ctx, embChannels, embChannels, init: init));
        if (o.LabelDim > 0)
            _mapLabel = RegisterModule("map_label", new Linear(ctx, o.LabelDim, embChannels, bias: false, init: new Init.Spec(Init.Mode.KaimingNormal, Math.Sqrt(o.LabelDim))));

        _enc = RegisterModule("enc", new ModuleDict(ctx.Device));
        int cout = o.InChannels;
        var skips = new Stack<int>();
        for (int level = 0; level < o.ChannelMult.Length; level++)
        {
            int res = o.ImgResolution >> level;
            if (level == 0)
            {
                int cin = cout;
                cout = o.ModelChannels * o.ChannelMult[level];
                _enc.Add($"{res}x{res}_conv", new Conv2d(ctx, cin, cout, 3, init: init));
            }
            else _enc.Add($"{res}x{res}_down", new UNetBlock(ctx, Rng, cout, cout, bk, down: true));
            skips.Push(cout);
            for (int idx = 0; idx < o.NumBlocks; idx++)
            {
                int cin = cout;
                cout = o.ModelChannels * o.ChannelMult[level];
                _enc.Add($"{res}x{res}_block{idx}", new UNetBlock(ctx, Rng, cin, cout, bk, attention: o.AttnResolutions.Contains(res)));
                skips.Push(cout);
            }
        }
        _dec = RegisterModule("dec", new ModuleDict(ctx.Device));
        for (int level = o.ChannelMult.Length - 1; level >= 0; level--)
        {
            int res = o.ImgResolution >> level;
            if (level == o.ChannelMult.Length - 1)
            {
                _dec.Add($"{res}x{res}_in0", new UNetBlock(ctx, Rng, cout, cout, bk, attention: true));
                _dec.Add($"{res}x{res}_in1", new UNetBlock(ctx, Rng, cout, cout, bk));
            }
            else _dec.Add($"{res}x{res}_up", new UNetBlock(ctx, Rng, cout, cout, bk, up: true));
            for (int idx = 0; idx <= o.NumBlocks; idx++)
            {
                int cin = cout + skips.Pop();
                cout = o.ModelChannels * o.ChannelMult[level];
                _dec.Add($"{res}x{res}_block{idx}", new UNetBlock(ctx, Rng, cin, cout, bk, attention: o.AttnResolutions.Contains(res)));
            }
        }
        _outNorm = RegisterModule("out_norm", new GroupNorm(ctx, cout));
        _outConv = RegisterModule("out_conv", new Conv2d(ctx, cout, o.OutChannels, 3, init: initZero));
    }

    /// <inheritdoc/>
    public override Variable Forward(Variable x, double[] noiseLabels, Variable? classLabels, Variable? augmentLabels)
    {
        NetworkChecks.Inputs("DhariwalUNet", this, x, noiseLabels, classLabels, augmentLabels);
        var emb = _mapNoise.Forward(noiseLabels);
        if (_mapAugment is not null && augmentLabels is not null) emb = Fn.Add(emb, _mapAugment.Forward(augmentLabels));
        emb = Fn.Silu(_mapLayer0.Forward(emb));
        emb = _mapLayer1.Forward(emb);
        classLabels = DropLabels(classLabels, _o.LabelDropout);
        if (_mapLabel is not null && classLabels is not null) emb = Fn.Add(emb, _mapLabel.Forward(classLabels));
        emb = Fn.Silu(emb);

        var skips = new List<Variable>();
        foreach (var (_, block) in _enc.Items)
        {
            x = block is UNetBlock u ? u.Forward(x, emb) : ((Conv2d)block).Forward(x);
            skips.Add(x);
        }
        foreach (var (_, block) in _dec.Items)
        {
            var u = (UNetBlock)block;
            if (x.Shape[1] != u.InChannels)
            {
                x = Fn.Concat(1, x, skips[^1]);
                skips.RemoveAt(skips.Count - 1);
            }
            x = u.Forward(x, emb);
        }
        return _outConv.Forward(_outNorm.ForwardSilu(x));
    }
}

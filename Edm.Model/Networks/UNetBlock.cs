// The unified U-Net block of NVlabs/edm (DDPM++, NCSN++ and ADM; docs/formulas.md section 7):
//   x -> norm0 -> SiLU -> conv0 (3x3, optional up/down) -> + affine(emb) (or adaptive scale/shift
//   after norm1) -> norm1 -> SiLU -> dropout -> conv1 (3x3, init near zero);
//   + skip(orig) (1x1 conv / resampling when channels or resolution change); times skip_scale.
//   Optional self-attention: norm2 -> qkv (1x1) -> softmax(q^T k / sqrt(c)) v per head -> proj
//   (init near zero) -> + x, times skip_scale.
using Edm.Autograd;
using Edm.Kernels;
using Edm.Model.Modules;

namespace Edm.Model.Networks;

/// <summary>Dropout randomness shared by a network: call k of a forward pass uses Philox stream (step, k).</summary>
public sealed class DropoutRng(ulong seed)
{
    /// <summary>Base seed.</summary>
    public ulong Seed { get; set; } = seed;
    /// <summary>Calls so far (saved with the training state for exact resume).</summary>
    public ulong Counter { get; set; }
    /// <summary>The (seed, stream) for the next dropout call.</summary>
    public (ulong Seed, ulong Stream) Next() => (Seed, Counter++);
}

/// <summary>Hyper-parameters of a UNetBlock.</summary>
public sealed record UNetBlockOptions(
    int EmbChannels,
    int? NumHeads = null,            // heads when attention is on (null: out_channels / ChannelsPerHead)
    int ChannelsPerHead = 64,
    double Dropout = 0,
    double SkipScale = 1,
    double Eps = 1e-5,               // group norm epsilon
    float[]? ResampleFilter = null,  // [1, 1] default
    bool ResampleProj = false,       // 1x1 conv on the skip path when resampling
    bool AdaptiveScale = true,       // emb -> (scale, shift) after norm1, else added before norm1
    Init.Spec? Init = null,
    Init.Spec? InitZero = null,
    Init.Spec? InitAttn = null);

/// <summary>NVlabs/edm's UNetBlock.</summary>
public sealed class UNetBlock : Module
{
    readonly GroupNorm _norm0, _norm1;
    readonly Conv2d _conv0, _conv1;
    readonly Linear _affine;
    readonly Conv2d? _skip;
    readonly GroupNorm? _norm2;
    readonly Conv2d? _qkv, _proj;
    readonly UNetBlockOptions _o;
    readonly DropoutRng _rng;

    /// <summary>Input channels.</summary>
    public int InChannels { get; }
    /// <summary>Output channels.</summary>
    public int OutChannels { get; }
    /// <summary>Attention heads (0: no attention).</summary>
    public int NumHeads { get; }

    /// <summary>Creates the block.</summary>
    public UNetBlock(InitContext ctx, DropoutRng rng, int inChannels, int outChannels, UNetBlockOptions o,
        bool up = false, bool down = false, bool attention = false) : base(ctx.Device)
    {
        _o = o; _rng = rng;
        InChannels = inChannels; OutChannels = outChannels;
        NumHeads = !attention ? 0 : o.NumHeads ?? outChannels / o.ChannelsPerHead;
        var init = o.Init ?? new Init.Spec(Init.Mode.KaimingNormal);
        var initZero = o.InitZero ?? new Init.Spec(Init.Mode.KaimingNormal, 0, 0);
        var filter = o.ResampleFilter ?? [1, 1];
        _norm0 = RegisterModule("norm0", new GroupNorm(ctx, inChannels, eps: o.Eps));
        _conv0 = RegisterModule("conv0", new Conv2d(ctx, inChannels, outChannels, 3, up: up, down: down, resampleFilter: filter, init: init));
        _affine = RegisterModule("affine", new Linear(ctx, o.EmbChannels, outChannels * (o.AdaptiveScale ? 2 : 1), init: init));
        _norm1 = RegisterModule("norm1", new GroupNorm(ctx, outChannels, eps: o.Eps));
        _conv1 = RegisterModule("conv1", new Conv2d(ctx, outChannels, outChannels, 3, init: initZero));
        if (outChannels != inChannels || up || down)
        {
            int kernel = o.ResampleProj || outChannels != inChannels ? 1 : 0;
            _skip = RegisterModule("skip", new Conv2d(ctx, inChannels, outChannels, kernel, up: up, down: down, resampleFilter: filter, init: init));
        }
        if (NumHeads > 0)
        {
            _norm2 = RegisterModule("norm2", new GroupNorm(ctx, outChannels, eps: o.Eps));
            _qkv = RegisterModule("qkv", new Conv2d(ctx, outChannels, outChannels * 3, 1, init: o.InitAttn ?? init));
            _proj = RegisterModule("proj", new Conv2d(ctx, outChannels, outChannels, 1, init: initZero));
        }
    }

    /// <summary>x (B, in, H, W), emb (B, emb) -> (B, out, H', W').</summary>
    public Variable Forward(Variable x, Variable emb)
    {
        var orig = x;
        x = _conv0.Forward(_norm0.ForwardSilu(x));
        int b = x.Shape[0], c = x.Shape[1];
        var p = Fn.Reshape(_affine.Forward(emb), b, -1, 1, 1);           // (B, C or 2C, 1, 1)
        if (_o.AdaptiveScale)
        {
            var scale = Fn.Slice(p, 1, 0, c);
            var shift = Fn.Slice(p, 1, c, c);
            x = Fn.Silu(Fn.Add(shift, Fn.Mul(_norm1.Forward(x), Fn.AddScalar(scale, 1))));
        }
        else x = _norm1.ForwardSilu(x, addend: p);                       // SiLU(norm1(x + p)), the sum not written
        if (Training && _o.Dropout > 0)
        {
            var (seed, stream) = _rng.Next();
            x = Fn.Dropout(x, (float)_o.Dropout, seed, stream);
        }
        x = _conv1.Forward(x);
        x = Fn.AddScaled(x, _skip is not null ? _skip.Forward(orig) : orig, (float)_o.SkipScale);   // (x + skip) * skip_scale, one pass

        if (NumHeads > 0)
        {
            int h = x.Shape[2], w = x.Shape[3], n = h * w, ch = c / NumHeads;
            // qkv (B, 3C, H, W) viewed as (B*heads, C/heads, 3, N) as NVlabs/edm does; attention on that
            // packed layout gives (B*heads, C/heads, N), i.e. (B, C, H, W) again (no permutes or slices).
            var qkv = Fn.Reshape(_qkv!.Forward(_norm2!.Forward(x)), b * NumHeads, ch, 3, n);
            var aT = Fn.Reshape(Fn.QkvAttention(qkv), b, c, h, w);          // softmax in fp32
            x = Fn.AddScaled(_proj!.Forward(aT), x, (float)_o.SkipScale);
        }
        return x;
    }
}

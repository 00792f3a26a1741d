// DDPM++ and NCSN++ (SongUNet of NVlabs/edm; Song et al. 2021, reimplemented as EDM's Appendix F.4
// describes): positional (DDPM++) or Fourier (NCSN++) noise embedding, a mapping network, an
// encoder of UNetBlocks per resolution (optional residual/skip auxiliary paths), and a decoder
// with skip connections, attention at the listed resolutions, and an output head.
using Edm.Autograd;
using Edm.Kernels;
using Edm.Model.Modules;

namespace Edm.Model.Networks;

/// <summary>The raw network F of D = c_skip x + c_out F(c_in x; c_noise).</summary>
public interface INetwork : IDisposable
{
    /// <summary>Image resolution (square).</summary>
    int ImgResolution { get; }
    /// <summary>Input channels.</summary>
    int InChannels { get; }
    /// <summary>Output channels.</summary>
    int OutChannels { get; }
    /// <summary>Class label dimension (0: unconditional).</summary>
    int LabelDim { get; }
    /// <summary>Augment label dimension (0: none).</summary>
    int AugmentDim { get; }
    /// <summary>The module (parameters, train/eval).</summary>
    Module Module { get; }
    /// <summary>Dropout randomness (saved with the training state).</summary>
    DropoutRng Rng { get; }
    /// <summary>F(x; noise labels, class labels (B, LabelDim), augment labels (B, AugmentDim)).</summary>
    Variable Forward(Variable x, double[] noiseLabels, Variable? classLabels, Variable? augmentLabels);
}

/// <summary>
/// What every network shares: its image geometry and conditioning dimensions, fixed at
/// construction, its module (itself) and the dropout randomness of its blocks.
/// </summary>
public abstract class NetworkBase(EdmDevice device, int imgResolution, int inChannels, int outChannels, int labelDim, int augmentDim)
    : Module(device), INetwork
{
    /// <inheritdoc/>
    public int ImgResolution { get; } = imgResolution;
    /// <inheritdoc/>
    public int InChannels { get; } = inChannels;
    /// <inheritdoc/>
    public int OutChannels { get; } = outChannels;
    /// <inheritdoc/>
    public int LabelDim { get; } = labelDim;
    /// <inheritdoc/>
    public int AugmentDim { get; } = augmentDim;
    /// <inheritdoc/>
    public Module Module => this;
    /// <inheritdoc/>
    public DropoutRng Rng { get; } = new(0);
    /// <inheritdoc/>
    public abstract Variable Forward(Variable x, double[] noiseLabels, Variable? classLabels, Variable? augmentLabels);

    /// <summary>
    /// NVlabs/edm's label_dropout: in training, each sample's class labels are zeroed with
    /// probability <paramref name="p"/> (the unconditional case classifier-free guidance needs),
    /// drawn per sample from the network's dropout stream. Unchanged in eval mode or when p = 0.
    /// </summary>
    protected Variable? DropLabels(Variable? classLabels, double p)
    {
        if (classLabels is null || !Training || p <= 0) return classLabels;
        int b = classLabels.Shape[0];
        var (seed, stream) = Rng.Next();
        var keep = new float[b];
        for (int i = 0; i < b; i++) keep[i] = Philox.Uniform(seed, stream, (uint)i) >= p ? 1f : 0f;
        return Fn.Mul(classLabels, new Variable(Tensor.FromArray(Device, keep, b, 1)));
    }

    /// <summary>Checks a label dropout probability: 0 &lt;= p &lt; 1.</summary>
    protected static void CheckLabelDropout(string net, double p)
    {
        if (!(p >= 0 && p < 1)) throw new ArgumentException($"{net}: label dropout {p} is out of range; allowed: [0, 1)");
    }
}

/// <summary>An ordered dictionary of modules (torch.nn.ModuleDict).</summary>
public sealed class ModuleDict(EdmDevice device) : Module(device)
{
    readonly List<(string Name, Module Module)> _items = new();
    /// <summary>Adds a module under a name.</summary>
    public T Add<T>(string name, T m) where T : Module { _items.Add((name, RegisterModule(name, m))); return m; }
    /// <summary>The modules in insertion order.</summary>
    public IReadOnlyList<(string Name, Module Module)> Items => _items;
}

/// <summary>SongUNet's noise-level embedding (NVlabs/edm embedding_type).</summary>
public enum EmbeddingType
{
    /// <summary>Transformer-style sinusoidal embedding of c_noise (DDPM++).</summary>
    Positional,
    /// <summary>Random Fourier features of c_noise (NCSN++).</summary>
    Fourier,
}

/// <summary>SongUNet's encoder architecture (NVlabs/edm encoder_type).</summary>
public enum EncoderType
{
    /// <summary>Plain residual blocks (DDPM++).</summary>
    Standard,
    /// <summary>Adds a downsampled copy of the input image at each level.</summary>
    Skip,
    /// <summary>Adds a residual branch from the input image at each level (NCSN++).</summary>
    Residual,
}

/// <summary>SongUNet's decoder architecture (NVlabs/edm decoder_type).</summary>
public enum DecoderType
{
    /// <summary>Plain residual blocks; the output from the last level only.</summary>
    Standard,
    /// <summary>Accumulates an image-space output across levels.</summary>
    Skip,
}

/// <summary>Hyper-parameters of SongUNet (NVlabs/edm defaults in comments).</summary>
public sealed record SongUNetOptions
{
    /// <summary>Image resolution R (images are R x R).</summary>
    public int ImgResolution { get; init; } = 32;
    /// <summary>Input image channels.</summary>
    public int InChannels { get; init; } = 3;
    /// <summary>Output image channels.</summary>
    public int OutChannels { get; init; } = 3;
    /// <summary>Number of class labels (0: unconditional).</summary>
    public int LabelDim { get; init; }                       // 0 = unconditional
    /// <summary>Augmentation label dimension (9 with augmentation, 0 without).</summary>
    public int AugmentDim { get; init; }                     // 9 with augmentation
    /// <summary>Base channel count (channels of the first level).</summary>
    public int ModelChannels { get; init; } = 128;
    /// <summary>Per-level channel multipliers.</summary>
    public int[] ChannelMult { get; init; } = [1, 2, 2, 2];  // EDM's CIFAR-10 config uses [2, 2, 2]
    /// <summary>Embedding channels as a multiple of ModelChannels.</summary>
    public int ChannelMultEmb { get; init; } = 4;
    /// <summary>Residual blocks per level.</summary>
    public int NumBlocks { get; init; } = 4;
    /// <summary>Resolutions with self-attention.</summary>
    public int[] AttnResolutions { get; init; } = [16];
    /// <summary>Dropout probability in the residual blocks.</summary>
    public double Dropout { get; init; } = 0.10;
    /// <summary>Probability of dropping a sample's class label in training (classifier-free guidance training).</summary>
    public double LabelDropout { get; init; }                // NVlabs/edm label_dropout, 0 = off
    /// <summary>Noise-level embedding.</summary>
    public EmbeddingType EmbeddingType { get; init; } = EmbeddingType.Positional; // Fourier for NCSN++
    /// <summary>Noise-embedding channels as a multiple of ModelChannels.</summary>
    public int ChannelMultNoise { get; init; } = 1;           // 2 for NCSN++
    /// <summary>Encoder architecture.</summary>
    public EncoderType EncoderType { get; init; } = EncoderType.Standard;       // Residual for NCSN++, or Skip
    /// <summary>Decoder architecture.</summary>
    public DecoderType DecoderType { get; init; } = DecoderType.Standard;       // or Skip
    /// <summary>FIR filter of the up/down-sampling (before normalisation).</summary>
    public float[] ResampleFilter { get; init; } = [1, 1];    // [1, 3, 3, 1] for NCSN++
}

/// <summary>SongUNet (DDPM++ / NCSN++).</summary>
public sealed class SongUNet : NetworkBase
{
    readonly Module _mapNoise;
    readonly Linear? _mapLabel, _mapAugment;
    readonly Linear _mapLayer0, _mapLayer1;
    readonly ModuleDict _enc, _dec;
    readonly double _labelDropout;

    /// <summary>Builds the network with parameters drawn from <paramref name="ctx"/>.</summary>
    public SongUNet(InitContext ctx, SongUNetOptions o)
        : base(ctx.Device, o.ImgResolution, o.InChannels, o.OutChannels, o.LabelDim, o.AugmentDim)
    {
        CheckLabelDropout("SongUNet", o.LabelDropout);
        _labelDropout = o.LabelDropout;
        if (!Enum.IsDefined(o.EmbeddingType) || !Enum.IsDefined(o.EncoderType) || !Enum.IsDefined(o.DecoderType))
            throw new ArgumentException($"SongUNet: embedding {o.EmbeddingType}, encoder {o.EncoderType}, decoder {o.DecoderType}: not a defined type");
        if (o.ImgResolution % (1 << (o.ChannelMult.Length - 1)) != 0)
            throw new ArgumentException($"SongUNet: image resolution {o.ImgResolution} must be divisible by {1 << (o.ChannelMult.Length - 1)} for {o.ChannelMult.Length} levels");
        int embChannels = o.ModelChannels * o.ChannelMultEmb;
        int noiseChannels = o.ModelChannels * o.ChannelMultNoise;
        var init = new Init.Spec(Init.Mode.XavierUniform);
        var initZero = new Init.Spec(Init.Mode.XavierUniform, 1e-5);
        var initAttn = new Init.Spec(Init.Mode.XavierUniform, Math.Sqrt(0.2));
        var bk = new UNetBlockOptions(embChannels, NumHeads: 1, Dropout: o.Dropout, SkipScale: Math.Sqrt(0.5), Eps: 1e-6,
            ResampleFilter: o.ResampleFilter, ResampleProj: true, AdaptiveScale: false, Init: init, InitZero: initZero, InitAttn: initAttn);

        // Mapping.
        _mapNoise = o.EmbeddingType == EmbeddingType.Positional
            ? RegisterModule("map_noise", new PositionalEmbedding(ctx, noiseChannels, endpoint: true))
            : RegisterModule("map_noise", new FourierEmbedding(ctx, noiseChannels));
        if (o.LabelDim > 0) _mapLabel = RegisterModule("map_label", new Linear(ctx, o.LabelDim, noiseChannels, init: init));
        if (o.AugmentDim > 0) _mapAugment = RegisterModule("map_augment", new Linear(ctx, o.AugmentDim, noiseChannels, bias: false, init: init));
        _mapLayer0 = RegisterModule("map_layer0", new Linear(ctx, noiseChannels, embChannels, init: init));
        _mapLayer1 = RegisterModule("map_layer1", new Linear(ctx, embChannels, embChannels, init: init));

        // Encoder.
        _enc = RegisterModule("enc", new ModuleDict(ctx.Device));
        int cout = o.InChannels, caux = o.InChannels;
        for (int level = 0; level < o.ChannelMult.Length; level++)
        {
            int res = o.ImgResolution >> level;
            if (level == 0)
            {
                int cin = cout;
                cout = o.ModelChannels;
                _enc.Add($"{res}x{res}_conv", new Conv2d(ctx, cin, cout, 3, init: init));
            }
            else
            {
                _enc.Add($"{res}x{res}_down", new UNetBlock(ctx, Rng, cout, cout, bk, down: true));
                if (o.EncoderType == EncoderType.Skip)
                {
                    _enc.Add($"{res}x{res}_aux_down", new Conv2d(ctx, caux, caux, 0, down: true, resampleFilter: o.ResampleFilter));
                    _enc.Add($"{res}x{res}_aux_skip", new Conv2d(ctx, caux, cout, 1, init: init));
                }
                if (o.EncoderType == EncoderType.Residual)
                {
                    _enc.Add($"{res}x{res}_aux_residual", new Conv2d(ctx, caux, cout, 3, down: true, resampleFilter: o.ResampleFilter, fusedResample: true, init: init));
                    caux = cout;
                }
            }
            for (int idx = 0; idx < o.NumBlocks; idx++)
            {
                int cin = cout;
                cout = o.ModelChannels * o.ChannelMult[level];
                _enc.Add($"{res}x{res}_block{idx}", new UNetBlock(ctx, Rng, cin, cout, bk, attention: o.AttnResolutions.Contains(res)));
            }
        }
        var skips = new Stack<int>(_enc.Items.Where(e => !e.Name.Contains("aux"))
            .Select(e => e.Module switch { UNetBlock u => u.OutChannels, Conv2d c => c.OutChannels, _ => throw new InvalidOperationException() }));

        // Decoder.
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
                bool attn = idx == o.NumBlocks && o.AttnResolutions.Contains(res);
                _dec.Add($"{res}x{res}_block{idx}", new UNetBlock(ctx, Rng, cin, cout, bk, attention: attn));
            }
            if (o.DecoderType == DecoderType.Skip || level == 0)
            {
                if (o.DecoderType == DecoderType.Skip && level < o.ChannelMult.Length - 1)
                    _dec.Add($"{res}x{res}_aux_up", new Conv2d(ctx, o.OutChannels, o.OutChannels, 0, up: true, resampleFilter: o.ResampleFilter));
                _dec.Add($"{res}x{res}_aux_norm", new GroupNorm(ctx, cout, eps: 1e-6));
                _dec.Add($"{res}x{res}_aux_conv", new Conv2d(ctx, cout, o.OutChannels, 3, init: initZero));
            }
        }
    }

    /// <inheritdoc/>
    public override Variable Forward(Variable x, double[] noiseLabels, Variable? classLabels, Variable? augmentLabels)
    {
        NetworkChecks.Inputs("SongUNet", this, x, noiseLabels, classLabels, augmentLabels);
        int b = x.Shape[0];
        // Mapping. NVlabs/edm swaps the sin/cos halves of the embedding.
        var emb0 = _mapNoise is PositionalEmbedding pe ? pe.Forward(noiseLabels) : ((FourierEmbedding)_mapNoise).Forward(noiseLabels);
        int half = emb0.Shape[1] / 2;
        var emb = Fn.Concat(1, Fn.Slice(emb0, 1, half, half), Fn.Slice(emb0, 1, 0, half));
        classLabels = DropLabels(classLabels, _labelDropout);
        if (_mapLabel is not null && classLabels is not null)
            emb = Fn.Add(emb, _mapLabel.Forward(Fn.Scale(classLabels, (float)Math.Sqrt(_mapLabel.InFeatures))));
        if (_mapAugment is not null && augmentLabels is not null)
            emb = Fn.Add(emb, _mapAugment.Forward(augmentLabels));
        emb = Fn.Silu(_mapLayer0.Forward(emb));
        emb = Fn.Silu(_mapLayer1.Forward(emb));

        // Encoder.
        var skips = new List<Variable>();
        var aux = x;
        foreach (var (name, block) in _enc.Items)
        {
            if (name.Contains("aux_down")) aux = ((Conv2d)block).Forward(aux);
            else if (name.Contains("aux_skip")) { x = Fn.Add(x, ((Conv2d)block).Forward(aux)); skips[^1] = x; }
            else if (name.Contains("aux_residual"))
            {
                x = Fn.AddScaled(x, ((Conv2d)block).Forward(aux), (float)(1 / Math.Sqrt(2)));
                skips[^1] = x; aux = x;
            }
            else
            {
                x = block is UNetBlock u ? u.Forward(x, emb) : ((Conv2d)block).Forward(x);
                skips.Add(x);
            }
        }

        // Decoder.
        Variable? auxOut = null, tmp = null;
        foreach (var (name, block) in _dec.Items)
        {
            if (name.Contains("aux_up")) auxOut = ((Conv2d)block).Forward(auxOut!);
            else if (name.Contains("aux_norm")) tmp = ((GroupNorm)block).ForwardSilu(x);
            else if (name.Contains("aux_conv"))
            {
                tmp = ((Conv2d)block).Forward(tmp!);
                auxOut = auxOut is null ? tmp : Fn.Add(tmp, auxOut);
            }
            else
            {
                var u = (UNetBlock)block;
                if (x.Shape[1] != u.InChannels)
                {
                    x = Fn.Concat(1, x, skips[^1]);
                    skips.RemoveAt(skips.Count - 1);
                }
                x = u.Forward(x, emb);
            }
        }
        _ = b;
        return auxOut!;
    }
}

/// <summary>Input validation shared by the networks.</summary>
public static class NetworkChecks
{
    /// <summary>Checks x (B, C, R, R), noise labels (B), class labels (B, LabelDim), augment labels (B, AugmentDim).</summary>
    public static void Inputs(string net, INetwork n, Variable x, double[] noiseLabels, Variable? classLabels, Variable? augmentLabels)
    {
        var s = x.Shape;
        if (s.Length != 4 || s[1] != n.InChannels || s[2] != n.ImgResolution || s[3] != n.ImgResolution)
            throw new ArgumentException($"{net}: input has shape {Shapes.Format(s)}, expected (B, {n.InChannels}, {n.ImgResolution}, {n.ImgResolution})");
        if (noiseLabels.Length != s[0])
            throw new ArgumentException($"{net}: {noiseLabels.Length} noise labels for a batch of {s[0]}");
        if (classLabels is not null && (n.LabelDim == 0 || !Shapes.Equal(classLabels.Shape, [s[0], n.LabelDim])))
            throw new ArgumentException($"{net}: class labels have shape {Shapes.Format(classLabels.Shape)}, expected " +
                                        (n.LabelDim == 0 ? "none (the network is unconditional)" : $"({s[0]}, {n.LabelDim})"));
        if (augmentLabels is not null && n.AugmentDim > 0 && !Shapes.Equal(augmentLabels.Shape, [s[0], n.AugmentDim]))
            throw new ArgumentException($"{net}: augment labels have shape {Shapes.Format(augmentLabels.Shape)}, expected ({s[0]}, {n.AugmentDim})");
    }
}

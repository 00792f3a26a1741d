// Named network presets: the paper's configurations (NVlabs/edm train.py --arch ddpmpp | ncsnpp |
// adm at CIFAR-10 / ImageNet-64), k-diffusion's image_v1 (configs/config_cifar10.json) and tiny versions
// of each for tests and CPU demos.
using Edm.Model.Modules;

namespace Edm.Model.Networks;

/// <summary>
/// What a preset builds: the architecture's options as a template (<see cref="SongUNetOptions"/>,
/// <see cref="DhariwalUNetOptions"/> or <see cref="ImageV1Options"/>), into which
/// <see cref="Presets.Create"/> writes the image shape, labels, dropout and width of a run.
/// </summary>
/// <param name="Name">Preset name.</param>
/// <param name="DefaultResolution">Resolution when none is given.</param>
/// <param name="Resolutions">Resolutions the preset supports.</param>
/// <param name="DefaultChannels">Image channels when none are given.</param>
/// <param name="Description">One line for `model` and the docs.</param>
/// <param name="Template">The architecture's options.</param>
/// <param name="AttentionAtHalfResolution">Attention at half the image resolution whatever it is (the tiny presets), instead of the template's resolutions.</param>
public sealed record PresetInfo(string Name, int DefaultResolution, int[] Resolutions, int DefaultChannels, string Description, object Template,
    bool AttentionAtHalfResolution = false)
{
    /// <summary>The class the preset builds.</summary>
    public string Architecture => Template switch
    {
        SongUNetOptions => nameof(SongUNet),
        DhariwalUNetOptions => nameof(DhariwalUNet),
        _ => nameof(ImageV1),
    };
}

/// <summary>Builds networks by preset name.</summary>
public static class Presets
{
    static readonly SongUNetOptions DdpmppCifar = new() { ModelChannels = 128, ChannelMult = [2, 2, 2], Dropout = 0.13 };
    static readonly SongUNetOptions NcsnppCifar = DdpmppCifar with
    {
        EmbeddingType = EmbeddingType.Fourier, ChannelMultNoise = 2, EncoderType = EncoderType.Residual, ResampleFilter = [1, 3, 3, 1],
    };
    static readonly SongUNetOptions DdpmppTiny = DdpmppCifar with { ModelChannels = 16, ChannelMult = [1, 2], NumBlocks = 1, Dropout = 0 };
    static readonly SongUNetOptions DdpmppSmall = DdpmppCifar with { ModelChannels = 32, ChannelMult = [1, 2, 2], NumBlocks = 1, Dropout = 0 };
    static readonly SongUNetOptions NcsnppTiny = NcsnppCifar with { ModelChannels = 16, ChannelMult = [1, 2], NumBlocks = 1, Dropout = 0 };

    /// <summary>Every preset.</summary>
    public static readonly IReadOnlyList<PresetInfo> All =
    [
        new("ddpmpp-cifar10", 32, [32], 3, "DDPM++ as trained on CIFAR-10 (128 ch, mult [2,2,2], 4 blocks, attention at 16, dropout 0.13)", DdpmppCifar),
        new("ncsnpp-cifar10", 32, [32], 3, "NCSN++ as trained on CIFAR-10 (Fourier embedding, residual encoder, filter [1,3,3,1])", NcsnppCifar),
        new("adm-imagenet64", 64, [64], 3, "ADM (192 ch, mult [1,2,3,4], 3 blocks, attention at 32/16/8)", new DhariwalUNetOptions { ModelChannels = 192, Dropout = 0.10 }),
        new("ddpmpp-tiny", 32, [8, 16, 32], 1, "tiny DDPM++ (16 ch, mult [1,2], 1 block) for tests and CPU demos", DdpmppTiny, AttentionAtHalfResolution: true),
        new("ddpmpp-small", 32, [8, 16, 32], 1, "small DDPM++ (32 ch, mult [1,2,2], 1 block) for MNIST-sized data on the CPU", DdpmppSmall, AttentionAtHalfResolution: true),
        new("ncsnpp-tiny", 32, [8, 16, 32], 1, "tiny NCSN++ (16 ch, mult [1,2], 1 block)", NcsnppTiny, AttentionAtHalfResolution: true),
        new("adm-tiny", 32, [8, 16, 32], 1, "tiny ADM (16 ch, mult [1,2], 1 block, 16 channels per head)",
            new DhariwalUNetOptions { ModelChannels = 16, ChannelMult = [1, 2], NumBlocks = 1, ChannelsPerHead = 16, Dropout = 0 }, AttentionAtHalfResolution: true),
        new("image-v1", 32, [32], 3, "k-diffusion image_v1 as its configs/config_cifar10.json (mapping 256, depths [2,4,4], channels [128,256,512], self-attention at levels 2-3, dropout 0.05)",
            new ImageV1Options { MappingOut = 256, Depths = [2, 4, 4], Channels = [128, 256, 512], SelfAttnDepths = [false, true, true], Dropout = 0.05 }),
        new("image-v1-tiny", 32, [8, 16, 32], 1, "tiny k-diffusion image_v1 (mapping 64, depths [1,1], channels [32,64], self-attention at level 2)",
            new ImageV1Options { MappingOut = 64, Depths = [1, 1], Channels = [32, 64], SelfAttnDepths = [false, true], Dropout = 0 }),
    ];

    /// <summary>Most classes a network takes (its label embedding is a LabelDim x channels layer).</summary>
    public const int MaxLabelDim = 1 << 20;

    /// <summary>Allowed preset names.</summary>
    public static string Names => string.Join(", ", All.Select(p => p.Name));

    /// <summary>Looks a preset up; an unknown name is an <see cref="InvalidOptionException"/> listing the allowed ones.</summary>
    public static PresetInfo Get(string name) =>
        All.FirstOrDefault(p => p.Name == name) ?? throw new InvalidOptionException("Preset", $"'{name}' is unknown; allowed: {Names}");

    /// <summary>
    /// Builds the network of a preset. <paramref name="resolution"/> and <paramref name="channels"/>
    /// default to the preset's; <paramref name="labelDim"/> 0 = unconditional; <paramref name="augmentDim"/> 9
    /// with augmentation, 0 without; <paramref name="dropout"/> overrides the preset's;
    /// <paramref name="modelChannels"/> scales the width (the channels of the first level).
    /// Bad values are <see cref="InvalidOptionException"/>s naming the parameter.
    /// </summary>
    public static INetwork Create(string name, InitContext ctx, int? resolution = null, int? channels = null, int labelDim = 0,
        int augmentDim = 0, double? dropout = null, int? modelChannels = null, double labelDropout = 0)
    {
        if (labelDropout is < 0 or >= 1) throw new InvalidOptionException("LabelDropout", $"{labelDropout} is out of range; allowed: [0, 1)");
        var p = Get(name);
        int res = resolution ?? p.DefaultResolution;
        if (!p.Resolutions.Contains(res))
            throw new InvalidOptionException("Resolution", $"{res} is not supported by preset '{name}'; allowed: {string.Join(", ", p.Resolutions)}");
        int ch = channels ?? p.DefaultChannels;
        if (ch < 1 || ch > 4) throw new InvalidOptionException("Channels", $"{ch} is out of range; allowed: 1..4");
        if (labelDim < 0 || labelDim > MaxLabelDim) throw new InvalidOptionException("LabelDim", $"{labelDim} is out of range; allowed: 0..{MaxLabelDim:N0}");
        if (augmentDim is not (0 or 9)) throw new InvalidOptionException("AugmentDim", $"{augmentDim} is not allowed; allowed: 0 or 9");
        if (dropout is < 0 or >= 1) throw new InvalidOptionException("Dropout", $"{dropout} is out of range; allowed: [0, 1)");
        if (modelChannels is < 4) throw new InvalidOptionException("ModelChannels", $"{modelChannels} must be >= 4");
        return p.Template switch
        {
            SongUNetOptions t => new SongUNet(ctx, t with
            {
                ImgResolution = res, InChannels = ch, OutChannels = ch, LabelDim = labelDim, AugmentDim = augmentDim,
                ModelChannels = modelChannels ?? t.ModelChannels, Dropout = dropout ?? t.Dropout, LabelDropout = labelDropout,
                AttnResolutions = p.AttentionAtHalfResolution ? [res / 2] : t.AttnResolutions,
            }),
            DhariwalUNetOptions t => new DhariwalUNet(ctx, t with
            {
                ImgResolution = res, InChannels = ch, OutChannels = ch, LabelDim = labelDim, AugmentDim = augmentDim,
                ModelChannels = modelChannels ?? t.ModelChannels, Dropout = dropout ?? t.Dropout, LabelDropout = labelDropout,
                AttnResolutions = p.AttentionAtHalfResolution ? [res / 2] : t.AttnResolutions,
            }),
            ImageV1Options t => new ImageV1(ctx, t with
            {
                ImgResolution = res, InChannels = ch, LabelDim = labelDim, AugmentDim = augmentDim, Dropout = dropout ?? t.Dropout,
                Channels = modelChannels is { } mc ? t.Channels.Select(c => c / t.Channels[0] * mc).ToArray() : t.Channels,
            }),
            _ => throw new InvalidOperationException($"preset '{name}' has a template of type {p.Template.GetType().Name}"),
        };
    }
}

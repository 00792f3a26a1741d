// Named network presets: the paper's configurations (NVlabs/edm train.py --arch ddpmpp | ncsnpp |
// adm at CIFAR-10 / ImageNet-64), k-diffusion's image_v1 (configs/config_cifar10.json) and tiny versions
// of each for tests and CPU demos.
using Edm.Model.Nn;

namespace Edm.Model.Networks;

/// <summary>What a preset builds.</summary>
public sealed record PresetInfo(string Name, string Architecture, int DefaultResolution, int[] Resolutions, int DefaultChannels,
    string Preconditioning, string Description);

/// <summary>Builds networks by preset name.</summary>
public static class Presets
{
    /// <summary>Every preset.</summary>
    public static readonly IReadOnlyList<PresetInfo> All =
    [
        new("ddpmpp-cifar10", "SongUNet", 32, [32], 3, "edm", "DDPM++ as trained on CIFAR-10 (128 ch, mult [2,2,2], 4 blocks, attention at 16, dropout 0.13)"),
        new("ncsnpp-cifar10", "SongUNet", 32, [32], 3, "edm", "NCSN++ as trained on CIFAR-10 (Fourier embedding, residual encoder, filter [1,3,3,1])"),
        new("adm-imagenet64", "DhariwalUNet", 64, [64], 3, "edm", "ADM (192 ch, mult [1,2,3,4], 3 blocks, attention at 32/16/8)"),
        new("ddpmpp-tiny", "SongUNet", 32, [8, 16, 32], 1, "edm", "tiny DDPM++ (16 ch, mult [1,2], 1 block) for tests and CPU demos"),
        new("ncsnpp-tiny", "SongUNet", 32, [8, 16, 32], 1, "edm", "tiny NCSN++ (16 ch, mult [1,2], 1 block)"),
        new("adm-tiny", "DhariwalUNet", 32, [8, 16, 32], 1, "edm", "tiny ADM (16 ch, mult [1,2], 1 block, 16 channels per head)"),
        new("image-v1", "ImageV1", 32, [32], 3, "edm", "k-diffusion image_v1 as its configs/config_cifar10.json (mapping 256, depths [2,4,4], channels [128,256,512], self-attention at levels 2-3, dropout 0.05)"),
        new("image-v1-tiny", "ImageV1", 32, [8, 16, 32], 1, "edm", "tiny k-diffusion image_v1 (mapping 64, depths [1,1], channels [32,64], self-attention at level 2)"),
    ];

    /// <summary>Allowed preset names.</summary>
    public static string Names => string.Join(", ", All.Select(p => p.Name));

    /// <summary>Looks a preset up; unknown names throw listing the allowed ones.</summary>
    public static PresetInfo Get(string name) =>
        All.FirstOrDefault(p => p.Name == name) ?? throw new ArgumentException($"unknown preset '{name}'; allowed: {Names}");

    /// <summary>
    /// Builds the network of a preset. <paramref name="resolution"/> and <paramref name="channels"/>
    /// default to the preset's; <paramref name="labelDim"/> 0 = unconditional; <paramref name="augmentDim"/> 9
    /// with augmentation, 0 without; <paramref name="dropout"/> overrides the preset's.
    /// </summary>
    public static INetwork Create(string name, InitContext ctx, int? resolution = null, int? channels = null, int labelDim = 0,
        int augmentDim = 0, double? dropout = null, int? modelChannels = null)
    {
        var p = Get(name);
        int res = resolution ?? p.DefaultResolution;
        if (!p.Resolutions.Contains(res))
            throw new ArgumentException($"preset '{name}' does not support resolution {res}; allowed: {string.Join(", ", p.Resolutions)}");
        int ch = channels ?? p.DefaultChannels;
        if (ch < 1 || ch > 4) throw new ArgumentException($"image channels {ch} out of range; allowed 1..4");
        if (labelDim < 0) throw new ArgumentException($"label dimension {labelDim} must be >= 0");
        if (augmentDim is not (0 or 9)) throw new ArgumentException($"augment dimension {augmentDim}; allowed: 0 or 9");
        if (dropout is < 0 or >= 1) throw new ArgumentException($"dropout {dropout} out of range; allowed [0, 1)");
        if (modelChannels is < 4) throw new ArgumentException($"model channels {modelChannels} must be >= 4");
        return name switch
        {
            "ddpmpp-cifar10" => new SongUNet(ctx, new SongUNetOptions
            {
                ImgResolution = res, InChannels = ch, OutChannels = ch, LabelDim = labelDim, AugmentDim = augmentDim,
                ModelChannels = modelChannels ?? 128, ChannelMult = [2, 2, 2], Dropout = dropout ?? 0.13,
            }),
            "ncsnpp-cifar10" => new SongUNet(ctx, new SongUNetOptions
            {
                ImgResolution = res, InChannels = ch, OutChannels = ch, LabelDim = labelDim, AugmentDim = augmentDim,
                ModelChannels = modelChannels ?? 128, ChannelMult = [2, 2, 2], Dropout = dropout ?? 0.13,
                EmbeddingType = "fourier", ChannelMultNoise = 2, EncoderType = "residual", ResampleFilter = [1, 3, 3, 1],
            }),
            "adm-imagenet64" => new DhariwalUNet(ctx, new DhariwalUNetOptions
            {
                ImgResolution = res, InChannels = ch, OutChannels = ch, LabelDim = labelDim, AugmentDim = augmentDim,
                ModelChannels = modelChannels ?? 192, Dropout = dropout ?? 0.10,
            }),
            "ddpmpp-tiny" => new SongUNet(ctx, new SongUNetOptions
            {
                ImgResolution = res, InChannels = ch, OutChannels = ch, LabelDim = labelDim, AugmentDim = augmentDim,
                ModelChannels = modelChannels ?? 16, ChannelMult = [1, 2], NumBlocks = 1, AttnResolutions = [res / 2], Dropout = dropout ?? 0.0,
            }),
            "ncsnpp-tiny" => new SongUNet(ctx, new SongUNetOptions
            {
                ImgResolution = res, InChannels = ch, OutChannels = ch, LabelDim = labelDim, AugmentDim = augmentDim,
                ModelChannels = modelChannels ?? 16, ChannelMult = [1, 2], NumBlocks = 1, AttnResolutions = [res / 2], Dropout = dropout ?? 0.0,
                EmbeddingType = "fourier", ChannelMultNoise = 2, EncoderType = "residual", ResampleFilter = [1, 3, 3, 1],
            }),
            "adm-tiny" => new DhariwalUNet(ctx, new DhariwalUNetOptions
            {
                ImgResolution = res, InChannels = ch, OutChannels = ch, LabelDim = labelDim, AugmentDim = augmentDim,
                ModelChannels = modelChannels ?? 16, ChannelMult = [1, 2], NumBlocks = 1, AttnResolutions = [res / 2],
                ChannelsPerHead = 16, Dropout = dropout ?? 0.0,
            }),
            "image-v1" => new ImageV1(ctx, new ImageV1Options
            {
                ImgResolution = res, InChannels = ch, LabelDim = labelDim, AugmentDim = augmentDim, MappingOut = 256,
                Depths = [2, 4, 4], Channels = ChannelsOf(modelChannels ?? 128, 1, 2, 4), SelfAttnDepths = [false, true, true],
                Dropout = dropout ?? 0.05,
            }),
            "image-v1-tiny" => new ImageV1(ctx, new ImageV1Options
            {
                ImgResolution = res, InChannels = ch, LabelDim = labelDim, AugmentDim = augmentDim, MappingOut = 64,
                Depths = [1, 1], Channels = ChannelsOf(modelChannels ?? 32, 1, 2), SelfAttnDepths = [false, true],
                Dropout = dropout ?? 0.0,
            }),
            _ => throw new ArgumentException($"unknown preset '{name}'; allowed: {Names}"),
        };
    }

    static int[] ChannelsOf(int mc, params int[] mult) => mult.Select(m => mc * m).ToArray();
}

// Analytic cost of a U-Net forward pass, read from its module names (SongUNet / DhariwalUNet
// naming): the layers with their resolutions (StepLayers) and the FLOP count (StepFlops). Used by
// the step bench (Edm.Bench/Perf/StepBench.cs) and available to research code.
using System.Text.RegularExpressions;
using Edm.Kernels;
using Edm.Model.Modules;

namespace Edm.Model.Networks;

/// <summary>A layer of the network with the resolutions it runs at.</summary>
/// <param name="Name">Module name (e.g. "enc.16x16_down.conv0").</param>
/// <param name="InRes">Input resolution.</param>
/// <param name="Module">The layer.</param>
/// <param name="OutRes">Output resolution.</param>
/// <param name="Mode">Resampling of a convolution (none for other layers).</param>
public sealed record StepLayer(string Name, Module Module, int InRes, int OutRes, Resample Mode);

/// <summary>
/// The layers of a SongUNet with their resolutions, read from the module names: a block named
/// "RxR_down" / "RxR_up" outputs R x R from 2R x 2R / (R/2) x (R/2); its norm0, and its conv0 and
/// skip (which resample before convolving), see the input resolution; every other layer runs at R.
/// </summary>
public static partial class StepLayers
{
    [GeneratedRegex(@"(\d+)x\1_(down|up)?")]
    private static partial Regex Block();

    /// <summary>Every module of <paramref name="network"/> whose name carries a resolution.</summary>
    public static IEnumerable<StepLayer> Of(Module network)
    {
        foreach (var (name, m) in network.NamedModules())
        {
            var match = Block().Match(name);
            if (!match.Success) continue;
            int r = int.Parse(match.Groups[1].Value);
            string leaf = name[(name.LastIndexOf('.') + 1)..];
            bool resampled = match.Groups[2].Success && leaf is ("conv0" or "skip" or "norm0");
            bool down = match.Groups[2].Value == "down";
            int inRes = resampled ? (down ? 2 * r : r / 2) : r;
            var mode = resampled && leaf != "norm0" ? (down ? Resample.Down : Resample.Up) : Resample.None;
            yield return new StepLayer(name, m, inRes, leaf == "norm0" ? inRes : r, mode);
        }
    }
}

/// <summary>
/// Analytic FLOP count of a U-Net forward pass (SongUNet / DhariwalUNet module naming): 2 x MACs of
/// every convolution, linear layer and attention product. A layer's resolution is read from its
/// module name ("enc.16x16_block0.conv0": 16x16), which is the output resolution of the block and
/// the resolution at which its convolutions run (resampling precedes the convolution).
/// </summary>
public static partial class StepFlops
{
    [GeneratedRegex(@"(\d+)x\1_")]
    private static partial Regex Resolution();

    /// <summary>Forward FLOPs of <paramref name="network"/> at batch <paramref name="batch"/>.</summary>
    public static double Forward(Module network, int batch)
    {
        double total = 0;
        foreach (var (name, m) in network.NamedModules())
        {
            var match = Resolution().Match(name);
            double pixels = match.Success ? Math.Pow(int.Parse(match.Groups[1].Value), 2) : 0;
            switch (m)
            {
                case Conv2d { Weight: not null } c:
                    if (!match.Success) throw new ArgumentException($"StepFlops: no resolution in the module name '{name}'");
                    var w = c.Weight.Shape;                                     // (out, in, k, k)
                    total += 2.0 * batch * pixels * w[0] * w[1] * w[2] * w[3];
                    break;
                case Linear l:
                    total += 2.0 * batch * l.InFeatures * l.OutFeatures;
                    break;
                case UNetBlock { NumHeads: > 0 } u:
                    // Q^T K and V P^T: 2 x N^2 x (C / heads) MACs per head, N = H W.
                    total += 4.0 * batch * pixels * pixels * u.OutChannels;
                    break;
            }
        }
        return total;
    }
}

// Image generation from a trained network (NVlabs/edm generate.py's loop): per-sample seeds key
// the latents (and the churn noise) so one seed gives the same image whatever batch it is in;
// a conditional network gets the given class one-hot, or a class drawn from the seed's own
// random stream, also independent of the batch.
using Edm.Kernels;
using Edm.Sampling;

namespace Edm.Model.Training;

/// <summary>Generates images with a preconditioned network and any sampler of Edm.Sampling.</summary>
public static class Generator
{
    /// <summary>Philox stream of the per-seed random class (latents use stream 0, churn noise streams 1..N).</summary>
    public const ulong ClassStream = 0xC1A5_5000_0000_0000UL;

    /// <summary>The class of <paramref name="seed"/>: <paramref name="fixedClass"/> if given, else uniform over <paramref name="labelDim"/> from the seed's stream.</summary>
    public static int ClassOf(ulong seed, int labelDim, int? fixedClass) =>
        fixedClass ?? Math.Min((int)(Philox.Uniform(seed, ClassStream, 0) * labelDim), labelDim - 1);

    /// <summary>
    /// Samples one image per seed, <paramref name="batch"/> seeds at a time, and returns them as
    /// (N, C, R, R) floats in [-1, 1] roughly (unclipped). <paramref name="onBatch"/> sees each batch's
    /// seeds and images (e.g. to save them as they come). <paramref name="guidance"/> is the
    /// classifier-free guidance weight of a conditional network (<see cref="Precond.Guidance"/>; 1 = none).
    /// With <paramref name="keepImages"/> false nothing is accumulated (memory stays that of one
    /// batch, whatever the number of seeds) and an empty array is returned: consume the images in
    /// <paramref name="onBatch"/>.
    /// </summary>
    public static float[] Generate(Precond net, ulong[] seeds, SamplerSettings settings, int batch, int? fixedClass = null,
        Action<ulong[], float[]>? onBatch = null, double guidance = 1, bool keepImages = true)
    {
        if (!double.IsFinite(guidance)) throw new InvalidOptionException(nameof(guidance), $"{guidance} must be a finite number (1 = no guidance)");
        if (guidance != 1 && net.Network.LabelDim == 0)
            throw new InvalidOptionException(nameof(guidance), $"{guidance} needs a class-conditional network; this one has label_dim 0 (use 1)");
        if (batch < 1) throw new InvalidOptionException(nameof(batch), $"{batch} must be >= 1");
        int labelDim = net.Network.LabelDim;
        if (fixedClass is not null && labelDim == 0) throw new InvalidOptionException(nameof(fixedClass), $"{fixedClass}: the network is unconditional (label_dim 0)");
        if (fixedClass is { } fc && (fc < 0 || fc >= labelDim)) throw new InvalidOptionException(nameof(fixedClass), $"{fc} is out of range; the network has classes 0..{labelDim - 1}");
        settings.Validate();
        int c = net.ImgChannels, r = net.Network.ImgResolution, size = c * r * r;
        var dev = net.Network.Module.Device;
        var all = keepImages ? new float[(long)seeds.Length * size] : [];
        for (int start = 0; start < seeds.Length; start += batch)
        {
            var chunk = seeds[start..Math.Min(seeds.Length, start + batch)];
            using var scope = new TensorScope();
            if (labelDim > 0)
            {
                var onehot = new float[chunk.Length * labelDim];
                for (int i = 0; i < chunk.Length; i++) onehot[i * labelDim + ClassOf(chunk[i], labelDim, fixedClass)] = 1f;
                net.SamplingLabels = Tensor.FromArray(dev, onehot, chunk.Length, labelDim);
                net.Guidance = guidance;
            }
            try
            {
                using var latents = Samplers.Latents(dev, chunk, c, r, r);
                using var x = Samplers.Sample(net, latents, settings, chunk).X;
                var host = x.ToArray();
                if (keepImages) host.CopyTo(all, (long)start * size);
                onBatch?.Invoke(chunk, host);
            }
            finally
            {
                net.SamplingLabels = null;
                net.Guidance = 1;
            }
        }
        return all;
    }
}

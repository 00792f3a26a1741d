// Dropout (Srivastava et al. 2014), inverted: y = x * keep / (1 - p), keep = [u >= p] with
// u = Philox.Uniform(seed, stream, i) for element i (Edm.Kernels/Random.cs), so the mask is a pure
// function of (seed, stream, i): reproducible on every device and launch size, and the backward
// regenerates it instead of storing it: dx = gy * keep / (1 - p), the same map applied to gy.
// EDM's DDPM++ uses p = 0.13 inside each UNetBlock (docs/formulas.md section 7).
// Layout: any shape, elementwise over the flat index.
//
// Variants:
//   1. float64 reference (Edm.Verification/References/DropoutReference.cs) with the host Philox.
//   2. CPU fast path: CpuParallel.For over chunks, the same Philox function in plain C#.
//   3. ILGPU kernel: grid-stride loop, one Philox block per element (implicitly grouped).
using ILGPU;
using ILGPU.Runtime;

namespace Edm.Kernels;

/// <summary>Dropout kernel (forward and backward are the same masked scaling).</summary>
public sealed class DropoutKernels : IKernelFamily<DropoutKernels>
{
    internal readonly Action<Index1D, ArrayView<float>, ArrayView<float>, int, float, float, ulong, ulong> Apply;

    DropoutKernels(Accelerator a) =>
        Apply = a.LoadAutoGroupedStreamKernel<Index1D, ArrayView<float>, ArrayView<float>, int, float, float, ulong, ulong>(ApplyKernel);

    /// <inheritdoc/>
    public static DropoutKernels Load(EdmDevice device) => new(device.Accelerator);

    /// dst[i] = Uniform(seed, stream, i) >= p ? src[i] * scale : 0; grid-stride.
    static void ApplyKernel(Index1D tid, ArrayView<float> src, ArrayView<float> dst, int stride, float p, float scale, ulong seed, ulong stream)
    {
        for (int i = tid; i < dst.IntLength; i += stride)
            dst[i] = Philox.Uniform(seed, stream, (uint)i) >= p ? src[i] * scale : 0f;
    }
}

public static partial class Ops
{
    /// <summary>
    /// Inverted dropout: each element is kept with probability 1 - p and scaled by 1/(1 - p), else
    /// zeroed. The mask depends only on (seed, stream, element index).
    /// </summary>
    /// <param name="x">Any shape.</param>
    /// <param name="p">Drop probability, 0 &lt;= p &lt; 1 (0 returns a copy).</param>
    /// <param name="seed">Philox key.</param>
    /// <param name="stream">Philox stream (e.g. one per layer and step).</param>
    public static Tensor Dropout(Tensor x, float p, ulong seed, ulong stream = 0) => DropoutApply("Dropout", x, p, seed, stream);

    /// <summary>
    /// Backward of <see cref="Dropout"/> with the same (p, seed, stream): dx = gy * mask / (1 - p),
    /// the mask regenerated from the generator (nothing saved).
    /// </summary>
    public static Tensor DropoutBackward(Tensor gy, float p, ulong seed, ulong stream = 0) => DropoutApply("DropoutBackward", gy, p, seed, stream);

    static Tensor DropoutApply(string op, Tensor x, float p, ulong seed, ulong stream)
    {
        if (!(p >= 0f && p < 1f)) throw new ArgumentException($"{op}: p = {p} for input {x.ShapeString}; allowed: 0 <= p < 1");
        var device = x.Device;
        var y = Tensor.Empty(device, x.Shape);
        float scale = 1f / (1f - p);
        if (device.UseCpuFastPath)
        {
            CpuParallel.For(x.Length, (start, count) =>
            {
                var xs = x.CpuSpan();
                var ys = y.CpuSpan();
                for (int i = start; i < start + count; i++)
                    ys[i] = Philox.Uniform(seed, stream, (uint)i) >= p ? xs[i] * scale : 0f;
            }, minChunk: 4096);
            return y;
        }
        int t = device.LaunchThreads(x.Length);
        device.Kernels<DropoutKernels>().Apply(t, x.View, y.View, t, p, scale, seed, stream);
        return y;
    }
}

// GroupReduction: sum and max over the threads of one explicitly grouped kernel group, through
// shared memory, in two levels: Lanes threads each combine Lanes partial results, then every thread
// combines those Lanes values. Three barriers per reduction (a binary tree needs log2(GroupSize)+1):
// barriers are what the CPU accelerator pays most for, and a GPU is not slowed by 16-element
// serial sums of broadcast shared-memory reads. Portable: no warp shuffles, so the same code runs
// on CUDA, OpenCL and the CPU accelerator whatever the warp size.
// Used by the row-wise kernels (softmax, group norm), launched with GroupSize threads per group.
using ILGPU;
using ILGPU.Algorithms;
using ILGPU.Runtime;

namespace Edm.Kernels;

/// <summary>Whole-group reductions for kernels launched with <see cref="GroupSize"/> threads per group.</summary>
internal static class GroupReduction
{
    /// <summary>Threads per group of the row-wise kernels (Lanes * Lanes).</summary>
    public const int GroupSize = 256;
    /// <summary>Partial results per first-level lane, and number of lanes.</summary>
    const int Lanes = 16;
    /// <summary>Shared floats a caller allocates for <see cref="Sum"/> and <see cref="Max"/> (and twice that for <see cref="Sum2"/>).</summary>
    public const int ScratchSize = GroupSize + Lanes;

    /// <summary>
    /// Launch shape of a row-wise kernel: GroupSize threads per group, one group per row up to a
    /// cap (the kernel loops over rows): one group per core on the CPU accelerator, where each
    /// group's threads are OS threads meeting at barriers; two waves of full groups on a GPU.
    /// </summary>
    public static KernelConfig RowConfig(EdmDevice device, int rows)
    {
        int cap = device.IsCpu ? Math.Max(2, Environment.ProcessorCount) : Math.Max(1, device.GridThreads / GroupSize) * 2;
        return new KernelConfig(Math.Max(1, Math.Min(rows, cap)), GroupSize);
    }

    /// <summary>
    /// Sum of <paramref name="value"/> over the group, returned to every thread. Every thread of the
    /// group must call it (it contains barriers); <paramref name="scratch"/> holds ScratchSize floats.
    /// </summary>
    public static float Sum(ArrayView<float> scratch, float value)
    {
        int t = Group.IdxX;
        scratch[t] = value;
        Group.Barrier();
        if (t < Lanes)
        {
            float a = 0f;
            for (int i = 0; i < Lanes; i++) a += scratch[t * Lanes + i];
            scratch[GroupSize + t] = a;
        }
        Group.Barrier();
        float result = 0f;
        for (int i = 0; i < Lanes; i++) result += scratch[GroupSize + i];
        // The next call overwrites scratch: everyone must have read the result first.
        Group.Barrier();
        return result;
    }

    /// <summary>
    /// The row statistics of a stable softmax over x[b .. b + cols): the row maximum and
    /// sum_j exp(x_j - max), returned to every thread. Each thread keeps a running (max, sum) over
    /// its strided elements ("online softmax": when a larger value arrives the sum is rescaled by
    /// exp(old max - new max)), then the group combines them; same contract as <see cref="Sum"/>.
    /// </summary>
    public static (float Max, float Sum) SoftmaxStats(ArrayView<float> scratch, ArrayView<float> x, int b, int cols)
    {
        int t = Group.IdxX;
        float m = float.NegativeInfinity, s = 0f;
        for (int j = t; j < cols; j += GroupSize)
        {
            float v = x[b + j];
            if (v > m) { s = s * XMath.Exp(m - v) + 1f; m = v; }
            else s += XMath.Exp(v - m);
        }
        float rowMax = Max(scratch, m);
        // Threads that saw no element have m = -inf and s = 0: their share is 0.
        float share = s > 0f ? s * XMath.Exp(m - rowMax) : 0f;
        return (rowMax, Sum(scratch, share));
    }

    /// <summary>Sums two values over the group at once (scratch: 2 * ScratchSize floats); same contract as <see cref="Sum"/>.</summary>
    public static (float A, float B) Sum2(ArrayView<float> scratch, float a, float b)
    {
        int t = Group.IdxX;
        scratch[t] = a;
        scratch[ScratchSize + t] = b;
        Group.Barrier();
        if (t < 2 * Lanes)
        {
            int lane = t % Lanes, off = t < Lanes ? 0 : ScratchSize;
            float acc = 0f;
            for (int i = 0; i < Lanes; i++) acc += scratch[off + lane * Lanes + i];
            scratch[off + GroupSize + lane] = acc;
        }
        Group.Barrier();
        float ra = 0f, rb = 0f;
        for (int i = 0; i < Lanes; i++)
        {
            ra += scratch[GroupSize + i];
            rb += scratch[ScratchSize + GroupSize + i];
        }
        Group.Barrier();
        return (ra, rb);
    }

    /// <summary>Maximum of <paramref name="value"/> over the group (same contract as <see cref="Sum"/>).</summary>
    public static float Max(ArrayView<float> scratch, float value)
    {
        int t = Group.IdxX;
        scratch[t] = value;
        Group.Barrier();
        if (t < Lanes)
        {
            float a = float.NegativeInfinity;
            for (int i = 0; i < Lanes; i++) a = XMath.Max(a, scratch[t * Lanes + i]);
            scratch[GroupSize + t] = a;
        }
        Group.Barrier();
        float result = float.NegativeInfinity;
        for (int i = 0; i < Lanes; i++) result = XMath.Max(result, scratch[GroupSize + i]);
        Group.Barrier();
        return result;
    }
}

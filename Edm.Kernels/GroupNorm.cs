// Group normalisation (Wu & He 2018), as used by every EDM network (docs/formulas.md section 7: groups
// = min(32, C/4), eps 1e-6 for DDPM++/NCSN++, 1e-5 for ADM).
//   x: (N, C, *spatial) contiguous, C = G * Cg; group (n, g) = channels [g*Cg, (g+1)*Cg) of sample n,
//   which is one contiguous block of Cg*HW floats (HW = product of the spatial dimensions).
//   mean[n,g] = average of the block; rstd[n,g] = 1 / sqrt(var[n,g] + eps) (biased variance);
//   xhat = (x - mean) * rstd;  y = xhat * weight[c] + bias[c]  (weight, bias: (C), optional).
// Backward, with dyhat = gy * weight[c] and averages over the block:
//   dx = rstd * (dyhat - avg(dyhat) - xhat * avg(dyhat * xhat));
//   dweight[c] = sum_{n, hw} gy * xhat;  dbias[c] = sum_{n, hw} gy.
// Saved by the forward: mean and rstd, each (N, G).
//
// Variants:
//   1. float64 loops (Edm.Verification/References/GroupNormReference.cs).
//   2. CPU fast path: Parallel.For over (n, g) blocks; the mean from a sum corrected by the sum of
//      the centred residuals (float32 sums of values at a large offset lose about len ulps), then
//      the centred sum of squares (stable for large HW, unlike E[x^2] - E[x]^2); Vector<float>
//      lanes and TensorPrimitives.
//   3. ILGPU kernels: one group of GroupReduction.GroupSize threads per (n, g) block (grid-stride
//      over blocks): pass 1 sum, pass 2 residual correction of the mean, pass 3 centred squares,
//      pass 4 write; backward dx likewise
//      (sums of dyhat and dyhat*xhat, then write); dweight/dbias by one group per channel.
using System.Numerics;
using System.Runtime.Intrinsics;
using System.Numerics.Tensors;
using ILGPU;
using ILGPU.Algorithms;
using ILGPU.Runtime;

namespace Edm.Kernels;

/// <summary>Sizes of a group-norm launch: x is (N, C, HW), C = G * Cg (a kernel argument; public because ILGPU's generated launchers need it).</summary>
public readonly struct GroupNormShape(int n, int c, int hw, int g, bool affine)
{
    /// <summary>Batch, channels, spatial size, groups, channels per group.</summary>
    public readonly int N = n, C = c, HW = hw, G = g, Cg = c / g;
    /// <summary>1 when weight and bias are applied (views valid), 0 otherwise.</summary>
    public readonly int Affine = affine ? 1 : 0;
    /// <summary>Elements of one (n, g) block.</summary>
    public int BlockLength => Cg * HW;
}

/// <summary>Group-norm kernels (forward, backward dx, backward dweight/dbias).</summary>
public sealed class GroupNormKernels : IKernelFamily<GroupNormKernels>
{
    internal readonly Action<KernelConfig, ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>, GroupNormShape, float, int> Forward;

    /// <summary><see cref="Forward"/>'s flags: apply SiLU to the output.</summary>
    internal const int FlagSilu = 1;
    /// <summary><see cref="Forward"/>'s flags: add the per-(n, c) addend to x before the norm.</summary>
    internal const int FlagAddend = 2;
    internal readonly Action<KernelConfig, ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>, GroupNormShape> BackwardInput;
    internal readonly Action<KernelConfig, ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>, GroupNormShape> BackwardParams;

    GroupNormKernels(Accelerator a)
    {
        Forward = a.LoadStreamKernel<ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>, GroupNormShape, float, int>(ForwardKernel);
        BackwardInput = a.LoadStreamKernel<ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>, GroupNormShape>(BackwardInputKernel);
        BackwardParams = a.LoadStreamKernel<ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>, GroupNormShape>(BackwardParamsKernel);
    }

    /// <inheritdoc/>
    public static GroupNormKernels Load(EdmDevice device) => new(device.Accelerator);

    /// One group per (n, g) block: mean, centred variance, normalised affine write; with
    /// <see cref="FlagAddend"/> the block's values are x + addend[n, c] (the U-Net's embedding add,
    /// never written out), with <see cref="FlagSilu"/> the output is SiLU of the affine norm.
    static void ForwardKernel(ArrayView<float> x, ArrayView<float> weight, ArrayView<float> bias, ArrayView<float> addend, ArrayView<float> y,
        ArrayView<float> mean, ArrayView<float> rstd, GroupNormShape s, float eps, int flags)
    {
        var scratch = SharedMemory.Allocate<float>(GroupReduction.ScratchSize);
        bool add = (flags & FlagAddend) != 0, silu = (flags & FlagSilu) != 0;
        int t = Group.IdxX;
        int len = s.BlockLength;
        float invLen = 1f / len;
        for (int block = Grid.IdxX; block < s.N * s.G; block += Grid.DimX)
        {
            int b = block * len;
            int c0 = (block % s.G) * s.Cg;
            int e0 = (block / s.G) * s.C + c0;  // addend index of the block's first channel
            float acc = 0f;
            for (int j = t; j < len; j += GroupReduction.GroupSize) acc += Value(x, addend, add, b, e0, j, s.HW);
            // Mean in two passes: the float32 sum's rounding (up to about len ulps of |x| when the
            // values sit at a large offset) is recovered from the sum of the centred residuals.
            float mu0 = GroupReduction.Sum(scratch, acc) * invLen;
            acc = 0f;
            for (int j = t; j < len; j += GroupReduction.GroupSize) acc += Value(x, addend, add, b, e0, j, s.HW) - mu0;
            float mu = mu0 + GroupReduction.Sum(scratch, acc) * invLen;
            acc = 0f;
            for (int j = t; j < len; j += GroupReduction.GroupSize) { float d = Value(x, addend, add, b, e0, j, s.HW) - mu; acc += d * d; }
            float r = XMath.Rsqrt(GroupReduction.Sum(scratch, acc) * invLen + eps);
            for (int j = t; j < len; j += GroupReduction.GroupSize)
            {
                float v = (Value(x, addend, add, b, e0, j, s.HW) - mu) * r;
                if (s.Affine != 0) { int c = c0 + j / s.HW; v = v * weight[c] + bias[c]; }
                y[b + j] = silu ? Silu(v) : v;
            }
            if (t == 0) { mean[block] = mu; rstd[block] = r; }
        }
    }

    // Element j of a block: x, plus its channel's addend where the launch has one (a uniform
    // branch: without an addend no division is made).
    static float Value(ArrayView<float> x, ArrayView<float> addend, bool add, int b, int e0, int j, int hw) =>
        add ? x[b + j] + addend[e0 + j / hw] : x[b + j];

    static float Silu(float v) => v / (1f + XMath.Exp(-v));

    /// One group per (n, g) block: avg(dyhat), avg(dyhat*xhat), then dx.
    static void BackwardInputKernel(ArrayView<float> x, ArrayView<float> gy, ArrayView<float> weight,
        ArrayView<float> mean, ArrayView<float> rstd, ArrayView<float> dx, GroupNormShape s)
    {
        var scratch = SharedMemory.Allocate<float>(2 * GroupReduction.ScratchSize);
        int t = Group.IdxX;
        int len = s.BlockLength;
        float invLen = 1f / len;
        for (int block = Grid.IdxX; block < s.N * s.G; block += Grid.DimX)
        {
            int b = block * len;
            int c0 = (block % s.G) * s.Cg;
            float mu = mean[block], r = rstd[block];
            float a1 = 0f, a2 = 0f;
            for (int j = t; j < len; j += GroupReduction.GroupSize)
            {
                float dyhat = s.Affine != 0 ? gy[b + j] * weight[c0 + j / s.HW] : gy[b + j];
                a1 += dyhat;
                a2 += dyhat * (x[b + j] - mu) * r;
            }
            var (s1, s2) = GroupReduction.Sum2(scratch, a1, a2);
            float avgDy = s1 * invLen, avgDyX = s2 * invLen;
            for (int j = t; j < len; j += GroupReduction.GroupSize)
            {
                float dyhat = s.Affine != 0 ? gy[b + j] * weight[c0 + j / s.HW] : gy[b + j];
                float xhat = (x[b + j] - mu) * r;
                dx[b + j] = r * (dyhat - avgDy - xhat * avgDyX);
            }
        }
    }

    /// One group per channel c: dweight[c] = sum gy*xhat, dbias[c] = sum gy over (n, hw).
    static void BackwardParamsKernel(ArrayView<float> x, ArrayView<float> gy, ArrayView<float> mean,
        ArrayView<float> rstd, ArrayView<float> dweight, ArrayView<float> dbias, GroupNormShape s)
    {
        var scratch = SharedMemory.Allocate<float>(2 * GroupReduction.ScratchSize);
        int t = Group.IdxX;
        for (int c = Grid.IdxX; c < s.C; c += Grid.DimX)
        {
            int g = c / s.Cg;
            float aw = 0f, ab = 0f;
            for (int k = t; k < s.N * s.HW; k += GroupReduction.GroupSize)
            {
                int n = k / s.HW;
                int i = (n * s.C + c) * s.HW + (k - n * s.HW);
                float gv = gy[i];
                aw += gv * (x[i] - mean[n * s.G + g]) * rstd[n * s.G + g];
                ab += gv;
            }
            var (sw, sb) = GroupReduction.Sum2(scratch, aw, ab);
            if (t == 0) { dweight[c] = sw; dbias[c] = sb; }
        }
    }
}

/// <summary>Gradients returned by <see cref="Ops.GroupNormBackward"/>.</summary>
/// <param name="Dx">Gradient of the input, (N, C, *spatial).</param>
/// <param name="DWeight">Gradient of the weight, (C) (as if weight were ones when none was given).</param>
/// <param name="DBias">Gradient of the bias, (C).</param>
/// <param name="DAddend">Gradient of the per-(sample, channel) addend of <see cref="Ops.GroupNormSiluForward"/>, (N, C) (null without one).</param>
public sealed record GroupNormGrads(Tensor Dx, Tensor DWeight, Tensor DBias, Tensor? DAddend = null);

/// <summary>Outputs of <see cref="Ops.GroupNormForward"/>.</summary>
/// <param name="Y">Normalised output, x's shape.</param>
/// <param name="Mean">Mean per (n, g), (N, G).</param>
/// <param name="Rstd">Reciprocal standard deviation 1/sqrt(var + eps) per (n, g), (N, G).</param>
public sealed record GroupNormOutput(Tensor Y, Tensor Mean, Tensor Rstd);

public static partial class Ops
{
    /// <summary>Group normalisation (inference: nothing saved). See <see cref="GroupNormForward"/>.</summary>
    public static Tensor GroupNorm(Tensor x, int groups, Tensor? weight, Tensor? bias, float eps = 1e-5f)
    {
        var o = GroupNormForward(x, groups, weight, bias, eps);
        o.Mean.Dispose();
        o.Rstd.Dispose();
        return o.Y;
    }

    /// <summary>
    /// Group normalisation over (N, C, *spatial): y = (x - mean) * rstd * weight[c] + bias[c], with
    /// mean and biased variance over each group of C/groups channels of one sample.
    /// </summary>
    /// <param name="x">(N, C, *spatial), rank &gt;= 2.</param>
    /// <param name="groups">G, must divide C.</param>
    /// <param name="weight">(C) scale, or null (with bias null) for no affine transform.</param>
    /// <param name="bias">(C) shift; given exactly when weight is.</param>
    /// <param name="eps">Added to the variance.</param>
    /// <returns>y and the saved mean and rstd, each (N, G).</returns>
    public static GroupNormOutput GroupNormForward(Tensor x, int groups, Tensor? weight, Tensor? bias, float eps = 1e-5f) =>
        GroupNormForwardImpl(x, groups, weight, bias, eps, silu: false);

    /// <summary>
    /// SiLU(GroupNorm(x)): the networks' norm-then-activation pair as one op. On the CPU fast path one
    /// pass writes silu((x - mean) rstd weight + bias) (the separate pair wrote and re-read the normed
    /// tensor); the kernel path likewise in one kernel (the addend too). Mean and rstd as <see cref="GroupNormForward(Tensor, int, Tensor?, Tensor?, float)"/>.
    /// </summary>
    /// <param name="x">(N, C, *spatial).</param>
    /// <param name="groups">G, dividing C.</param>
    /// <param name="weight">Scale (C) or null.</param>
    /// <param name="bias">Shift (C) or null (given with weight).</param>
    /// <param name="eps">Added to the variance.</param>
    /// <param name="addend">
    /// Optional (N, C) (or (N, C, 1, ..., 1)) values added to every element of their channel before the
    /// norm: SiLU(GroupNorm(x + addend)), the U-Net blocks' embedding add, without writing x + addend
    /// on the CPU fast path; mean and rstd are those of x + addend.
    /// </param>
    public static GroupNormOutput GroupNormSiluForward(Tensor x, int groups, Tensor? weight, Tensor? bias, float eps = 1e-5f, Tensor? addend = null)
    {
        if (addend is null) return GroupNormForwardImpl(x, groups, weight, bias, eps, silu: true);
        var s = GroupNormValidate("GroupNormSilu", x, groups, weight);
        RequireAddend("GroupNormSilu", x, addend, s);
        return GroupNormForwardImpl(x, groups, weight, bias, eps, silu: true, addend);
    }

    /// <summary>(N, C, 1, ..., 1) of x's rank: the addend's broadcast shape.</summary>
    static int[] AddendShape(Tensor x)
    {
        var shape = new int[x.Rank];
        Array.Fill(shape, 1);
        shape[0] = x.Shape[0];
        shape[1] = x.Shape[1];
        return shape;
    }

    static void RequireAddend(string op, Tensor x, Tensor addend, GroupNormShape s)
    {
        bool ok = addend.Rank >= 2 && addend.Shape[0] == s.N && addend.Shape[1] == s.C && addend.Length == s.N * s.C;
        if (!ok) throw new ArgumentException($"{op}: addend has shape {addend.ShapeString}; expected (N, C) = ({s.N}, {s.C}) or (N, C, 1, ...) for x {x.ShapeString}");
    }

    static GroupNormOutput GroupNormForwardImpl(Tensor x, int groups, Tensor? weight, Tensor? bias, float eps, bool silu, Tensor? addend = null)
    {
        string op = silu ? "GroupNormSilu" : "GroupNorm";
        var s = GroupNormValidate(op, x, groups, weight);
        if ((weight is null) != (bias is null))
            throw new ArgumentException($"{op}: weight and bias must be given together (weight {(weight is null ? "null" : weight.ShapeString)}, bias {(bias is null ? "null" : bias.ShapeString)})");
        if (bias is not null) Shapes.RequireEqual(op, "bias", [s.C], bias.Shape);
        if (!(eps >= 0f)) throw new ArgumentException($"{op}: eps = {eps}; allowed: eps >= 0");
        var device = x.Device;
        var y = Tensor.Empty(device, x.Shape);
        var mean = Tensor.Empty(device, s.N, s.G);
        var rstd = Tensor.Empty(device, s.N, s.G);
        if (device.UseCpuFastPath)
        {
            GroupNormForwardCpu(x, weight, bias, addend, y, mean, rstd, s, eps, silu);
        }
        else
        {
            // One pass: the addend, the norm and SiLU fused (GroupNormKernels.Forward's flags).
            int flags = (silu ? GroupNormKernels.FlagSilu : 0) | (addend is null ? 0 : GroupNormKernels.FlagAddend);
            device.Kernels<GroupNormKernels>().Forward(GroupReduction.RowConfig(device, s.N * s.G), x.View,
                weight?.View ?? x.View, bias?.View ?? x.View, addend?.View ?? x.View, y.View, mean.View, rstd.View, s, eps, flags);
        }
        return new GroupNormOutput(y, mean, rstd);
    }

    /// <summary>
    /// Backward of <see cref="GroupNormForward"/>: returns new tensors dx (x's shape), dweight and
    /// dbias (C). Nothing is accumulated; the caller adds parameter gradients where it keeps them.
    /// </summary>
    /// <param name="x">The forward input (N, C, *spatial).</param>
    /// <param name="gy">Gradient of y, x's shape.</param>
    /// <param name="mean">Saved mean (N, G).</param>
    /// <param name="rstd">Saved rstd (N, G).</param>
    /// <param name="groups">G used by the forward.</param>
    /// <param name="weight">The forward's weight (C), or null if it had none.</param>
    public static GroupNormGrads GroupNormBackward(Tensor x, Tensor gy, Tensor mean, Tensor rstd, int groups, Tensor? weight) =>
        GroupNormBackwardImpl(x, gy, mean, rstd, groups, weight, null, silu: false);

    /// <summary>
    /// Backward of <see cref="GroupNormSiluForward"/>: the normed u = GroupNorm(x) is recomputed from
    /// x and the saved statistics, gy becomes gy silu'(u), then as <see cref="GroupNormBackward(Tensor, Tensor, Tensor, Tensor, int, Tensor?)"/>.
    /// <paramref name="bias"/> and <paramref name="eps"/> are the forward's (the kernel path recomputes u
    /// by running the deterministic forward again; the CPU path from the saved statistics).
    /// </summary>
    /// <remarks>
    /// With the forward's <paramref name="addend"/> (N, C), the result's DAddend is its gradient, (N, C):
    /// the sum of dx over each channel's elements.
    /// </remarks>
    public static GroupNormGrads GroupNormSiluBackward(Tensor x, Tensor gy, Tensor mean, Tensor rstd, int groups, Tensor? weight, Tensor? bias, float eps, Tensor? addend = null)
    {
        if (addend is null) return GroupNormBackwardImpl(x, gy, mean, rstd, groups, weight, bias, silu: true, eps);
        var s = GroupNormValidate("GroupNormSiluBackward", x, groups, weight);
        RequireAddend("GroupNormSiluBackward", x, addend, s);
        if (x.Device.UseCpuFastPath) return GroupNormBackwardImpl(x, gy, mean, rstd, groups, weight, bias, silu: true, eps, addend);
        GroupNormGrads g;
        using (var e = addend.Reshape(AddendShape(x)))
        using (var u = Add(x, e))
            g = GroupNormBackwardImpl(u, gy, mean, rstd, groups, weight, bias, silu: true, eps);
        using var rows = g.Dx.Reshape(s.N * s.C, s.HW);
        using var da = Sum(rows, [1]);
        return g with { DAddend = da.Reshape(s.N, s.C) };
    }

    static GroupNormGrads GroupNormBackwardImpl(Tensor x, Tensor gy, Tensor mean, Tensor rstd, int groups, Tensor? weight, Tensor? bias, bool silu, float eps = 0f, Tensor? addend = null)
    {
        string op = silu ? "GroupNormSiluBackward" : "GroupNormBackward";
        var s = GroupNormValidate(op, x, groups, weight);
        if ((weight is null) != (bias is null) && silu)
            throw new ArgumentException($"{op}: weight and bias must be given together (the forward's), got weight {(weight is null ? "null" : weight.ShapeString)}, bias {(bias is null ? "null" : bias.ShapeString)}");
        if (bias is not null) Shapes.RequireEqual(op, "bias", [s.C], bias.Shape);
        Shapes.RequireEqual(op, "gy", x.Shape, gy.Shape);
        Shapes.RequireEqual(op, "mean", [s.N, s.G], mean.Shape);
        Shapes.RequireEqual(op, "rstd", [s.N, s.G], rstd.Shape);
        var device = x.Device;
        if (silu && !device.UseCpuFastPath)
        {
            // Kernel path: recompute u (the forward is deterministic: the same statistics), then
            // gy silu'(u), then the plain backward.
            var o = GroupNormForwardImpl(x, groups, weight, bias, eps, silu: false);
            Tensor gu;
            try
            {
                gu = Zip(o.Y, gy, new SiluGradOp(), op);
            }
            finally
            {
                o.Y.Dispose(); o.Mean.Dispose(); o.Rstd.Dispose();
            }
            try { return GroupNormBackwardImpl(x, gu, mean, rstd, groups, weight, null, silu: false); }
            finally { gu.Dispose(); }
        }
        var dx = Tensor.Empty(device, x.Shape);
        var dw = Tensor.Empty(device, s.C);
        var db = Tensor.Empty(device, s.C);
        if (device.UseCpuFastPath)
        {
            var da = addend is null ? null : Tensor.Empty(device, s.N, s.C);
            GroupNormBackwardCpu(x, gy, mean, rstd, weight, bias, addend, silu, dx, dw, db, da, s);
            return new GroupNormGrads(dx, dw, db, da);
        }
        else
        {
            var k = device.Kernels<GroupNormKernels>();
            k.BackwardInput(GroupReduction.RowConfig(device, s.N * s.G), x.View, gy.View, weight?.View ?? x.View, mean.View, rstd.View, dx.View, s);
            k.BackwardParams(GroupReduction.RowConfig(device, s.C), x.View, gy.View, mean.View, rstd.View, dw.View, db.View, s);
        }
        return new GroupNormGrads(dx, dw, db);
    }

    static GroupNormShape GroupNormValidate(string op, Tensor x, int groups, Tensor? weight)
    {
        if (x.Rank < 2) throw new ArgumentException($"{op}: x has shape {x.ShapeString}; expected (N, C, *spatial) of rank >= 2");
        int n = x.Shape[0], c = x.Shape[1], hw = x.Length / (n * c);
        if (groups < 1 || c % groups != 0)
            throw new ArgumentException($"{op}: x has shape {x.ShapeString} with C = {c} channels, not divisible by groups = {groups}; allowed: groups >= 1 dividing C");
        if (weight is not null) Shapes.RequireEqual(op, "weight", [c], weight.Shape);
        return new GroupNormShape(n, c, hw, groups, weight is not null);
    }

    // With an addend e (N, C), the block's values are u = x + e[n, c]: every centred pass over a
    // channel's x uses the centre mu - e[n, c] (x - (mu - e) = u - mu), so u is never written.
    static void GroupNormForwardCpu(Tensor x, Tensor? weight, Tensor? bias, Tensor? addend, Tensor y, Tensor mean, Tensor rstd, GroupNormShape s, float eps, bool silu)
    {
        int len = s.BlockLength;
        RowChunks.Run(s.N * s.G, len, (b0, b1) =>
        {
            var xs = x.CpuSpan();
            var ys = y.CpuSpan();
            var ms = mean.CpuSpan();
            var rs = rstd.CpuSpan();
            var ws = weight is null ? default : weight.CpuSpan();
            var bs = bias is null ? default : bias.CpuSpan();
            var es = addend is null ? default : addend.CpuSpan();
            int hw = s.HW;
            for (int block = b0; block < b1; block++)
            {
                var xb = xs.Slice(block * len, len);
                int c0 = (block % s.G) * s.Cg;
                // The block's addends (0 without): channel cc's centre is mu - e[cc].
                var eb = es.IsEmpty ? default : es.Slice((block / s.G) * s.C + c0, s.Cg);
                // Mean in two passes (as the kernel): the centred residuals correct the float32 sum.
                float mu0, mu, r;
                // Then one pass for both centred moments around mu0: s1 = sum (u - mu0) (the rounding
                // residual of the mean) and s2 = sum (u - mu0)^2; var = s2/len - (s1/len)^2 exactly in
                // real arithmetic, and s1/len is at the rounding level, so nothing cancels.
                float s1 = 0f, s2 = 0f;
                if (eb.IsEmpty)
                {
                    mu0 = TensorPrimitives.Sum(xb) / len;
                    CenteredMoments(xb, mu0, ref s1, ref s2);
                }
                else
                {
                    float t = 0f;
                    for (int cc = 0; cc < s.Cg; cc++) t += TensorPrimitives.Sum(xb.Slice(cc * hw, hw)) + hw * eb[cc];
                    mu0 = t / len;
                    for (int cc = 0; cc < s.Cg; cc++) CenteredMoments(xb.Slice(cc * hw, hw), mu0 - eb[cc], ref s1, ref s2);
                }
                float d1 = s1 / len;
                mu = mu0 + d1;
                r = 1f / MathF.Sqrt(MathF.Max(s2 / len - d1 * d1, 0f) + eps);
                ms[block] = mu;
                rs[block] = r;
                for (int cc = 0; cc < s.Cg; cc++)
                {
                    // y = (x - mu) * scale + shift with scale = r * w: centred first, because
                    // x * scale + (b - mu * scale) cancels catastrophically when |mu| * r is large.
                    float scale = weight is null ? r : r * ws[c0 + cc];
                    float shift = bias is null ? 0f : bs[c0 + cc];
                    float centre = eb.IsEmpty ? mu : mu - eb[cc];
                    var yc = ys.Slice(block * len + cc * hw, hw);
                    if (silu) CenteredAffineSilu(xb.Slice(cc * hw, hw), centre, scale, shift, yc);
                    else CenteredAffine(xb.Slice(cc * hw, hw), centre, scale, shift, yc);
                }
            }
        });
    }

    // With an addend (see the forward): channel centres mu - e[n, c], and dAddend[n, c] = the sum of
    // dx over the channel's elements (summed right after they are written, while in cache).
    static void GroupNormBackwardCpu(Tensor x, Tensor gy, Tensor mean, Tensor rstd, Tensor? weight, Tensor? bias, Tensor? addend, bool silu,
        Tensor dx, Tensor dw, Tensor db, Tensor? dAddend, GroupNormShape s)
    {
        int len = s.BlockLength, hw = s.HW;
        // Per-(n, c) partial sums of gy*xhat and gy; summed over n at the end (no races).
        var pw = new float[s.N * s.C];
        var pb = new float[s.N * s.C];
        RowChunks.Run(s.N * s.G, len, (b0, b1) =>
        {
            var xs = x.CpuSpan();
            var gyAll = gy.CpuSpan();
            var ds = dx.CpuSpan();
            var ws = weight is null ? default : weight.CpuSpan();
            var bs = bias is null ? default : bias.CpuSpan();
            var es = addend is null ? default : addend.CpuSpan();
            var das = dAddend is null ? default : dAddend.CpuSpan();
            for (int block = b0; block < b1; block++)
            {
                float mu = mean.CpuSpan()[block], r = rstd.CpuSpan()[block];
                int n = block / s.G, c0 = (block % s.G) * s.Cg;
                var eb = es.IsEmpty ? default : es.Slice(n * s.C + c0, s.Cg);
                var gs = gyAll;
                if (silu)
                {
                    // gy of the norm's output: gy silu'(u), u recomputed as the forward did, written
                    // into dx's block (scratch until GroupNormDx overwrites it element by element).
                    for (int cc = 0; cc < s.Cg; cc++)
                    {
                        int off = block * len + cc * hw;
                        float scale = weight is null ? r : r * ws[c0 + cc];
                        float shift = bias is null ? 0f : bs[c0 + cc];
                        SiluGradOfAffine(xs.Slice(off, hw), gyAll.Slice(off, hw), (eb.IsEmpty ? mu : mu - eb[cc]), scale, shift, ds.Slice(off, hw));
                    }
                    gs = ds;
                }
                float sumDy = 0f, sumDyXhat = 0f;
                for (int cc = 0; cc < s.Cg; cc++)
                {
                    int c = c0 + cc, off = block * len + cc * hw;
                    float sg = TensorPrimitives.Sum(gs.Slice(off, hw));
                    float sgx = CenteredDot(gs.Slice(off, hw), xs.Slice(off, hw), (eb.IsEmpty ? mu : mu - eb[cc])) * r;
                    pb[n * s.C + c] = sg;
                    pw[n * s.C + c] = sgx;
                    float w = weight is null ? 1f : ws[c];
                    sumDy += w * sg;
                    sumDyXhat += w * sgx;
                }
                // dx = r*w*gy - r*avgDy - r*xhat*avgDyXhat = a*gy + bx*(x - mu) + c0 per channel.
                float avgDy = sumDy / len, avgDyXhat = sumDyXhat / len;
                float bx = -r * r * avgDyXhat, c0v = -r * avgDy;
                for (int cc = 0; cc < s.Cg; cc++)
                {
                    int off = block * len + cc * hw;
                    float a = r * (weight is null ? 1f : ws[c0 + cc]);
                    GroupNormDx(gs.Slice(off, hw), xs.Slice(off, hw), a, bx, (eb.IsEmpty ? mu : mu - eb[cc]), c0v, ds.Slice(off, hw));
                    if (!das.IsEmpty) das[n * s.C + c0 + cc] = TensorPrimitives.Sum(ds.Slice(off, hw));
                }
            }
        });
        var dws = dw.CpuSpan();
        var dbs = db.CpuSpan();
        for (int c = 0; c < s.C; c++)
        {
            float aw = 0f, ab = 0f;
            for (int n = 0; n < s.N; n++) { aw += pw[n * s.C + c]; ab += pb[n * s.C + c]; }
            dws[c] = aw;
            dbs[c] = ab;
        }
    }

    /// <summary>y = (x - mu) * scale + shift, with Vector&lt;float&gt;.</summary>
    static void CenteredAffine(ReadOnlySpan<float> x, float mu, float scale, float shift, Span<float> y)
    {
        var vmu = new Vector<float>(mu);
        var vs = new Vector<float>(scale);
        var vb = new Vector<float>(shift);
        int i = 0;
        for (; i <= x.Length - Vector<float>.Count; i += Vector<float>.Count)
            ((new Vector<float>(x.Slice(i)) - vmu) * vs + vb).CopyTo(y.Slice(i));
        for (; i < x.Length; i++) y[i] = (x[i] - mu) * scale + shift;
    }

    /// <summary>(x[i..i+16] - mu) * scale + shift: the normed values of 16 lanes (the fused SiLU loops).</summary>
    [System.Runtime.CompilerServices.MethodImpl(System.Runtime.CompilerServices.MethodImplOptions.AggressiveInlining)]
    static Vector512<float> Affine512(ReadOnlySpan<float> x, int i, float mu, float scale, float shift) =>
        (Vector512.Create(x.Slice(i, Vector512<float>.Count)) - Vector512.Create(mu)) * Vector512.Create(scale) + Vector512.Create(shift);

    /// <summary>y = silu((x - mu) * scale + shift), with Vector512 where accelerated, else Vector&lt;float&gt; (the sigmoid as SiluOp's).</summary>
    static void CenteredAffineSilu(ReadOnlySpan<float> x, float mu, float scale, float shift, Span<float> y)
    {
        int i = 0;
        if (Vector512.IsHardwareAccelerated && x.Length >= Vector512<float>.Count)
        {
            // AVX-512: 16 lanes (Vector<float> stays 8 wide); u / (1 + exp(-u)).
            var one = Vector512<float>.One;
            for (; i <= x.Length - Vector512<float>.Count; i += Vector512<float>.Count)
            {
                var u = Affine512(x, i, mu, scale, shift);
                (u / (one + VecMath.Exp(-u))).CopyTo(y.Slice(i));
            }
        }
        var vmu = new Vector<float>(mu);
        var vs = new Vector<float>(scale);
        var vb = new Vector<float>(shift);
        for (; i <= x.Length - Vector<float>.Count; i += Vector<float>.Count)
        {
            var u = (new Vector<float>(x.Slice(i)) - vmu) * vs + vb;
            (u * KMath.Sigmoid(u)).CopyTo(y.Slice(i));
        }
        for (; i < x.Length; i++)
        {
            float u = (x[i] - mu) * scale + shift;
            y[i] = u * KMath.Sigmoid(u);
        }
    }

    /// <summary>g = gy silu'(u) with u = (x - mu) * scale + shift (SiluGradOp's formula; Vector512 where accelerated).</summary>
    static void SiluGradOfAffine(ReadOnlySpan<float> x, ReadOnlySpan<float> gy, float mu, float scale, float shift, Span<float> g)
    {
        int i = 0;
        if (Vector512.IsHardwareAccelerated && x.Length >= Vector512<float>.Count)
        {
            var one = Vector512<float>.One;
            for (; i <= x.Length - Vector512<float>.Count; i += Vector512<float>.Count)
            {
                var u = Affine512(x, i, mu, scale, shift);
                var sg = one / (one + VecMath.Exp(-u));
                (Vector512.Create(gy.Slice(i, Vector512<float>.Count)) * sg * (one + u * (one - sg))).CopyTo(g.Slice(i));
            }
        }
        var vmu = new Vector<float>(mu);
        var vs = new Vector<float>(scale);
        var vb = new Vector<float>(shift);
        var op = new SiluGradOp();
        for (; i <= x.Length - Vector<float>.Count; i += Vector<float>.Count)
            op.Apply((new Vector<float>(x.Slice(i)) - vmu) * vs + vb, new Vector<float>(gy.Slice(i))).CopyTo(g.Slice(i));
        for (; i < x.Length; i++) g[i] = op.Apply((x[i] - mu) * scale + shift, gy[i]);
    }

    /// <summary>dx = a * gy + bx * (x - mu) + c, with Vector&lt;float&gt;.</summary>
    static void GroupNormDx(ReadOnlySpan<float> gy, ReadOnlySpan<float> x, float a, float bx, float mu, float c, Span<float> dx)
    {
        var va = new Vector<float>(a);
        var vb = new Vector<float>(bx);
        var vmu = new Vector<float>(mu);
        var vc = new Vector<float>(c);
        int i = 0;
        for (; i <= x.Length - Vector<float>.Count; i += Vector<float>.Count)
            (va * new Vector<float>(gy.Slice(i)) + vb * (new Vector<float>(x.Slice(i)) - vmu) + vc).CopyTo(dx.Slice(i));
        for (; i < x.Length; i++) dx[i] = a * gy[i] + bx * (x[i] - mu) + c;
    }

    /// <summary>
    /// s1 += sum (x - c), s2 += sum (x - c)^2 in one pass (Vector512 with two accumulator pairs where
    /// accelerated, else Vector&lt;float&gt;).
    /// </summary>
    static void CenteredMoments(ReadOnlySpan<float> x, float c, ref float s1, ref float s2)
    {
        int i = 0, n = x.Length;
        float t1 = 0f, t2 = 0f;
        if (Vector512.IsHardwareAccelerated && n >= 2 * Vector512<float>.Count)
        {
            int w = Vector512<float>.Count;
            var vc = Vector512.Create(c);
            Vector512<float> a0 = default, a1 = default, q0 = default, q1 = default;
            for (; i <= n - 2 * w; i += 2 * w)
            {
                var d0 = Vector512.Create(x.Slice(i, w)) - vc;
                var e0 = Vector512.Create(x.Slice(i + w, w)) - vc;
                a0 += d0; a1 += e0;
                q0 = Vector512.MultiplyAddEstimate(d0, d0, q0);
                q1 = Vector512.MultiplyAddEstimate(e0, e0, q1);
            }
            t1 = Vector512.Sum(a0 + a1);
            t2 = Vector512.Sum(q0 + q1);
        }
        else
        {
            var vc = new Vector<float>(c);
            Vector<float> a0 = default, q0 = default;
            for (; i <= n - Vector<float>.Count; i += Vector<float>.Count)
            {
                var d = new Vector<float>(x.Slice(i)) - vc;
                a0 += d;
                q0 += d * d;
            }
            t1 = Vector.Sum(a0);
            t2 = Vector.Sum(q0);
        }
        for (; i < n; i++) { float d = x[i] - c; t1 += d; t2 += d * d; }
        s1 += t1;
        s2 += t2;
    }

    /// <summary>sum (x - mu) with Vector&lt;float&gt; lanes: the residual of a mean estimate mu (batch norm's statistics).</summary>
    static float CenteredSum(ReadOnlySpan<float> x, float mu)
    {
        var acc = Vector<float>.Zero;
        var vmu = new Vector<float>(mu);
        int i = 0;
        for (; i <= x.Length - Vector<float>.Count; i += Vector<float>.Count) acc += new Vector<float>(x.Slice(i)) - vmu;
        float sum = Vector.Sum(acc);
        for (; i < x.Length; i++) sum += x[i] - mu;
        return sum;
    }

    static float CenteredSquares(ReadOnlySpan<float> x, float mu)
    {
        var acc = Vector<float>.Zero;
        var vmu = new Vector<float>(mu);
        int i = 0;
        for (; i <= x.Length - Vector<float>.Count; i += Vector<float>.Count)
        {
            var d = new Vector<float>(x.Slice(i)) - vmu;
            acc += d * d;
        }
        float sum = Vector.Sum(acc);
        for (; i < x.Length; i++) { float d = x[i] - mu; sum += d * d; }
        return sum;
    }

    /// <summary>sum g * (x - mu) with Vector&lt;float&gt; lanes (centred, so no cancellation when |mu| is large).</summary>
    static float CenteredDot(ReadOnlySpan<float> g, ReadOnlySpan<float> x, float mu)
    {
        var acc = Vector<float>.Zero;
        var vmu = new Vector<float>(mu);
        int i = 0;
        for (; i <= x.Length - Vector<float>.Count; i += Vector<float>.Count)
            acc += new Vector<float>(g.Slice(i)) * (new Vector<float>(x.Slice(i)) - vmu);
        float sum = Vector.Sum(acc);
        for (; i < x.Length; i++) sum += g[i] * (x[i] - mu);
        return sum;
    }
}

// ParameterSet: a model's trainable leaves packed into one flat buffer for the values and one for
// the gradients; each parameter's Value and Grad become views of them (docs/autograd.md#flat-parameters).
//
// Why: a training step ends with per-parameter updates (zero the gradients, nan_to_num, Adam, EMA,
// the gradient norm). Over a list of tensors each is one launch per tensor: DDPM++ at 32x32 has
// about 270 parameter tensors, so about 1,300 launches per step for work that is one pass over
// memory. Over the flat buffers each is one launch (and one CpuParallel.For on the CPU fast path).
// The updates are elementwise, so the results are bitwise the same as per tensor.
//
// Layout: parameter i occupies [Offset(i), Offset(i) + Length) of the flat buffers, in the given
// order, each start rounded up to Alignment floats (64 bytes: the CPU fast paths' Vector512 loads
// stay aligned as for a separately allocated tensor, and GPU float4 accesses stay 16-byte aligned).
// The gaps are zero in every flat buffer and stay zero under every update (Adam and EMA of zeros
// are zeros), so the flat buffers can be reduced over whole (the gradient norm).
using Edm.Kernels;
using ILGPU.Runtime;

namespace Edm.Autograd;

/// <summary>
/// Trainable leaves whose values and gradients live in two flat buffers (see the file header).
/// Disposing the set releases its references to the flat buffers; the parameters' views keep
/// them alive until the parameters are disposed.
/// </summary>
public sealed class ParameterSet : IDisposable
{
    /// <summary>Alignment of each parameter's start in the flat buffers, in floats (64 bytes).</summary>
    public const int Alignment = 16;

    readonly Variable[] _params;
    readonly int[] _offsets;

    /// <summary>The parameters, in packing order.</summary>
    public IReadOnlyList<Variable> Parameters => _params;
    /// <summary>Elements of each flat buffer (parameters plus alignment gaps).</summary>
    public int FlatLength { get; }
    /// <summary>Every parameter's value, flat: (FlatLength).</summary>
    public Tensor Values { get; }
    /// <summary>Every parameter's gradient, flat: (FlatLength).</summary>
    public Tensor Grads { get; }
    /// <summary>The device holding the buffers.</summary>
    public EdmDevice Device => Values.Device;

    ParameterSet(Variable[] ps, int[] offsets, int flatLength, Tensor values, Tensor grads)
    {
        _params = ps;
        _offsets = offsets;
        FlatLength = flatLength;
        Values = values;
        Grads = grads;
    }

    /// <summary>Start of parameter <paramref name="i"/> in the flat buffers.</summary>
    public int Offset(int i) => _offsets[i];

    /// <summary>
    /// Moves <paramref name="parameters"/> (trainable leaves on one device, each once) into flat
    /// buffers, copying their values and gradients; afterwards each Value and Grad is a view.
    /// Pack before taking views of a value (Detach) or building an optimizer over the list.
    /// </summary>
    public static ParameterSet Pack(IEnumerable<Variable> parameters)
    {
        const string op = "ParameterSet.Pack";
        var ps = parameters.ToArray();
        if (ps.Length == 0) throw new ArgumentException($"{op}: no parameters to pack");
        var seen = new HashSet<Variable>(ReferenceEqualityComparer.Instance);
        var offsets = new int[ps.Length];
        long total = 0;
        for (int i = 0; i < ps.Length; i++)
        {
            var p = ps[i];
            p.CheckAlive(op);
            if (!p.RequiresGrad || !p.IsLeaf)
                throw new ArgumentException($"{op}: {p.Describe()} is not a trainable leaf (requiresGrad: true, not computed by an op)");
            if (!seen.Add(p)) throw new ArgumentException($"{op}: {p.Describe()} appears twice (parameter {i})");
            if (p.Device != ps[0].Device)
                throw new ArgumentException($"{op}: {p.Describe()} is on {p.Device.Spec}, parameter 0 on {ps[0].Device.Spec}; a set lives on one device");
            total = (total + Alignment - 1) / Alignment * Alignment;
            offsets[i] = (int)Math.Min(total, int.MaxValue);
            total += p.Value.Length;
            if (total > Tensor.MaxElements)
                throw new ArgumentException($"{op}: the parameters need {total:N0} floats in one buffer, more than a tensor holds ({Tensor.MaxElements:N0})");
        }
        int n = (int)total;
        var device = ps[0].Device;
        var values = Tensor.Zeros(device, n);
        var grads = Tensor.Zeros(device, n);
        for (int i = 0; i < ps.Length; i++)
            ps[i].MoveStorage(values.ViewRange(offsets[i], ps[i].Shape), grads.ViewRange(offsets[i], ps[i].Shape));
        return new ParameterSet(ps, offsets, n, values, grads);
    }

    /// <summary>A flat buffer of this layout, zero-filled, with one view per parameter (e.g. Adam's moments).</summary>
    public FlatTensors ZerosLike() => Views(Tensor.Zeros(Device, FlatLength));

    /// <summary>A copy of the values in a new flat buffer of this layout, with one view per parameter (e.g. the EMA).</summary>
    public FlatTensors CopyOfValues() => Views(Ops.Copy(Values));

    FlatTensors Views(Tensor flat) =>
        new(flat, _params.Select((p, i) => flat.ViewRange(_offsets[i], p.Shape)).ToArray());

    /// <summary>Zeroes every gradient (one memset).</summary>
    public void ZeroGrad() => Grads.View.MemSetToZero();

    /// <inheritdoc/>
    public void Dispose()
    {
        Values.Dispose();
        Grads.Dispose();
    }
}

/// <summary>A flat buffer in a <see cref="ParameterSet"/>'s layout and its per-parameter views.</summary>
public sealed class FlatTensors(Tensor flat, IReadOnlyList<Tensor> views) : IDisposable
{
    /// <summary>The whole buffer: (FlatLength).</summary>
    public Tensor Flat { get; } = flat;
    /// <summary>One view per parameter, in the set's order and shapes.</summary>
    public IReadOnlyList<Tensor> Views { get; } = views;

    /// <inheritdoc/>
    public void Dispose()
    {
        foreach (var v in Views) v.Dispose();
        Flat.Dispose();
    }
}

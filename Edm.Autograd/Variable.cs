// Variable: a device tensor in the autograd graph. See Tape.cs for the graph, the gradient
// semantics and the pattern for adding a differentiable op (one small file in Edm.Autograd/Ops/).
using Edm.Kernels;
using ILGPU.Runtime;

namespace Edm.Autograd;

/// <summary>
/// A tensor that may take part in differentiation. A leaf (no <see cref="Creator"/>) that requires
/// a gradient owns a gradient tensor of its shape that accumulates across Backward calls until
/// <see cref="ZeroGrad"/>. An op's output records the node that made it. The variable owns its
/// <see cref="Value"/>: disposing the variable disposes it (and the gradient).
/// </summary>
public sealed class Variable : IDisposable
{
    Tensor? _grad;
    bool _disposed;

    /// <summary>The data (a view of a flat buffer once the leaf is packed into a <see cref="ParameterSet"/>).</summary>
    public Tensor Value { get; private set; }
    /// <summary>The node that computed this variable; null for a leaf.</summary>
    public Node? Creator { get; }
    /// <summary>True when gradients flow to or through this variable.</summary>
    public bool RequiresGrad { get; }
    /// <summary>Optional name used in messages (e.g. a parameter's path).</summary>
    public string? Name { get; set; }

    /// <summary>True for variables not computed by a recorded op.</summary>
    public bool IsLeaf => Creator is null;
    /// <summary>The device holding the value.</summary>
    public EdmDevice Device => Value.Device;
    /// <summary>Shape of the value.</summary>
    public int[] Shape => Value.Shape;

    /// <summary>
    /// Wraps <paramref name="value"/> (taking ownership) as a leaf. With
    /// <paramref name="requiresGrad"/> a zero gradient of the same shape is allocated now, so that
    /// it outlives any TensorScope a later step runs in.
    /// </summary>
    public Variable(Tensor value, bool requiresGrad = false, string? name = null)
    {
        Value = value;
        RequiresGrad = requiresGrad;
        Name = name;
        if (requiresGrad) _grad = Tensor.Zeros(value.Device, value.Shape);
    }

    internal Variable(Tensor value, Node creator)
    {
        Value = value;
        Creator = creator;
        RequiresGrad = true;
    }

    /// <summary>A leaf that requires a gradient (a trainable parameter); takes ownership of <paramref name="value"/>.</summary>
    public static Variable Parameter(Tensor value, string? name = null) => new(value, true, name);

    /// <summary>
    /// The accumulated gradient of a leaf that requires one (same shape as <see cref="Value"/>).
    /// Throws for a variable that does not require a gradient, or for an intermediate result,
    /// whose gradient is transient.
    /// </summary>
    public Tensor Grad
    {
        get
        {
            CheckAlive("Grad");
            if (!RequiresGrad)
                throw new InvalidOperationException(
                    $"Grad: {Describe()} does not require a gradient; create it with requiresGrad: true (Variable.Parameter)");
            if (_grad is null)
                throw new InvalidOperationException(
                    $"Grad: {Describe()} is the result of op {Creator}; only leaves keep gradients (intermediate gradients are transient)");
            return _grad;
        }
    }

    internal Tensor? GradStorage => _grad;

    /// <summary>
    /// Moves this leaf's value (and gradient, if it keeps one) into <paramref name="value"/> and
    /// <paramref name="grad"/> (same shape; views of a <see cref="ParameterSet"/>'s flat buffers),
    /// copying the data and releasing the old tensors. Views taken of the old value before the
    /// move (e.g. <see cref="Detach"/>) keep the old data.
    /// </summary>
    internal void MoveStorage(Tensor value, Tensor? grad)
    {
        CheckAlive("MoveStorage");
        Shapes.RequireEqual("MoveStorage", Describe(), Value.Shape, value.Shape);
        if ((grad is null) != (_grad is null))
            throw new ArgumentException($"MoveStorage: {Describe()} {(_grad is null ? "keeps no gradient" : "needs a gradient buffer")}");
        Value.View.CopyTo(value.View);
        Value.Dispose();
        Value = value;
        if (grad is not null)
        {
            Shapes.RequireEqual("MoveStorage", $"gradient of {Describe()}", _grad!.Shape, grad.Shape);
            _grad.View.CopyTo(grad.View);
            _grad.Dispose();
            _grad = grad;
        }
    }

    /// <summary>Sets the accumulated gradient to zero (leaves that require a gradient).</summary>
    public void ZeroGrad() => Grad.View.MemSetToZero();

    /// <summary>
    /// A leaf sharing this variable's data (no copy) that requires no gradient: the graph is cut
    /// here. Dispose it independently of this variable.
    /// </summary>
    public Variable Detach()
    {
        CheckAlive("Detach");
        return new Variable(Value.Reshape(Value.Shape), requiresGrad: false, Name);
    }

    /// <summary>Backpropagates from this variable; see <see cref="Tape.Backward"/>.</summary>
    public void Backward(Tensor? seed = null, bool keepGraph = false) => Tape.Backward(this, seed, keepGraph);

    internal void CheckAlive(string op)
    {
        if (_disposed || Value.IsDisposed)
            throw new ObjectDisposedException(nameof(Variable), $"{op}: {Describe()} was disposed");
    }

    internal string Describe() =>
        (Name is null ? "variable " : $"variable '{Name}' ") + Shapes.Format(Value.Shape) + (Creator is null ? "" : $" from {Creator}");

    /// <inheritdoc/>
    public override string ToString() => Describe();

    /// <summary>Disposes the value and the gradient. The recorded node (if any) is left to the GC.</summary>
    public void Dispose()
    {
        if (_disposed) return;
        _disposed = true;
        Value.Dispose();
        _grad?.Dispose();
    }
}

// Tape autograd (issue 3). A Variable wraps a device Tensor; each differentiable op computes its
// forward with the Ops kernels and, while the tape records, attaches a small Node that saves
// exactly what its backward needs. Backward walks the recorded nodes that reach the output in
// reverse recording order (iteratively: U-Nets are deep) and sums gradients that fan in.
//
// Gradient semantics (llm.c style): leaf gradients (parameters) ACCUMULATE (+=) across Backward
// calls until ZeroGrad; gradients of intermediate results are transient and never kept. A
// gradient's shape always equals its tensor's shape (checked on every edge).
//
// ---- How to add a differentiable op: one small file in Edm.Autograd/Ops/ ----
//
//     public static partial class Fn
//     {
//         /// <summary>a*b with broadcasting.</summary>
//         public static Variable Mul(Variable a, Variable b)
//         {
//             bool record = Tape.Prepare("Mul", a, b);        // validates devices; false under NoGrad
//             var y = Ops.Mul(a.Value, b.Value);              // forward with the kernels
//             return record ? Tape.Record(new MulNode(a.Value, b.Value), y, a, b) : new Variable(y);
//         }
//
//         sealed class MulNode(Tensor a, Tensor b) : Node    // saves exactly what backward needs
//         {
//             protected internal override Tensor?[] Backward(Tensor gy) =>
//             [
//                 NeedsGrad(0) ? Grads.ReduceTo(Ops.Mul(gy, b), a.Shape) : null,  // one per input,
//                 NeedsGrad(1) ? Grads.ReduceTo(Ops.Mul(gy, a), b.Shape) : null,  // null: not needed
//             ];
//         }
//     }
//
// (Grads.ReduceTo consumes a temporary and sums it over broadcast axes; Grads.SumTo does the
// same to a borrowed tensor such as gy. Save shapes rather than tensors when shapes suffice.)
//
// Rules for Backward(gy): return one entry per input, in the order given to Record, each with
// exactly that input's shape (Grads.SumTo undoes broadcasting), or null where NeedsGrad(i) is
// false. Return fresh tensors; returning gy itself (or one tensor twice) is also allowed: the
// engine never writes into a returned gradient, it takes a reference. Never dispose gy or saved
// inputs. A node that computes extra tensors in forward only for backward (e.g. a mask) owns
// them: dispose them in an override of DisposeOwned(), which runs when the graph is released.
// Test the op with GradCheck: a float64 reference forward/backward in
// Edm.Verification/References/<Family>Reference.cs and cases in AutogradVerify.Cases
// (Edm.Verification/Verify/AutogradVerify.cs), which both `verify` and Edm.Tests/Autograd/GradCheckTests.cs
// run. docs/autograd.md has the whole checklist.
//
// Memory: an op's output tensor belongs to its Variable (Dispose, or the enclosing TensorScope).
// Training steps run inside `using var scope = new TensorScope()`: every op output and transient
// gradient of the step is released when the scope ends; parameters, their gradients and optimizer
// state are created outside any step scope and live on.
using System.Diagnostics;
using Edm.Kernels;

namespace Edm.Autograd;

/// <summary>
/// One recorded differentiable op: saves what its backward needs and maps the output gradient to
/// one gradient per input. See the file header for the pattern.
/// </summary>
public abstract class Node
{
    Variable[] _inputs = [];
    int[] _outputShape = [];

    /// <summary>The op's inputs, in the order given to <see cref="Tape.Record"/> (empty once released).</summary>
    public IReadOnlyList<Variable> Inputs => _inputs;
    /// <summary>Position on the tape: nodes are recorded in increasing order.</summary>
    public long Sequence { get; private set; }
    /// <summary>True once a Backward without keepGraph has run through this node.</summary>
    public bool IsReleased { get; private set; }
    /// <summary>Name used in messages: the class name without a trailing "Node".</summary>
    public virtual string Name
    {
        get
        {
            string n = GetType().Name;
            return n.EndsWith("Node", StringComparison.Ordinal) && n.Length > 4 ? n[..^4] : n;
        }
    }

    /// <summary>True when input <paramref name="i"/> needs a gradient.</summary>
    protected bool NeedsGrad(int i) => _inputs[i].RequiresGrad;

    /// <summary>Shape of the op's output (and of gy).</summary>
    protected int[] OutputShape => _outputShape;

    /// <summary>
    /// Maps the output gradient <paramref name="gy"/> (the output's shape) to one gradient per
    /// input (that input's shape), null where <see cref="NeedsGrad"/> is false.
    /// </summary>
    protected internal abstract Tensor?[] Backward(Tensor gy);

    /// <summary>Disposes tensors this node created for its backward (not its inputs' values).</summary>
    protected virtual void DisposeOwned() { }

    internal void Attach(Variable[] inputs, int[] outputShape, long sequence)
    {
        _inputs = inputs;
        _outputShape = outputShape;
        Sequence = sequence;
    }

    internal void Release()
    {
        if (IsReleased) return;
        IsReleased = true;
        _inputs = [];  // lets the graph's objects be collected even if the output lives on
        DisposeOwned();
    }

    /// <inheritdoc/>
    public override string ToString() => $"{Name}#{Sequence}";
}

/// <summary>
/// The recording state of this thread and the backward engine. Recording is on by default;
/// <see cref="NoGrad"/> turns it off for a scope (samplers, EMA, evaluation).
/// </summary>
public static class Tape
{
    [ThreadStatic] static int _noGradDepth;
    [ThreadStatic] static long _recorded;
    static long _sequence;

    /// <summary>True unless inside a <see cref="NoGrad"/> scope on this thread.</summary>
    public static bool IsRecording => _noGradDepth == 0;

    /// <summary>Number of nodes recorded on this thread so far (for tests and diagnostics).</summary>
    public static long RecordedNodes => _recorded;

    /// <summary>Opens a scope in which ops record nothing and return variables without gradients.</summary>
    public static NoGradScope NoGrad()
    {
        _noGradDepth++;
        return new NoGradScope();
    }

    /// <summary>Ends a <see cref="NoGrad"/> scope.</summary>
    public sealed class NoGradScope : IDisposable
    {
        bool _disposed;
        internal NoGradScope() { }

        /// <inheritdoc/>
        public void Dispose()
        {
            if (_disposed) return;
            _disposed = true;
            _noGradDepth--;
        }
    }

    /// <summary>
    /// Validates an op's inputs (alive, on one device) and says whether to record a node: true
    /// when recording and some input requires a gradient.
    /// </summary>
    public static bool Prepare(string op, Variable a)
    {
        a.CheckAlive(op);
        return IsRecording && a.RequiresGrad;
    }

    /// <inheritdoc cref="Prepare(string, Variable)"/>
    public static bool Prepare(string op, Variable a, Variable b)
    {
        a.CheckAlive(op);
        b.CheckAlive(op);
        CheckSameDevice(op, a, b);
        return IsRecording && (a.RequiresGrad || b.RequiresGrad);
    }

    /// <inheritdoc cref="Prepare(string, Variable)"/>
    public static bool Prepare(string op, params Variable[] xs)
    {
        if (xs.Length == 0) throw new ArgumentException($"{op}: needs at least one input");
        bool any = false;
        foreach (var x in xs)
        {
            x.CheckAlive(op);
            CheckSameDevice(op, xs[0], x);
            any |= x.RequiresGrad;
        }
        return IsRecording && any;
    }

    static void CheckSameDevice(string op, Variable a, Variable b)
    {
        if (!ReferenceEquals(a.Device, b.Device))
            throw new ArgumentException(
                $"{op}: inputs live on two different devices ({a.Device} and {b.Device}); every input of an op must be on the same EdmDevice");
    }

    /// <summary>
    /// Attaches <paramref name="node"/> to the tape with its inputs and returns the output
    /// variable (which owns <paramref name="output"/> and requires a gradient).
    /// </summary>
    public static Variable Record(Node node, Tensor output, params Variable[] inputs)
    {
        Debug.Assert(IsRecording, "Record called while not recording; use Tape.Prepare's answer");
        node.Attach((Variable[])inputs.Clone(), (int[])output.Shape.Clone(), Interlocked.Increment(ref _sequence));  // the caller may reuse its array
        _recorded++;
        return new Variable(output, node);
    }

    /// <summary>
    /// Backpropagates from <paramref name="output"/>: seeds its gradient with
    /// <paramref name="seed"/> (required unless the output has one element, then 1), runs every
    /// node that reaches it in reverse recording order, and adds the result into each leaf's
    /// <see cref="Variable.Grad"/>. Without <paramref name="keepGraph"/> the nodes are released.
    /// </summary>
    public static void Backward(Variable output, Tensor? seed = null, bool keepGraph = false)
    {
        output.CheckAlive("Backward");
        if (!output.RequiresGrad)
            throw new InvalidOperationException(
                $"Backward: {output.Describe()} does not require a gradient (no input of its graph requires one, or it was computed under Tape.NoGrad or detached)");
        Tensor gOut;
        if (seed is null)
        {
            if (output.Value.Length != 1)
                throw new InvalidOperationException(
                    $"Backward: output {output.Describe()} is not a scalar; pass a seed gradient of shape {output.Value.ShapeString}");
            gOut = Tensor.FromArray(output.Device, [1f], output.Value.Shape);
        }
        else
        {
            if (!ReferenceEquals(seed.Device, output.Device))
                throw new ArgumentException($"Backward: seed gradient is on {seed.Device}, output on {output.Device}; they must be on the same EdmDevice");
            Shapes.RequireEqual("Backward", "seed gradient", output.Value.Shape, seed.Shape);
            gOut = seed.Reshape(seed.Shape);  // our own reference to the caller's tensor; never written
        }

        if (output.Creator is null)
        {
            AccumulateLeaf(output, gOut);
            return;
        }

        var nodes = Reachable(output.Creator);
        // Recording order is a topological order, so reverse sequence order visits a node only
        // after every node that consumes its output.
        nodes.Sort(static (x, y) => y.Sequence.CompareTo(x.Sequence));
        var pending = new Dictionary<Node, Tensor>(ReferenceEqualityComparer.Instance) { [output.Creator] = gOut };
        try
        {
            foreach (var node in nodes)
            {
                if (!pending.Remove(node, out var gy))
                {
                    // Every consumer returned null for it: nothing flows here, but release it all the same.
                    if (!keepGraph) node.Release();
                    continue;
                }
                var inputs = node.Inputs.ToArray();
                Tensor?[] grads;
                try
                {
                    grads = node.Backward(gy);
                    if (grads.Length != inputs.Length)
                        throw new InvalidOperationException($"Backward: node {node} returned {grads.Length} gradients for {inputs.Length} inputs");
                    for (int i = 0; i < grads.Length; i++)
                    {
                        var g = grads[i];
                        if (g is null) continue;
                        // A gradient returned twice, or gy passed through, becomes its own
                        // reference (a view) so each one can be released independently.
                        if (ReferenceEquals(g, gy) || Array.IndexOf(grads, g, 0, i) >= 0)
                            grads[i] = g = g.Reshape(g.Shape);
                        if (!Shapes.Equal(g.Shape, inputs[i].Value.Shape))
                            throw new InvalidOperationException(
                                $"Backward: node {node} returned a gradient of shape {g.ShapeString} for input {i} of shape {inputs[i].Value.ShapeString}");
                    }
                }
                catch
                {
                    gy.Dispose();
                    throw;
                }
                gy.Dispose();
                if (!keepGraph) node.Release();

                for (int i = 0; i < grads.Length; i++)
                {
                    var g = grads[i];
                    if (g is null) continue;
                    var x = inputs[i];
                    if (!x.RequiresGrad) g.Dispose();
                    else if (x.Creator is null) AccumulateLeaf(x, g);
                    else if (pending.Remove(x.Creator, out var prev))
                    {
                        // Fan-in: out of place, so no returned tensor is ever written into.
                        pending[x.Creator] = Ops.Add(prev, g);
                        prev.Dispose();
                        g.Dispose();
                    }
                    else pending[x.Creator] = g;
                }
            }
        }
        finally
        {
            foreach (var t in pending.Values) t.Dispose();
        }
    }

    static void AccumulateLeaf(Variable leaf, Tensor g)
    {
        try
        {
            var grad = leaf.GradStorage!;
            Shapes.RequireEqual("Backward", $"gradient of {leaf.Describe()}", grad.Shape, g.Shape);
            Ops.Axpy(1f, g, grad);
        }
        finally
        {
            g.Dispose();
        }
    }

    /// <summary>Every node the output depends on through inputs that require gradients (iterative DFS).</summary>
    static List<Node> Reachable(Node root)
    {
        var seen = new HashSet<Node>(ReferenceEqualityComparer.Instance) { root };
        var stack = new Stack<Node>();
        stack.Push(root);
        var list = new List<Node>();
        while (stack.Count > 0)
        {
            var n = stack.Pop();
            if (n.IsReleased)
                throw new InvalidOperationException(
                    $"Backward: the graph through node {n} was released by an earlier Backward; to backpropagate through a graph twice, pass keepGraph: true to every Backward but the last");
            list.Add(n);
            foreach (var x in n.Inputs)
                if (x.RequiresGrad && x.Creator is { } c && seen.Add(c)) stack.Push(c);
        }
        return list;
    }
}

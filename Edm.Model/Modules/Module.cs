// Module: the base of every layer and network, over the autograd tape (PyTorch's vocabulary with
// .NET casing). Parameters, buffers and children are registered in construction order, which
// gives stable hierarchical names ("enc.32x32_block0.conv0.weight", as NVlabs/edm's modules
// would have them) used by weights I/O.
using Edm.Autograd;
using Edm.Kernels;

namespace Edm.Model.Modules;

/// <summary>A layer or network: named parameters, buffers and child modules; train/eval mode.</summary>
public abstract class Module : IDisposable
{
    readonly List<(string Name, Variable Param)> _params = new();
    readonly List<(string Name, Tensor Buffer)> _buffers = new();
    readonly List<(string Name, Module Child)> _children = new();
    bool _disposed;

    /// <summary>The device holding the parameters.</summary>
    public EdmDevice Device { get; }
    /// <summary>True in training mode (dropout on).</summary>
    public bool Training { get; private set; } = true;

    /// <summary>Creates a module on a device.</summary>
    protected Module(EdmDevice device) => Device = device;

    /// <summary>Registers a trainable parameter (takes ownership of the tensor).</summary>
    protected Variable RegisterParameter(string name, Tensor value)
    {
        var v = Variable.Parameter(value, name);
        _params.Add((name, v));
        return v;
    }

    /// <summary>Registers a non-trainable tensor that is saved with the weights (takes ownership).</summary>
    protected Tensor RegisterBuffer(string name, Tensor value)
    {
        _buffers.Add((name, value));
        return value;
    }

    /// <summary>Registers a child module.</summary>
    protected T RegisterModule<T>(string name, T module) where T : Module
    {
        _children.Add((name, module));
        return module;
    }

    /// <summary>Parameters with hierarchical names, in registration order.</summary>
    public IEnumerable<(string Name, Variable Param)> NamedParameters(string prefix = "")
    {
        foreach (var (n, p) in _params) yield return (prefix + n, p);
        foreach (var (n, c) in _children)
            foreach (var x in c.NamedParameters(prefix + n + ".")) yield return x;
    }

    /// <summary>Buffers with hierarchical names.</summary>
    public IEnumerable<(string Name, Tensor Buffer)> NamedBuffers(string prefix = "")
    {
        foreach (var (n, b) in _buffers) yield return (prefix + n, b);
        foreach (var (n, c) in _children)
            foreach (var x in c.NamedBuffers(prefix + n + ".")) yield return x;
    }

    /// <summary>Child modules with hierarchical names (depth first, self excluded).</summary>
    public IEnumerable<(string Name, Module Module)> NamedModules(string prefix = "")
    {
        foreach (var (n, c) in _children)
        {
            yield return (prefix + n, c);
            foreach (var x in c.NamedModules(prefix + n + ".")) yield return x;
        }
    }

    /// <summary>All trainable parameters.</summary>
    public IEnumerable<Variable> Parameters() => NamedParameters().Select(p => p.Param);

    /// <summary>Number of trainable scalars.</summary>
    public long ParameterCount() => Parameters().Sum(p => (long)p.Value.Length);

    /// <summary>Training mode (dropout on) for this module and its children.</summary>
    public void Train(bool on = true)
    {
        Training = on;
        foreach (var (_, c) in _children) c.Train(on);
    }

    /// <summary>Evaluation mode (dropout off).</summary>
    public void Eval() => Train(false);

    /// <summary>Sets every parameter's gradient to zero.</summary>
    public void ZeroGrad()
    {
        foreach (var p in Parameters()) p.ZeroGrad();
    }

    /// <inheritdoc/>
    public void Dispose()
    {
        if (_disposed) return;
        _disposed = true;
        foreach (var (_, p) in _params) p.Dispose();
        foreach (var (_, b) in _buffers) b.Dispose();
        foreach (var (_, c) in _children) c.Dispose();
    }
}

/// <summary>
/// What constructors need to create parameters: the device and a deterministic draw counter
/// (parameter k of a network built with seed s is drawn from Philox stream k under key s).
/// </summary>
public sealed class InitContext(EdmDevice device, ulong seed = 0)
{
    ulong _stream;
    /// <summary>The device.</summary>
    public EdmDevice Device { get; } = device;
    /// <summary>Draws an initial tensor (see <see cref="Init.Draw"/>).</summary>
    public Tensor Draw(int[] shape, Init.Mode mode, int fanIn, int fanOut, double gain) =>
        Init.Draw(Device, shape, mode, fanIn, fanOut, gain, seed, _stream++);
    /// <summary>Draws standard normals (e.g. Fourier frequencies) times <paramref name="scale"/>.</summary>
    public Tensor Normal(int[] shape, double scale)
    {
        var t = Tensor.Empty(Device, shape);
        Ops.Normal(t, seed, _stream++);
        Ops.Map(t, t, new ScaleOp((float)scale), "Init");
        return t;
    }
}

/// <summary>Weight initialisation as NVlabs/edm's weight_init (modes and fan arithmetic), on our RNG.</summary>
public static class Init
{
    /// <summary>Initialisation modes.</summary>
    public enum Mode
    {
        /// <summary>U(-a, a) with a = sqrt(6 / (fan_in + fan_out)).</summary>
        XavierUniform,
        /// <summary>N(0, 2 / (fan_in + fan_out)).</summary>
        XavierNormal,
        /// <summary>U(-a, a) with a = sqrt(3 / fan_in).</summary>
        KaimingUniform,
        /// <summary>N(0, 1 / fan_in).</summary>
        KaimingNormal,
    }

    /// <summary>Parameters of one initialisation: mode and multipliers for weight and bias.</summary>
    public readonly record struct Spec(Mode Mode, double Weight = 1, double Bias = 0);

    /// <summary>
    /// A tensor of <paramref name="shape"/> drawn as weight_init(shape, mode, fanIn, fanOut) times
    /// <paramref name="gain"/>: xavier_uniform sqrt(6/(fi+fo)) U(-1,1); xavier_normal sqrt(2/(fi+fo)) N;
    /// kaiming_uniform sqrt(3/fi) U(-1,1); kaiming_normal sqrt(1/fi) N. Keyed by (<paramref name="seed"/>, <paramref name="stream"/>).
    /// </summary>
    public static Tensor Draw(EdmDevice d, int[] shape, Mode mode, int fanIn, int fanOut, double gain, ulong seed, ulong stream)
    {
        var t = Tensor.Empty(d, shape);
        if (gain == 0) { Ops.Fill(t, 0); return t; }
        bool uniform = mode is Mode.XavierUniform or Mode.KaimingUniform;
        double std = mode switch
        {
            Mode.XavierUniform => Math.Sqrt(6.0 / (fanIn + fanOut)),
            Mode.XavierNormal => Math.Sqrt(2.0 / (fanIn + fanOut)),
            Mode.KaimingUniform => Math.Sqrt(3.0 / fanIn),
            _ => Math.Sqrt(1.0 / fanIn),
        } * gain;
        if (uniform)
        {
            Ops.Uniform(t, seed, stream);
            // U[0,1) -> std * (2u - 1)
            Ops.Map(t, t, new AffineOp((float)(2 * std), (float)-std), "Init");
        }
        else
        {
            Ops.Normal(t, seed, stream);
            Ops.Map(t, t, new ScaleOp((float)std), "Init");
        }
        return t;
    }


    /// <summary>y = a x + b.</summary>
    public readonly struct AffineOp(float a, float b) : IUnaryOp
    {
        readonly float _a = a, _b = b;
        /// <inheritdoc/>
        public float Apply(float x) => _a * x + _b;
    }
}

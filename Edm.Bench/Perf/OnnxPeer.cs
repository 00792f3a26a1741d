// ONNX Runtime as the in-process peer of the forward rows (`kernels --op step_ddpmpp_tiny_fwd
// --onnx DIR`): the preconditioned tiny DDPM++ D(x; sigma) exported from bench/torch_baseline.py's
// network (`--export-onnx DIR`: DIR/ddpmpp-tiny-16.onnx and DIR/ddpmpp-tiny-32.onnx, opset 17,
// inputs x (64, 1, R, R) and sigma (64), output D (64, 1, R, R), float32), run on the CPU execution
// provider with every graph optimisation on and one intra-op thread per core: what a C# user would
// pick to serve such a network. The weights are PyTorch's initialisation, not ours: the time of a
// forward pass does not depend on them. Inputs and the output are bound to managed arrays once, so a
// repetition is one InferenceSession.Run with no allocation of ours.
using Microsoft.ML.OnnxRuntime;
using Microsoft.ML.OnnxRuntime.Tensors;
using Edm.Bench.Cli;

namespace Edm.Bench.Perf;

/// <summary>A loaded ONNX model of the tiny network's D(x; sigma), ready to time.</summary>
public sealed class OnnxPeer : IDisposable
{
    /// <summary>Input name of the noisy image (B, 1, R, R).</summary>
    public const string InputX = "x";
    /// <summary>Input name of the per-image noise level (B).</summary>
    public const string InputSigma = "sigma";
    /// <summary>The baseline's name in the kernels table.</summary>
    public const string Name = "onnxruntime-cpu";

    readonly SessionOptions _options;
    readonly InferenceSession _session;
    readonly RunOptions _run = new();
    readonly OrtValue _x, _sigma, _d;
    readonly string[] _inputNames = [InputX, InputSigma], _outputNames;

    /// <summary>The model file.</summary>
    public string Path { get; }
    /// <summary>Intra-op threads (the core count).</summary>
    public int Threads { get; }

    /// <summary>The file of resolution <paramref name="resolution"/> in <paramref name="dir"/>.</summary>
    public static string FileFor(string dir, int resolution) => System.IO.Path.Combine(dir, $"ddpmpp-tiny-{resolution}.onnx");

    /// <summary>The ONNX Runtime version string.</summary>
    public static string Version => OrtEnv.Instance().GetVersionString();

    /// <summary>
    /// Loads DIR/ddpmpp-tiny-R.onnx and binds <paramref name="x"/> (B, 1, R, R) and
    /// <paramref name="sigma"/> (B) as its inputs. A missing, unloadable or differently shaped file
    /// is a <see cref="UsageException"/> naming `--onnx`, the file and what was expected.
    /// </summary>
    public OnnxPeer(string dir, int resolution, float[] x, float[] sigma)
    {
        int batch = sigma.Length;
        Path = FileFor(dir, resolution);
        Threads = Environment.ProcessorCount;
        if (!Directory.Exists(dir))
            throw new UsageException(File.Exists(dir) ? $"--onnx '{dir}' is a file; give the folder written by {ExportCommand}" : $"--onnx folder '{dir}' does not exist; make it with {ExportCommand}");
        if (!File.Exists(Path)) throw new UsageException($"--onnx: '{Path}' not found; make it with {ExportCommand}");
        _options = new SessionOptions
        {
            GraphOptimizationLevel = GraphOptimizationLevel.ORT_ENABLE_ALL,
            ExecutionMode = ExecutionMode.ORT_SEQUENTIAL,
            IntraOpNumThreads = Threads,
            InterOpNumThreads = 1,
        };
        try { _session = new InferenceSession(Path, _options); }
        catch (OnnxRuntimeException e)
        {
            _options.Dispose();
            throw new UsageException($"--onnx: ONNX Runtime cannot load '{Path}' ({FirstLine(e.Message)}); make it with {ExportCommand}");
        }
        catch (Exception e) when (e is DllNotFoundException or TypeInitializationException or EntryPointNotFoundException)
        {
            _options.Dispose();
            throw new UsageException($"--onnx: ONNX Runtime's native library does not load on this machine ({FirstLine(e.Message)})");
        }
        try
        {
            long[] image = [batch, 1, resolution, resolution];
            Require(_session.InputMetadata, InputX, image, "input");
            Require(_session.InputMetadata, InputSigma, [batch], "input");
            if (_session.InputMetadata.Count != 2 || _session.OutputMetadata.Count != 1)
                throw new UsageException($"--onnx: '{Path}' has inputs ({string.Join(", ", _session.InputMetadata.Keys)}) and {_session.OutputMetadata.Count} outputs; " +
                                         $"expected inputs ({InputX}, {InputSigma}) and one output D; make it with {ExportCommand}");
            var output = _session.OutputMetadata.Single();
            Require(_session.OutputMetadata, output.Key, image, "output");
            _outputNames = [output.Key];
            _x = OrtValue.CreateTensorValueFromMemory(x, image);
            _sigma = OrtValue.CreateTensorValueFromMemory(sigma, [batch]);
            _d = OrtValue.CreateTensorValueFromMemory(new float[x.Length], image);
        }
        catch
        {
            _session.Dispose();
            _options.Dispose();
            throw;
        }
    }

    const string ExportCommand = "`/usr/bin/python3 bench/torch_baseline.py --export-onnx DIR` (docs/perf.md)";

    static string FirstLine(string s) => s.Split('\n', 2)[0].Trim();

    /// A float32 tensor of exactly this shape (fixed dimensions: the export has no dynamic axes).
    void Require(IReadOnlyDictionary<string, NodeMetadata> nodes, string name, long[] shape, string kind)
    {
        if (!nodes.TryGetValue(name, out var m))
            throw new UsageException($"--onnx: '{Path}' has no {kind} '{name}' (it has: {string.Join(", ", nodes.Keys)}); make it with {ExportCommand}");
        var dims = m.Dimensions.Select(d => (long)d).ToArray();
        if (m.ElementDataType != TensorElementType.Float || !dims.SequenceEqual(shape))
            throw new UsageException($"--onnx: '{Path}' {kind} '{name}' is {m.ElementDataType} ({string.Join(", ", dims)}); " +
                                     $"expected Float ({string.Join(", ", shape)}), the shape of the benched row");
    }

    /// <summary>One forward pass into the bound output.</summary>
    public void Run() => _session.Run(_run, _inputNames, [_x, _sigma], _outputNames, [_d]);

    /// <inheritdoc/>
    public void Dispose()
    {
        _x.Dispose();
        _sigma.Dispose();
        _d.Dispose();
        _run.Dispose();
        _session.Dispose();
        _options.Dispose();
    }
}

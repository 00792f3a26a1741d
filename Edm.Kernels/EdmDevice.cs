// EdmDevice: owns ILGPU's Context and one Accelerator, chooses the launch shape per backend,
// caches loaded kernels (load once, launch many) and tracks device memory in use.
//
// Selection: CUDA if present, else an OpenCL device that ILGPU accepts, else the CPU accelerator
// (an NVIDIA-like CPU device: warp 32, groups up to 1024, so GPU-style kernels run unchanged).
// Overridden by a spec "cpu" | "cuda[:N]" | "opencl[:N]" (the --device option, or EDM_DEVICE).
using System.Collections.Concurrent;
using ILGPU;
using ILGPU.Runtime;
using ILGPU.Runtime.CPU;
using ILGPU.Runtime.Cuda;
using ILGPU.Runtime.OpenCL;

namespace Edm.Kernels;

/// <summary>The kind of backend an <see cref="EdmDevice"/> runs on.</summary>
public enum DeviceKind
{
    /// <summary>ILGPU's CPU accelerator (with the C# fast paths).</summary>
    Cpu,
    /// <summary>An NVIDIA GPU through CUDA.</summary>
    Cuda,
    /// <summary>An OpenCL device.</summary>
    OpenCL,
}

/// <summary>Thrown when a requested device is absent or a device spec is malformed.</summary>
public sealed class DeviceSelectionException(string message) : Exception(message);

/// <summary>
/// One accelerator and everything tied to it: the kernel cache, the launch policy and memory
/// accounting. Create one with <see cref="Create"/>; dispose it last (after its tensors).
/// </summary>
public sealed class EdmDevice : IDisposable
{
    /// <summary>Environment variable consulted when no explicit spec is given.</summary>
    public const string EnvironmentVariable = "EDM_DEVICE";

    readonly Context _context;
    readonly ConcurrentDictionary<object, object> _kernels = new();
    long _bytesInUse;
    long _peakBytes;

    /// <summary>The ILGPU accelerator.</summary>
    public Accelerator Accelerator { get; }
    /// <summary>Backend kind.</summary>
    public DeviceKind Kind { get; }
    /// <summary>Canonical spec, e.g. "cpu", "cuda:0".</summary>
    public string Spec { get; }
    /// <summary>Human-readable device name.</summary>
    public string Name => Accelerator.Name;
    /// <summary>True on ILGPU's CPU accelerator.</summary>
    public bool IsCpu => Kind == DeviceKind.Cpu;
    /// <summary>
    /// On the CPU accelerator, ops may run a plain C# fast path over the accelerator's own buffers
    /// instead of the ILGPU kernel (same results within float rounding). Tests switch this off to
    /// verify the kernels themselves. Ignored on GPUs.
    /// </summary>
    public bool CpuFastPaths { get; set; } = true;
    /// <summary>Environment variable that sets <see cref="AllowTf32"/> at start-up ("1": on).</summary>
    public const string Tf32EnvironmentVariable = "EDM_TF32";

    /// <summary>
    /// Whether large GEMMs (and so convolutions; those Auto gives 128x128 tiles) may run on TF32 tensor cores
    /// (inputs rounded to 10 mantissa bits, float32 accumulation), like PyTorch's allow_tf32. CUDA
    /// only; ignored elsewhere. Off unless EDM_TF32=1 (or set here) until the kernel has been
    /// verified on a GPU (docs/perf.md); verify's float32 rows run with it off.
    /// </summary>
    public bool AllowTf32 { get; set; } = Environment.GetEnvironmentVariable(Tf32EnvironmentVariable)?.Trim() == "1";

    /// <summary>Environment variable that sets <see cref="AllowWinograd"/> at start-up ("0": off).</summary>
    public const string WinogradEnvironmentVariable = "EDM_WINOGRAD";

    /// <summary>
    /// Whether the CPU fast path may compute 3x3 stride-1 "same" convolutions with at least 32
    /// input and output channels by Winograd's F(2x2, 3x3): 2.25x fewer multiplies, with rounding
    /// errors of the same size as the direct product's (docs/kernels.md#winograd). On unless
    /// EDM_WINOGRAD=0 (or set here), like cuDNN's or oneDNN's choice of algorithm; ignored on GPUs.
    /// </summary>
    public bool AllowWinograd { get; set; } = Environment.GetEnvironmentVariable(WinogradEnvironmentVariable)?.Trim() != "0";

    /// <summary>True when an op should take its plain C# path.</summary>
    public bool UseCpuFastPath => IsCpu && CpuFastPaths;

    /// <summary>
    /// Threads launched by a grid-stride kernel. Launch policy (docs/architecture.md): the CPU
    /// accelerator pays about a microsecond per kernel thread, so it gets a few looping threads
    /// (4 per core, at least 16); a GPU gets enough threads to fill every multiprocessor. Settable
    /// so that tests can run GPU-sized launch shapes (a full reduction's middle pass) on the CPU.
    /// </summary>
    public int GridThreads
    {
        get => _gridThreads;
        set => _gridThreads = value is >= 1 and <= Tensor.MaxGridThreads ? value
            : throw new ArgumentOutOfRangeException(nameof(value), value, $"GridThreads must be in 1..{Tensor.MaxGridThreads} (grid-stride loops stay below 2^31)");
    }
    int _gridThreads;

    /// <summary>Bytes of device memory currently allocated through tensors.</summary>
    public long BytesInUse => Interlocked.Read(ref _bytesInUse);
    /// <summary>High-water mark of <see cref="BytesInUse"/>.</summary>
    public long PeakBytes => Interlocked.Read(ref _peakBytes);

    /// <summary>Starts a new peak measurement: <see cref="PeakBytes"/> becomes the bytes in use now.</summary>
    public void ResetPeak() => Interlocked.Exchange(ref _peakBytes, BytesInUse);

    EdmDevice(Context context, Accelerator accelerator, DeviceKind kind, string spec)
    {
        _context = context;
        Accelerator = accelerator;
        Kind = kind;
        Spec = spec;
        GridThreads = kind == DeviceKind.Cpu
            ? Math.Max(16, 4 * Environment.ProcessorCount)
            : Math.Max(1, accelerator.NumMultiprocessors) * Math.Max(256, accelerator.MaxNumThreadsPerMultiprocessor);
    }

    /// <summary>
    /// ILGPU's optimisation level for every kernel the engine compiles (O2: loop unrolling and
    /// address simplification in the PTX/OpenCL code; the CPU accelerator runs the IL as it is). The
    /// PTX-compile tests compile at this level, so they test the code that runs.
    /// </summary>
    public const OptimizationLevel KernelOptimization = OptimizationLevel.O2;

    static Context CreateContext() =>
        Context.Create(b => b.Cuda().OpenCL().CPU(CPUDeviceKind.Nvidia).EnableAlgorithms().Optimize(KernelOptimization));

    /// <summary>
    /// Opens a device. <paramref name="spec"/>: null or "" (use EDM_DEVICE, else the best present),
    /// "auto", "cpu", "cuda[:N]", "opencl[:N]".
    /// </summary>
    public static EdmDevice Create(string? spec = null)
    {
        // The kernel-choice variables, checked before any kernel reads them (a bad value would
        // otherwise surface as a type-initialiser failure at the first GEMM or convolution).
        try
        {
            GemmKernels.ParseForced(Environment.GetEnvironmentVariable(GemmKernels.KernelEnvironmentVariable));
            Ops.ParseConvAlgorithm(Environment.GetEnvironmentVariable(Ops.ConvAlgorithmEnvironmentVariable));
        }
        catch (ArgumentException e) { throw new DeviceSelectionException(e.Message); }
        bool fromEnvironment = string.IsNullOrWhiteSpace(spec) && !string.IsNullOrWhiteSpace(Environment.GetEnvironmentVariable(EnvironmentVariable));
        spec = string.IsNullOrWhiteSpace(spec) ? Environment.GetEnvironmentVariable(EnvironmentVariable) : spec;
        spec = string.IsNullOrWhiteSpace(spec) ? "auto" : spec.Trim().ToLowerInvariant();
        DeviceKind? kind;
        int index;
        try { (kind, index) = ParseSpec(spec); }
        catch (DeviceSelectionException e) when (fromEnvironment)
        {
            throw new DeviceSelectionException($"{EnvironmentVariable}={spec} (environment variable): {e.Message}");
        }
        var context = CreateContext();
        try
        {
            var cuda = context.GetCudaDevices();
            var cl = context.GetCLDevices();
            if (kind is null)
            {
                if (cuda.Count > 0) return new EdmDevice(context, cuda[0].CreateAccelerator(context), DeviceKind.Cuda, "cuda:0");
                if (cl.Count > 0) return new EdmDevice(context, cl[0].CreateAccelerator(context), DeviceKind.OpenCL, "opencl:0");
                return new EdmDevice(context, context.GetCPUDevice(0).CreateAccelerator(context), DeviceKind.Cpu, "cpu");
            }
            switch (kind.Value)
            {
                case DeviceKind.Cpu:
                    return new EdmDevice(context, context.GetCPUDevice(0).CreateAccelerator(context), DeviceKind.Cpu, "cpu");
                case DeviceKind.Cuda:
                    if (index < cuda.Count)
                        return new EdmDevice(context, cuda[index].CreateAccelerator(context), DeviceKind.Cuda, $"cuda:{index}");
                    break;
                case DeviceKind.OpenCL:
                    if (index < cl.Count)
                        return new EdmDevice(context, cl[index].CreateAccelerator(context), DeviceKind.OpenCL, $"opencl:{index}");
                    break;
            }
            throw new DeviceSelectionException(
                $"device '{spec}'{(fromEnvironment ? $" (from the environment variable {EnvironmentVariable})" : "")} is not present; present devices: {string.Join(", ", ListPresent(context))}");
        }
        catch
        {
            context.Dispose();
            throw;
        }
    }

    /// <summary>Parses "auto" | "cpu" | "cuda[:N]" | "opencl[:N]"; kind null means auto.</summary>
    public static (DeviceKind? Kind, int Index) ParseSpec(string spec)
    {
        string s = spec.Trim().ToLowerInvariant();
        if (s == "auto") return (null, 0);
        string name = s;
        int index = 0;
        int colon = s.IndexOf(':');
        if (colon >= 0)
        {
            name = s[..colon];
            if (!int.TryParse(s[(colon + 1)..], out index) || index < 0)
                throw new DeviceSelectionException($"device spec '{spec}' has a bad index; allowed: auto, cpu, cuda[:N], opencl[:N] with N >= 0");
        }
        return name switch
        {
            "cpu" when colon < 0 || index == 0 => (DeviceKind.Cpu, 0),
            "cuda" => (DeviceKind.Cuda, index),
            "opencl" => (DeviceKind.OpenCL, index),
            _ => throw new DeviceSelectionException($"unknown device '{spec}'; allowed: auto, cpu, cuda[:N], opencl[:N]"),
        };
    }

    static List<string> ListPresent(Context context)
    {
        var list = new List<string>();
        var cuda = context.GetCudaDevices();
        for (int i = 0; i < cuda.Count; i++) list.Add($"cuda:{i} ({cuda[i].Name})");
        var cl = context.GetCLDevices();
        for (int i = 0; i < cl.Count; i++) list.Add($"opencl:{i} ({cl[i].Name})");
        list.Add("cpu (ILGPU CPU accelerator)");
        return list;
    }

    /// <summary>Lists every device present, without opening any accelerator.</summary>
    public static IReadOnlyList<string> ListDevices()
    {
        using var context = CreateContext();
        return ListPresent(context);
    }

    /// <summary>
    /// Returns the kernel family (a class that loads its kernels in its constructor), creating it
    /// once per device. This is the only place kernels are loaded.
    /// </summary>
    public T Kernels<T>() where T : class, IKernelFamily<T> =>
        (T)_kernels.GetOrAdd(typeof(T), static (_, d) => T.Load(d), this);

    /// <summary>Returns a cached kernel for a key (e.g. a generic kernel per operator type).</summary>
    public TDelegate Kernel<TDelegate>(object key, Func<Accelerator, TDelegate> load) where TDelegate : Delegate =>
        (TDelegate)_kernels.GetOrAdd(key, static (_, s) => s.load(s.acc), (load, acc: Accelerator));

    /// <summary>Number of threads to launch for a grid-stride loop over <paramref name="n"/> items.</summary>
    public int LaunchThreads(long n)
    {
        if (n <= 0) return 1;
        return (int)Math.Min(n, GridThreads);
    }

    /// <summary>Waits for all launched work.</summary>
    public void Synchronize() => Accelerator.Synchronize();

    // ---- Caching allocator ----
    // Freed tensor buffers are kept per exact length and handed to the next tensor of that length
    // (as PyTorch's caching allocator does): a training step allocates the same shapes every
    // iteration, and a fresh allocation costs page faults on the CPU and a cudaMalloc on a GPU.
    // The cache is bounded; beyond the bound, buffers are freed.
    readonly Dictionary<long, Stack<MemoryBuffer1D<float, Stride1D.Dense>>> _pool = new();
    long _cachedBytes;
    bool _disposed;

    /// <summary>Bytes held by the allocator's cache (freed tensors kept for reuse).</summary>
    public long CachedBytes { get { lock (_pool) return _cachedBytes; } }

    /// <summary>Largest cache: a quarter of device memory, at most 4 GiB on the CPU accelerator.</summary>
    public long CacheLimitBytes => IsCpu ? Math.Min(4L << 30, MemorySize / 4) : MemorySize / 4;

    internal MemoryBuffer1D<float, Stride1D.Dense> Rent(long length)
    {
        lock (_pool)
        {
            if (_pool.TryGetValue(length, out var stack) && stack.Count > 0)
            {
                var b = stack.Pop();
                _cachedBytes -= b.LengthInBytes;
                return b;
            }
        }
        try { return Accelerator.Allocate1D<float>(length); }
        catch (Exception e) when (e is OutOfMemoryException or AcceleratorException)
        {
            EmptyCache(); // retry once without cached buffers
            try { return Accelerator.Allocate1D<float>(length); }
            catch (Exception e2) when (e2 is OutOfMemoryException or AcceleratorException)
            {
                throw new DeviceOutOfMemoryException(this, length * sizeof(float), e);
            }
        }
    }

    internal void Return(MemoryBuffer1D<float, Stride1D.Dense> buffer)
    {
        lock (_pool)
        {
            if (!_disposed && _cachedBytes + buffer.LengthInBytes <= CacheLimitBytes)
            {
                if (!_pool.TryGetValue(buffer.Length, out var stack)) _pool[buffer.Length] = stack = new();
                stack.Push(buffer);
                _cachedBytes += buffer.LengthInBytes;
                return;
            }
        }
        buffer.Dispose();
    }

    /// <summary>Frees every cached buffer.</summary>
    public void EmptyCache()
    {
        lock (_pool)
        {
            foreach (var stack in _pool.Values)
                while (stack.Count > 0) stack.Pop().Dispose();
            _pool.Clear();
            _cachedBytes = 0;
        }
    }

    internal void TrackAlloc(long bytes)
    {
        long now = Interlocked.Add(ref _bytesInUse, bytes);
        long peak;
        while (now > (peak = Interlocked.Read(ref _peakBytes)) && Interlocked.CompareExchange(ref _peakBytes, now, peak) != peak) { }
    }

    internal void TrackFree(long bytes) => Interlocked.Add(ref _bytesInUse, -bytes);

    /// <summary>Total device memory in bytes (for the CPU accelerator, the host's).</summary>
    public long MemorySize => IsCpu ? GC.GetGCMemoryInfo().TotalAvailableMemoryBytes : Accelerator.MemorySize;
    /// <summary>Warp (SIMD group) size.</summary>
    public int WarpSize => Accelerator.WarpSize;

    /// <inheritdoc/>
    public void Dispose()
    {
        EmptyCache();
        lock (_pool) _disposed = true;
        Accelerator.Dispose();
        _context.Dispose();
    }

    /// <inheritdoc/>
    public override string ToString() => $"{Spec} ({Name})";
}

/// <summary>A family of kernels loaded together once per device (see <see cref="EdmDevice.Kernels{T}"/>).</summary>
public interface IKernelFamily<TSelf> where TSelf : class
{
    /// <summary>Loads every kernel of the family on the device.</summary>
    static abstract TSelf Load(EdmDevice device);
}

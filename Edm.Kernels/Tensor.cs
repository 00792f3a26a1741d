// Tensor: float32, contiguous row-major (NCHW for images) in device memory, IDisposable.
// Views (Reshape, Narrow along axis 0) share the storage and keep it alive by reference count.
// TensorScope collects the tensors created inside it and disposes them, except those that escape.
using System.Runtime.CompilerServices;
using ILGPU;
using ILGPU.Runtime;

namespace Edm.Kernels;

/// <summary>Reference-counted device buffer behind one or more tensors.</summary>
internal sealed class TensorStorage
{
    public readonly MemoryBuffer1D<float, Stride1D.Dense> Buffer;
    public readonly EdmDevice Device;
    /// <summary>
    /// First element of the tensor data in <see cref="Buffer"/>. On the CPU accelerator the buffer
    /// has 15 floats to spare and the data starts on a 64-byte boundary (its allocations are only
    /// 16-byte aligned, and a 64-byte vector load that straddles two cache lines costs two loads in
    /// every Vector512 fast path); device allocations are aligned already (0).
    /// </summary>
    public readonly int Start;
    int _refs = 1;

    public unsafe TensorStorage(EdmDevice device, long length)
    {
        Device = device;
        int spare = device.IsCpu ? 15 : 0;
        Buffer = device.Rent(Math.Max(1, length) + spare);
        if (spare > 0) Start = (int)((64 - (long)Buffer.NativePtr % 64) % 64 / sizeof(float));
        device.TrackAlloc(Buffer.LengthInBytes);
    }

    public void AddRef() => Interlocked.Increment(ref _refs);

    public void Release()
    {
        if (Interlocked.Decrement(ref _refs) == 0)
        {
            Device.TrackFree(Buffer.LengthInBytes);
            Device.Return(Buffer);
        }
    }
}

/// <summary>Thrown when the device cannot allocate a tensor.</summary>
public sealed class DeviceOutOfMemoryException(EdmDevice device, long bytes, Exception inner)
    : Exception($"out of device memory on {device.Spec}: could not allocate {bytes / (1024.0 * 1024):F1} MiB " +
                $"({device.BytesInUse / (1024.0 * 1024):F1} MiB in use of {device.MemorySize / (1024.0 * 1024):F0} MiB)", inner)
{
    /// <summary>Bytes that were requested.</summary>
    public long RequestedBytes { get; } = bytes;
}

/// <summary>A float32 N-d tensor in device memory, contiguous, row-major.</summary>
public sealed class Tensor : IDisposable
{
    /// <summary>
    /// Largest element count: kernels index with 32-bit integers, and a grid-stride loop
    /// (<c>i += stride</c>) must not overflow past the last element, so the limit leaves
    /// <see cref="MaxGridThreads"/> of headroom below 2^31 (2,130,706,431 elements).
    /// </summary>
    public const long MaxElements = int.MaxValue - MaxGridThreads;

    /// <summary>Most threads a grid-stride launch may start (EdmDevice.GridThreads is checked against it).</summary>
    public const int MaxGridThreads = 1 << 24;

    readonly TensorStorage _storage;
    readonly int _offset;
    bool _disposed;

    /// <summary>The device holding the data.</summary>
    public EdmDevice Device => _storage.Device;
    /// <summary>Dimensions, outermost first.</summary>
    public int[] Shape { get; }
    /// <summary>Element strides (contiguous row-major).</summary>
    public int[] Strides { get; }
    /// <summary>Number of dimensions.</summary>
    public int Rank => Shape.Length;
    /// <summary>Number of elements.</summary>
    public int Length { get; }
    /// <summary>True once disposed.</summary>
    public bool IsDisposed => _disposed;

    /// <summary>The elements as a dense 1-D device view.</summary>
    public ArrayView<float> View
    {
        get
        {
            ThrowIfDisposed();
            return _storage.Buffer.View.SubView(_offset, Length);
        }
    }

    Tensor(TensorStorage storage, int offset, int[] shape)
    {
        _storage = storage;
        _offset = offset;
        Shape = shape;
        Strides = Shapes.ContiguousStrides(shape);
        Length = (int)Shapes.Count(shape);
        TensorScope.Register(this);
    }

    /// <summary>Allocates an uninitialised tensor (contents unspecified).</summary>
    public static Tensor Empty(EdmDevice device, params int[] shape)
    {
        long n = Shapes.Validate("Tensor", shape);
        var storage = new TensorStorage(device, n);
        return new Tensor(storage, storage.Start, (int[])shape.Clone());
    }

    /// <summary>Allocates a zero-filled tensor.</summary>
    public static Tensor Zeros(EdmDevice device, params int[] shape)
    {
        var t = Empty(device, shape);
        t.View.MemSetToZero();
        return t;
    }

    /// <summary>Copies host data into a new tensor of the given shape.</summary>
    public static Tensor FromArray(EdmDevice device, ReadOnlySpan<float> data, params int[] shape)
    {
        long n = Shapes.Validate("Tensor.FromArray", shape);
        if (data.Length != n)
            throw new ArgumentException($"Tensor.FromArray: data has {data.Length} elements but shape {Shapes.Format(shape)} needs {n}");
        var storage = new TensorStorage(device, n);
        var t = new Tensor(storage, storage.Start, (int[])shape.Clone());
        t.CopyFrom(data);
        return t;
    }

    /// <summary>Copies host data into this tensor (same element count).</summary>
    public void CopyFrom(ReadOnlySpan<float> data)
    {
        if (data.Length != Length)
            throw new ArgumentException($"Tensor.CopyFrom: data has {data.Length} elements, tensor {Shapes.Format(Shape)} has {Length}");
        if (Length == 0) return;
        View.CopyFromCPU(data.ToArray());
    }

    /// <summary>Copies the elements to a new host array (synchronises).</summary>
    public float[] ToArray()
    {
        var result = new float[Length];
        if (Length > 0) View.CopyToCPU(result);
        return result;
    }

    /// <summary>Reads one element (synchronises; for tests and scalars).</summary>
    public float Item()
    {
        if (Length != 1) throw new InvalidOperationException($"Tensor.Item: tensor {Shapes.Format(Shape)} has {Length} elements, expected 1");
        return ToArray()[0];
    }

    /// <summary>A view with another shape and the same elements (no copy). One dimension may be -1.</summary>
    public Tensor Reshape(params int[] shape)
    {
        ThrowIfDisposed();
        shape = Shapes.InferReshape("Reshape", Shape, shape);
        _storage.AddRef();
        return new Tensor(_storage, _offset, shape);
    }

    /// <summary>A view of rows [start, start+count) along axis 0 (no copy).</summary>
    public Tensor Narrow0(int start, int count)
    {
        ThrowIfDisposed();
        if (Rank == 0 || start < 0 || count < 0 || start + count > Shape[0])
            throw new ArgumentException($"Narrow0: rows [{start}, {start + count}) out of range for shape {Shapes.Format(Shape)}");
        var shape = (int[])Shape.Clone();
        shape[0] = count;
        _storage.AddRef();
        return new Tensor(_storage, _offset + start * (Rank > 0 ? Strides[0] : 1), shape);
    }

    /// <summary>
    /// A view of the elements [start, start + count) of this tensor's flat (row-major) order, with
    /// the given shape (count is its element count; no copy). Used for the per-parameter views of
    /// a flat parameter buffer.
    /// </summary>
    public Tensor ViewRange(int start, params int[] shape)
    {
        ThrowIfDisposed();
        long n = Shapes.Validate("ViewRange", shape);
        if (start < 0 || start + n > Length)
            throw new ArgumentException($"ViewRange: elements [{start}, {start + n}) out of range for a tensor of {Length} elements {Shapes.Format(Shape)}");
        _storage.AddRef();
        return new Tensor(_storage, _offset + start, (int[])shape.Clone());
    }

    /// <summary>
    /// The elements as a host span. Only on the CPU accelerator, whose buffers live in host
    /// memory; used by CPU fast paths. Do not keep it past the tensor's lifetime.
    /// </summary>
    public unsafe Span<float> CpuSpan()
    {
        ThrowIfDisposed();
        if (!Device.IsCpu) throw new InvalidOperationException("CpuSpan is only available on the CPU accelerator");
        return new Span<float>((float*)_storage.Buffer.NativePtr + _offset, Length);
    }

    /// <summary>True when both tensors have the same shape.</summary>
    public bool SameShape(Tensor other) => Shapes.Equal(Shape, other.Shape);

    /// <summary>Shape as "(2, 3, 4)".</summary>
    public string ShapeString => Shapes.Format(Shape);

    void ThrowIfDisposed()
    {
        if (_disposed) throw new ObjectDisposedException(nameof(Tensor), $"tensor {Shapes.Format(Shape)} was disposed");
    }

    /// <inheritdoc/>
    public void Dispose()
    {
        if (_disposed) return;
        _disposed = true;
        _storage.Release();
    }

    /// <inheritdoc/>
    public override string ToString() => $"Tensor{Shapes.Format(Shape)} on {Device.Spec}";
}

/// <summary>
/// Collects the tensors created on this thread while it is the innermost scope, and disposes them
/// when it is disposed, except those passed to <see cref="Escape"/> (which move to the outer scope).
/// </summary>
public sealed class TensorScope : IDisposable
{
    [ThreadStatic] static TensorScope? _current;
    readonly TensorScope? _outer;
    readonly List<Tensor> _tensors = new();
    bool _disposed;

    /// <summary>Opens a scope on this thread.</summary>
    public TensorScope()
    {
        _outer = _current;
        _current = this;
    }

    /// <summary>The innermost open scope of this thread, if any.</summary>
    public static TensorScope? Current => _current;

    internal static void Register(Tensor t) => _current?._tensors.Add(t);

    /// <summary>Lets a tensor outlive this scope (it joins the outer scope, if any). Returns it.</summary>
    public Tensor Escape(Tensor t)
    {
        if (_tensors.Remove(t)) _outer?._tensors.Add(t);
        return t;
    }

    /// <summary>Number of tensors the scope will dispose.</summary>
    public int Count => _tensors.Count;

    /// <inheritdoc/>
    public void Dispose()
    {
        if (_disposed) return;
        _disposed = true;
        foreach (var t in _tensors) t.Dispose();
        _tensors.Clear();
        if (ReferenceEquals(_current, this)) _current = _outer;
    }
}

/// <summary>Shape arithmetic and formatting shared by launchers.</summary>
public static class Shapes
{
    /// <summary>"(2, 3, 4)".</summary>
    public static string Format(ReadOnlySpan<int> shape) => "(" + string.Join(", ", shape.ToArray()) + ")";

    /// <summary>Element count.</summary>
    public static long Count(ReadOnlySpan<int> shape)
    {
        long n = 1;
        foreach (int d in shape) n *= d;
        return n;
    }

    /// <summary>Checks every dimension is positive and the count fits 32-bit indexing; returns the count.</summary>
    public static long Validate(string op, ReadOnlySpan<int> shape)
    {
        long n = 1;
        foreach (int d in shape)
        {
            if (d <= 0) throw new ArgumentException($"{op}: shape {Format(shape)} has a dimension <= 0; every dimension must be >= 1");
            n *= d;
            if (n > Tensor.MaxElements)
                throw new ArgumentException($"{op}: shape {Format(shape)} has more than {Tensor.MaxElements} elements (32-bit indexing)");
        }
        return n;
    }

    /// <summary>Row-major strides.</summary>
    public static int[] ContiguousStrides(ReadOnlySpan<int> shape)
    {
        var s = new int[shape.Length];
        int acc = 1;
        for (int i = shape.Length - 1; i >= 0; i--) { s[i] = acc; acc *= shape[i]; }
        return s;
    }

    /// <summary>Equal shapes.</summary>
    public static bool Equal(ReadOnlySpan<int> a, ReadOnlySpan<int> b) => a.SequenceEqual(b);

    /// <summary>Resolves a reshape target (one -1 allowed) against the source shape.</summary>
    public static int[] InferReshape(string op, int[] from, int[] to)
    {
        long n = Count(from);
        int infer = -1;
        long known = 1;
        for (int i = 0; i < to.Length; i++)
        {
            if (to[i] == -1)
            {
                if (infer >= 0) throw new ArgumentException($"{op}: at most one dimension may be -1, got {Format(to)}");
                infer = i;
            }
            else if (to[i] <= 0) throw new ArgumentException($"{op}: dimension {to[i]} in {Format(to)} is invalid; dimensions must be >= 1 (or one -1)");
            else known *= to[i];
        }
        var result = (int[])to.Clone();
        if (infer >= 0)
        {
            if (known == 0 || n % known != 0)
                throw new ArgumentException($"{op}: cannot reshape {Format(from)} ({n} elements) to {Format(to)}");
            result[infer] = (int)(n / known);
        }
        if (Count(result) != n)
            throw new ArgumentException($"{op}: cannot reshape {Format(from)} ({n} elements) to {Format(to)} ({Count(result)} elements)");
        return result;
    }

    /// <summary>NumPy broadcasting of two shapes; throws naming the op on mismatch.</summary>
    public static int[] Broadcast(string op, ReadOnlySpan<int> a, ReadOnlySpan<int> b)
    {
        int r = Math.Max(a.Length, b.Length);
        var o = new int[r];
        for (int i = 0; i < r; i++)
        {
            int da = i < r - a.Length ? 1 : a[i - (r - a.Length)];
            int db = i < r - b.Length ? 1 : b[i - (r - b.Length)];
            if (da != db && da != 1 && db != 1)
                throw new ArgumentException($"{op}: shapes {Format(a)} and {Format(b)} cannot be broadcast (dimension {i}: {da} vs {db})");
            o[i] = Math.Max(da, db);
        }
        return o;
    }

    /// <summary>Throws unless the shapes are equal.</summary>
    public static void RequireEqual(string op, string arg, ReadOnlySpan<int> expected, ReadOnlySpan<int> actual)
    {
        if (!Equal(expected, actual))
            throw new ArgumentException($"{op}: {arg} has shape {Format(actual)}, expected {Format(expected)}");
    }

    /// <summary>Normalises an axis (negative counts from the end) and checks its range.</summary>
    public static int Axis(string op, int axis, int rank)
    {
        int a = axis < 0 ? axis + rank : axis;
        if (a < 0 || a >= rank) throw new ArgumentException($"{op}: axis {axis} is out of range for rank {rank}; allowed {-rank}..{rank - 1}");
        return a;
    }
}

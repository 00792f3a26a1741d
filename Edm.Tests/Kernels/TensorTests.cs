using Edm.Verification;
using Edm.Kernels;
using Xunit;

namespace Edm.Tests.Kernels;

// Tensors, scopes, the caching allocator, shape errors and device selection against float64 references (the same checks `verify` runs), over more shapes, on both
// the CPU fast path and the ILGPU kernels (CpuFastPaths = false).
[Collection("cpu-device")]
public sealed class TensorTests(CpuDevice cpu) : BothPathsTests(cpu), IClassFixture<CpuDevice>
{
    [Fact]
    public void Shape_errors_name_the_op_and_shapes()
    {
        using var scope = new TensorScope();
        var a = Tensor.Zeros(_d, 2, 3);
        var b = Tensor.Zeros(_d, 4, 3);
        var e = Assert.Throws<ArgumentException>(() => Ops.Add(a, b));
        Assert.Contains("Add", e.Message);
        Assert.Contains("(2, 3)", e.Message);
        Assert.Contains("(4, 3)", e.Message);
        e = Assert.Throws<ArgumentException>(() => Ops.Axpy(1, a, b));
        Assert.Contains("Axpy", e.Message);
        Assert.Throws<ArgumentException>(() => Tensor.Zeros(_d, 2, 0));
        Assert.Throws<ArgumentException>(() => Tensor.Zeros(_d, -1));
        e = Assert.Throws<ArgumentException>(() => Tensor.Empty(_d, 65536, 65536));
        Assert.Contains("32-bit", e.Message);
        // The limit keeps grid-stride loops (i += stride, stride <= MaxGridThreads) below 2^31.
        e = Assert.Throws<ArgumentException>(() => Tensor.Empty(_d, 2, int.MaxValue / 2));
        Assert.Contains("32-bit", e.Message);
        Assert.True(Tensor.MaxElements + Tensor.MaxGridThreads <= int.MaxValue);
        Assert.Throws<ArgumentOutOfRangeException>(() => _d.GridThreads = Tensor.MaxGridThreads + 1);
        Assert.Throws<ArgumentException>(() => a.Reshape(4, -1));
        Assert.Throws<ArgumentException>(() => Ops.Clamp(a, 1, 0));
        Assert.Throws<ArgumentException>(() => Ops.Concat(0, a, Tensor.Zeros(_d, 2, 4)));
        Assert.Throws<ArgumentException>(() => Ops.Slice(a, 1, 2, 2));
        Assert.Throws<ArgumentException>(() => Tensor.FromArray(_d, new float[5], 2, 3));
    }

    [Fact]
    public void Tensor_views_scope_and_memory_accounting()
    {
        long before = _d.BytesInUse;
        Tensor kept;
        using (var scope = new TensorScope())
        {
            var x = Tensor.FromArray(_d, [1, 2, 3, 4, 5, 6], 2, 3);
            var v = x.Reshape(3, -1);
            Assert.Equal([3, 2], v.Shape);
            Assert.Equal(x.ToArray(), v.ToArray());
            var row = x.Narrow0(1, 1);
            Assert.Equal([4f, 5, 6], row.ToArray());
            kept = scope.Escape(Ops.Scale(x, 2));
            Assert.Equal(3, scope.Count); // x, v, row (kept escaped)
        }
        Assert.Equal([2f, 4, 6, 8, 10, 12], kept.ToArray());
        kept.Dispose();
        Assert.Equal(before, _d.BytesInUse);
        Assert.Throws<ObjectDisposedException>(() => kept.ToArray());
    }

    [Fact]
    public void Caching_allocator_reuses_freed_buffers_and_accounts_live_bytes()
    {
        using var d = EdmDevice.Create("cpu");
        // CPU buffers hold 15 floats to spare so that the data starts on a 64-byte boundary.
        var a = Tensor.Empty(d, 1000);
        Assert.Equal(4060, d.BytesInUse);
        Assert.Equal(0, Address(a) % 64);
        a.Dispose();
        Assert.Equal(0, d.BytesInUse);
        Assert.Equal(4060, d.CachedBytes);
        using (var b = Tensor.Zeros(d, 10, 100)) // same length: served from the cache, zeroed
        {
            Assert.Equal(0, d.CachedBytes);
            Assert.All(b.ToArray(), v => Assert.Equal(0f, v));
            Assert.Equal(0, Address(b) % 64);
        }
        using (var c = Tensor.Empty(d, 999)) // other length: new buffer
        {
            Assert.Equal(4056, d.BytesInUse);
            Assert.Equal(0, Address(c) % 64);
        }
        Assert.Equal(4060 + 4056, d.CachedBytes);
        d.EmptyCache();
        Assert.Equal(0, d.CachedBytes);
    }

    static unsafe long Address(Tensor t)
    {
        fixed (float* p = t.CpuSpan()) return (long)p;
    }

    [Fact]
    public void Device_selection_errors_list_present_devices()
    {
        var e = Assert.Throws<DeviceSelectionException>(() => EdmDevice.Create("cuda:7"));
        Assert.Contains("cpu", e.Message);
        Assert.Contains("cuda:7", e.Message);
        Assert.Throws<DeviceSelectionException>(() => EdmDevice.ParseSpec("tpu"));
        Assert.Throws<DeviceSelectionException>(() => EdmDevice.ParseSpec("cuda:x"));
        Assert.Equal((DeviceKind.OpenCL, 2), EdmDevice.ParseSpec("opencl:2"));
        Assert.Equal((DeviceKind.Cpu, 0), EdmDevice.ParseSpec("CPU"));
        Assert.Equal((null, 0), EdmDevice.ParseSpec("auto"));
    }
}

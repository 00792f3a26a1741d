// kernels-bench cases for GEMM (Ops.MatMulInto, C = A B, row-major float32).
// Shapes: GPU 512^3 and 4096^3; CPU accelerator 512^3 and 1024^3 (--quick: 512^3 only): 4096^3 is
// skipped there because the plain-loop baseline would take minutes per repetition.
// Baselines: CPU: a plain C# i-k-j triple loop with Parallel.For over rows of C (what one writes
// without blocking or packing). GPU: cuBLAS SGEMM through ILGPU.Algorithms' CuBlas bindings on CUDA
// (the practical GEMM peak), else (or when cuBLAS cannot load) our naive one-thread-per-output kernel.
using Edm.Kernels;
using ILGPU.Runtime.Cuda;

namespace Edm.Bench.Perf;

/// <summary>GEMM bench cases.</summary>
public sealed class GemmBench : IKernelBench
{
    /// <inheritdoc/>
    public IReadOnlyList<string> Ops { get; } = ["gemm"];

    /// <inheritdoc/>
    public IEnumerable<BenchCase> Cases(EdmDevice d, string op, bool quick)
    {
        int[] sizes = d.IsCpu ? (quick ? [512] : [512, 1024]) : (quick ? [512] : [512, 4096]);
        string? note = d.IsCpu ? (quick ? "CPU --quick: 512^3 only" : "CPU: 4096^3 skipped (plain-loop baseline too slow)") : null;
        foreach (int n in sizes)
        {
            var a = Tensor.Empty(d, n, n);
            var b = Tensor.Empty(d, n, n);
            var c = Tensor.Empty(d, n, n);
            a.CopyFrom(Edm.Verification.Compare.Random(n * n, 1));
            b.CopyFrom(Edm.Verification.Compare.Random(n * n, 2));
            double flops = 2.0 * n * n * n, bytes = 3.0 * 4 * n * n;
            Action ours = () => Kernels.Ops.MatMulInto(a, b, c);
            string shape = $"({n}, {n}, {n})";
            if (d.IsCpu)
            {
                var ha = a.ToArray();
                var hb = b.ToArray();
                var hc = new float[n * n];
                yield return new BenchCase("gemm", shape, bytes, flops, ours, "csharp-ikj-parallel-for",
                    () => NaiveCpuGemm(ha, hb, hc, n, n, n), new Baselines.Disposables(a, b, c), note);
                continue;
            }
            var (name, baseline, res) = GpuGemmBaseline(d, n, n, n);
            yield return new BenchCase("gemm", shape, bytes, flops, ours, name, baseline, new Baselines.Disposables(a, b, c, res), note);
        }
    }

    /// <summary>c (m, n) = a (m, k) b (k, n): i-k-j loops, rows of C in parallel.</summary>
    public static void NaiveCpuGemm(float[] a, float[] b, float[] c, int m, int n, int k) =>
        Parallel.For(0, m, i =>
        {
            var row = c.AsSpan(i * n, n);
            row.Clear();
            for (int p = 0; p < k; p++)
            {
                float av = a[i * k + p];
                int bo = p * n;
                for (int j = 0; j < n; j++) row[j] += av * b[bo + j];
            }
        });

    /// <summary>
    /// A GPU GEMM baseline of shape (m, n, k): cuBLAS SGEMM on CUDA when it loads, else our naive
    /// kernel. Returns its name, action and resources.
    /// </summary>
    public static (string Name, Action Run, IDisposable Resources) GpuGemmBaseline(EdmDevice d, int m, int n, int k)
    {
        var a = Tensor.Empty(d, m, k);
        var b = Tensor.Empty(d, k, n);
        var c = Tensor.Empty(d, m, n);
        a.CopyFrom(Edm.Verification.Compare.Random(m * k, 3));
        b.CopyFrom(Edm.Verification.Compare.Random(k * n, 4));
        if (d.Accelerator is CudaAccelerator cuda)
        {
            try
            {
                var blas = new CuBlas(cuda);
                // cuBLAS is column-major: row-major C = A B is column-major C^T = B^T A^T.
                void Run() => blas.Gemm(CuBlasOperation.NonTranspose, CuBlasOperation.NonTranspose, n, m, k,
                    1f, b.View, n, a.View, k, 0f, c.View, n);
                Run();
                d.Synchronize();
                return ("cublas-sgemm", Run, new Baselines.Disposables(blas, a, b, c));
            }
            catch (Exception e) when (e is DllNotFoundException or CuBlasException or EntryPointNotFoundException or TypeInitializationException)
            {
                // cuBLAS missing: fall through to the naive kernel.
            }
        }
        return ("gemm-naive-kernel", () => Kernels.Ops.MatMulInto(a, b, c, variant: GemmVariant.Naive), new Baselines.Disposables(a, b, c));
    }
}

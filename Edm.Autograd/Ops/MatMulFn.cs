// Differentiable matrix product of two rank-2 variables, y = a b, a (M, K), b (K, N), y (M, N).
// Backward: ga = gy b^T (M, K), gb = a^T gy (K, N).
//
// STAND-IN: the project's GEMM (Ops.MatMul(a, b, transA, transB), branch `nn`) was not on main
// when this was written, so Gemm below is a deliberately simple private matmul (one output
// element per loop iteration, grid-stride; a plain C# loop on the CPU fast path) with the same
// signature. When Ops.MatMul is on main, replace the body of Gemm by `Ops.MatMul(a, b, transA,
// transB)` and delete the kernel; the node and its gradient check stay as they are.
using Edm.Kernels;
using ILGPU;
using ILGPU.Runtime;

namespace Edm.Autograd;

public static partial class Fn
{
    /// <summary>Matrix product a b of (M, K) and (K, N) variables.</summary>
    public static Variable MatMul(Variable a, Variable b)
    {
        bool record = Tape.Prepare("MatMul", a, b);
        var y = Gemm(a.Value, b.Value, false, false);
        return record ? Tape.Record(new MatMulNode(a.Value, b.Value), y, a, b) : new Variable(y);
    }

    sealed class MatMulNode(Tensor a, Tensor b) : Node
    {
        protected internal override Tensor?[] Backward(Tensor gy) =>
        [
            NeedsGrad(0) ? Gemm(gy, b, false, true) : null,  // (M, N) (K, N)^T -> (M, K)
            NeedsGrad(1) ? Gemm(a, gy, true, false) : null,  // (M, K)^T (M, N) -> (K, N)
        ];
    }

    sealed class GemmKey { public static readonly GemmKey Instance = new(); }

    /// <summary>op(a) op(b) for rank-2 tensors (op = transpose when the flag is set).</summary>
    static Tensor Gemm(Tensor a, Tensor b, bool transA, bool transB)
    {
        const string op = "MatMul";
        if (a.Rank != 2 || b.Rank != 2)
            throw new ArgumentException($"{op}: expects rank-2 operands, got {a.ShapeString} and {b.ShapeString}");
        int m = transA ? a.Shape[1] : a.Shape[0], k = transA ? a.Shape[0] : a.Shape[1];
        int kb = transB ? b.Shape[1] : b.Shape[0], n = transB ? b.Shape[0] : b.Shape[1];
        if (k != kb)
            throw new ArgumentException($"{op}: inner dimensions differ: a {a.ShapeString}{(transA ? "^T" : "")} and b {b.ShapeString}{(transB ? "^T" : "")} ({k} vs {kb})");
        if (!ReferenceEquals(a.Device, b.Device))
            throw new ArgumentException($"{op}: operands live on different devices ({a.Device} and {b.Device})");
        var dev = a.Device;
        var c = Tensor.Empty(dev, m, n);
        // Element strides of op(a) (row i, column p) and op(b) (row p, column j).
        var s = new GemmStrides(transA ? 1 : k, transA ? m : 1, transB ? 1 : n, transB ? k : 1, m, n, k);
        if (dev.UseCpuFastPath)
        {
            CpuParallel.For(m, (r0, rows) =>
            {
                var av = a.CpuSpan(); var bv = b.CpuSpan(); var cv = c.CpuSpan();
                for (int i = r0; i < r0 + rows; i++)
                    for (int j = 0; j < n; j++)
                    {
                        float acc = 0;
                        for (int p = 0; p < k; p++) acc += av[i * s.ARow + p * s.ACol] * bv[p * s.BRow + j * s.BCol];
                        cv[i * n + j] = acc;
                    }
            }, minChunk: Math.Max(1, (1 << 15) / Math.Max(1, n * k)));
            return c;
        }
        var kernel = dev.Kernel(GemmKey.Instance, acc =>
            acc.LoadAutoGroupedStreamKernel<Index1D, ArrayView<float>, ArrayView<float>, ArrayView<float>, GemmStrides, int>(GemmKernel));
        int threads = dev.LaunchThreads((long)m * n);
        kernel(threads, a.View, b.View, c.View, s, threads);
        return c;
    }

    /// <summary>Strides and sizes of the stand-in matmul kernel (public because ILGPU's CPU accelerator needs kernel parameter types visible).</summary>
    public readonly record struct GemmStrides(int ARow, int ACol, int BRow, int BCol, int M, int N, int K);

    /// <summary>Naive matmul: one output element per iteration (grid-stride).</summary>
    static void GemmKernel(Index1D first, ArrayView<float> a, ArrayView<float> b, ArrayView<float> c, GemmStrides s, int stride)
    {
        for (int e = first; e < s.M * s.N; e += stride)
        {
            int i = e / s.N, j = e - i * s.N;
            float acc = 0;
            for (int p = 0; p < s.K; p++) acc += a[i * s.ARow + p * s.ACol] * b[p * s.BRow + j * s.BCol];
            c[e] = acc;
        }
    }
}

// `kernels --op tape`: the autograd tape's overhead. A chain of 200 tiny elementwise ops
// (alternating Mul and Add by constants, 64 floats) runs forward and backward through the tape;
// the baseline issues exactly the same kernel launches (200 forward, 100 Mul backward, one Axpy
// into the gradient) directly, with the same allocations and releases. The time spent outside
// kernels per op is (ms - baseline ms) / 200.
using Edm.Autograd;
using Edm.Kernels;
using KOps = Edm.Kernels.Ops;

namespace Edm.Bench.Perf;

/// <summary>Tape overhead bench.</summary>
public sealed class TapeBench : IKernelBench
{
    /// <summary>Ops in the chain.</summary>
    public const int ChainOps = 200;
    const int Size = 64;

    /// <inheritdoc/>
    public IReadOnlyList<string> Ops { get; } = ["tape"];

    /// <inheritdoc/>
    public IEnumerable<BenchCase> Cases(EdmDevice device, string op, bool quick)
    {
        if (op != "tape") yield break;
        var data = Edm.Verification.Compare.Random(Size, 1, 0.9, 1.1);
        var x = Variable.Parameter(Tensor.FromArray(device, data, Size));
        var consts = Enumerable.Range(0, ChainOps).Select(k => new Variable(Tensor.FromArray(device, Edm.Verification.Compare.Random(Size, 10 + k, 0.9, 1.1), Size))).ToArray();
        var seed = Tensor.FromArray(device, Enumerable.Repeat(1f, Size).ToArray(), Size);

        void Taped()
        {
            using var scope = new TensorScope();
            var y = x;
            for (int k = 0; k < ChainOps; k++) y = k % 2 == 0 ? Fn.Mul(y, consts[k]) : Fn.Add(y, consts[k]);
            y.Backward(seed);
        }

        void Direct()
        {
            using var scope = new TensorScope();
            var ys = new Tensor[ChainOps + 1];
            ys[0] = x.Value;
            for (int k = 0; k < ChainOps; k++)
                ys[k + 1] = k % 2 == 0 ? KOps.Mul(ys[k], consts[k].Value) : KOps.Add(ys[k], consts[k].Value);
            Tensor g = seed;
            for (int k = ChainOps - 1; k >= 0; k--)
            {
                if (k % 2 != 0) continue;  // Add passes the gradient through
                var next = KOps.Mul(g, consts[k].Value);
                if (!ReferenceEquals(g, seed)) g.Dispose();
                g = next;
            }
            KOps.Axpy(1f, g, x.Grad);
            g.Dispose();
        }

        var resources = new Baselines.Disposables([x, seed, .. consts]);
        yield return new BenchCase("tape", $"{ChainOps} ops x ({Size})", 0, 0, Taped, "same kernels, no tape", Direct, resources)
        {
            Note = $"outside-kernel time per op = (ms - baseline ms) / {ChainOps}",
        };
    }
}

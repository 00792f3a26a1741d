// kernels-bench case for the point-set denoiser (Ops.MixtureDenoise with all variances 0).
// Size: B samples x K points in dimension D (CPU 256 x 1024 x 64, GPU 4096 x 8192 x 128; --quick
// divides B by 4). FLOPs: ~3 B K D (distances) + 2 B K D (weighted sum). Baseline: the float64 host
// reference (HostMixtureDenoiser) in a Parallel.For over samples.
using Edm.Kernels;
using Edm.Sampling;
using Edm.Verification;

namespace Edm.Bench.Perf;

/// <summary>Point-set denoiser bench case.</summary>
public sealed class MixtureDenoiserBench : IKernelBench
{
    /// <inheritdoc/>
    public IReadOnlyList<string> Ops { get; } = ["point_denoise"];

    /// <inheritdoc/>
    public IEnumerable<BenchCase> Cases(EdmDevice d, string op, bool quick)
    {
        int batch = d.IsCpu ? 256 : 4096, count = d.IsCpu ? 1024 : 8192, dim = d.IsCpu ? 64 : 128;
        if (quick) batch /= 4;
        var data = AnalyticDataset.Create(DatasetKind.Points, dim, count);
        var den = new MixtureDenoiser(d, data.Means.Select(v => (float)v).ToArray(), new float[count],
            data.LogWeights.Select(v => (float)v).ToArray());
        var x = Tensor.Empty(d, batch, dim);
        Kernels.Ops.Normal(x, 3);
        var hx = x.ToArray().Select(v => (double)v).ToArray();
        var sigma = Enumerable.Repeat(0.5, batch).ToArray();
        var host = new HostMixtureDenoiser(data);
        var hout = new double[batch * dim];
        double flops = 5.0 * batch * count * dim;
        double bytes = 4.0 * (2L * batch * dim + (long)count * dim + 2L * batch * count);
        yield return new BenchCase(op, $"B {batch}, K {count}, D {dim}", bytes, flops,
            () => den.Denoise(x, sigma).Dispose(),
            "float64 host loop",
            () => Parallel.For(0, batch, b => host.Denoise(hx.AsSpan(b * dim, dim), 0.5, hout.AsSpan(b * dim, dim))),
            new Baselines.Disposables(x, den));
    }
}

// kernels-bench cases for Conv2d 3x3 (stride 1, same padding, bias): forward ("conv2d") and
// backward ("conv2d-bwd": backward-data + backward-weight + bias gradient, 2x the forward FLOPs).
// Shapes: B=64, 128->128 at 32x32 and 256->256 at 16x16; on the CPU accelerator --quick uses B=8.
// Baselines: CPU: direct convolution loops in plain C# (Parallel.For over (image, output channel),
// contiguous inner loop over output columns); GPU: the GEMM the convolution reduces to
// (M = Cout, N = B*H*W, K = Cin*9 for the forward), by cuBLAS on CUDA, else by our naive kernel.
// "conv2d-geom": the general geometry at Inception-v3's shapes (B=8, --quick B=2): 1x7 192->192 at
// 17x17 (same), 3x3 stride 2 288->384 at 35x35 -> 17x17 (valid); forward only. Baseline: CPU:
// direct loops over (image, output channel); GPU: the equivalent GEMM.
using Edm.Kernels;

namespace Edm.Bench.Perf;

/// <summary>Conv2d bench cases.</summary>
public sealed class Conv2dBench : IKernelBench
{
    /// <inheritdoc/>
    public IReadOnlyList<string> Ops { get; } = ["conv2d", "conv2d-bwd", "conv2d-geom"];

    /// <inheritdoc/>
    public IEnumerable<BenchCase> Cases(EdmDevice d, string op, bool quick)
    {
        if (op == "conv2d-geom")
        {
            foreach (var c in GeometryCases(d, quick)) yield return c;
            yield break;
        }
        int batch = d.IsCpu && quick ? 8 : 64;
        string? note = d.IsCpu && quick ? "CPU --quick: B=8 instead of 64" : null;
        foreach (var (c, hw) in new[] { (128, 32), (256, 16) })
        {
            const int k = 3;
            var x = Tensor.Empty(d, batch, c, hw, hw);
            var w = Tensor.Empty(d, c, c, k, k);
            var bias = Tensor.Empty(d, c);
            var dy = Tensor.Empty(d, batch, c, hw, hw);
            var dw = Tensor.Empty(d, c, c, k, k);
            var db = Tensor.Empty(d, c);
            x.CopyFrom(Edm.Verification.Compare.Random(x.Length, 1));
            w.CopyFrom(Edm.Verification.Compare.Random(w.Length, 2, -0.05, 0.05));
            bias.CopyFrom(Edm.Verification.Compare.Random(c, 3));
            dy.CopyFrom(Edm.Verification.Compare.Random(dy.Length, 4));
            bool bwd = op == "conv2d-bwd";
            double fwdFlops = 2.0 * batch * c * c * k * k * hw * hw;
            double flops = bwd ? 2 * fwdFlops : fwdFlops;
            double bytes = 4.0 * (bwd ? 2 * x.Length + dy.Length + 2 * w.Length : x.Length + dy.Length + w.Length);
            Action ours = bwd
                ? () =>
                {
                    Kernels.Ops.Conv2dBackwardData(dy, w).Dispose();
                    Kernels.Ops.Conv2dBackwardWeightInto(x, dy, dw, accumulate: false);
                    Kernels.Ops.Conv2dBackwardBiasInto(dy, db, accumulate: false);
                }
                : () => Kernels.Ops.Conv2d(x, w, bias).Dispose();
            string shape = $"B{batch} {c}->{c} {hw}x{hw} k3";
            var owned = new Baselines.Disposables(x, w, bias, dy, dw, db);
            if (d.IsCpu)
            {
                var hx = x.ToArray();
                var hw_ = w.ToArray();
                var hdy = dy.ToArray();
                var hy = new float[dy.Length];
                var hdx = new float[x.Length];
                var hdw = new float[w.Length];
                Action baseline = bwd
                    ? () => DirectBackward(hx, hw_, hdy, hdx, hdw, batch, c, c, hw, hw, k)
                    : () => DirectForward(hx, hw_, hy, batch, c, c, hw, hw, k);
                yield return new BenchCase(op, shape, bytes, flops, ours, "csharp-direct-loops", baseline, owned, note);
                continue;
            }
            // GPU: the equivalent GEMM (the forward's; the backward runs two of them).
            var (name, gemm, res) = GemmBench.GpuGemmBaseline(d, c, batch * hw * hw, c * k * k);
            Action run = bwd ? () => { gemm(); gemm(); } : gemm;
            yield return new BenchCase(op, shape, bytes, flops, ours, name + (bwd ? " x2" : ""), run, new Baselines.Disposables(owned, res), note);
        }
    }

    /// <summary>y (B, Cout, H, W) = direct 3x3 same-padding convolution of x (B, Cin, H, W) (no bias).</summary>
    public static void DirectForward(float[] x, float[] w, float[] y, int batch, int cin, int cout, int h, int wd, int k)
    {
        int pad = k / 2;
        Parallel.For(0, batch * cout, bc =>
        {
            int b = bc / cout, co = bc % cout;
            var o = y.AsSpan(bc * h * wd, h * wd);
            o.Clear();
            for (int ci = 0; ci < cin; ci++)
                for (int ky = 0; ky < k; ky++)
                    for (int kx = 0; kx < k; kx++)
                    {
                        float wv = w[((co * cin + ci) * k + ky) * k + kx];
                        int lo = Math.Max(0, pad - kx), hi = Math.Min(wd, wd + pad - kx);
                        for (int oy = 0; oy < h; oy++)
                        {
                            int iy = oy + ky - pad;
                            if (iy < 0 || iy >= h) continue;
                            int xo = ((b * cin + ci) * h + iy) * wd + kx - pad, oo = oy * wd;
                            for (int ox = lo; ox < hi; ox++) o[oo + ox] += wv * x[xo + ox];
                        }
                    }
        });
    }

    /// <summary>dx and dW of the direct convolution for dy (B, Cout, H, W), plain loops.</summary>
    public static void DirectBackward(float[] x, float[] w, float[] dy, float[] dx, float[] dw, int batch, int cin, int cout, int h, int wd, int k)
    {
        int pad = k / 2;
        // dx: parallel over (image, input channel); dW: parallel over (output, input channel).
        Parallel.For(0, batch * cin, bc =>
        {
            int b = bc / cin, ci = bc % cin;
            var o = dx.AsSpan(bc * h * wd, h * wd);
            o.Clear();
            for (int co = 0; co < cout; co++)
                for (int ky = 0; ky < k; ky++)
                    for (int kx = 0; kx < k; kx++)
                    {
                        float wv = w[((co * cin + ci) * k + ky) * k + kx];
                        int lo = Math.Max(0, pad - kx), hi = Math.Min(wd, wd + pad - kx);
                        for (int oy = 0; oy < h; oy++)
                        {
                            int iy = oy + ky - pad;
                            if (iy < 0 || iy >= h) continue;
                            int go = ((b * cout + co) * h + oy) * wd, xo = iy * wd + kx - pad;
                            for (int ox = lo; ox < hi; ox++) o[xo + ox] += wv * dy[go + ox];
                        }
                    }
        });
        Parallel.For(0, cout * cin, oc =>
        {
            int co = oc / cin, ci = oc % cin;
            for (int ky = 0; ky < k; ky++)
                for (int kx = 0; kx < k; kx++)
                {
                    int lo = Math.Max(0, pad - kx), hi = Math.Min(wd, wd + pad - kx);
                    float acc = 0f;
                    for (int b = 0; b < batch; b++)
                        for (int oy = 0; oy < h; oy++)
                        {
                            int iy = oy + ky - pad;
                            if (iy < 0 || iy >= h) continue;
                            int go = ((b * cout + co) * h + oy) * wd, xo = ((b * cin + ci) * h + iy) * wd + kx - pad;
                            for (int ox = lo; ox < hi; ox++) acc += dy[go + ox] * x[xo + ox];
                        }
                    dw[((co * cin + ci) * k + ky) * k + kx] = acc;
                }
        });
    }

    static IEnumerable<BenchCase> GeometryCases(EdmDevice d, bool quick)
    {
        int batch = quick ? 2 : 8;
        string? note = quick ? "--quick: B=2 instead of 8" : null;
        foreach (var (cin, cout, hw, kh, kw, p) in new[]
        {
            (192, 192, 17, 1, 7, Conv2dParams.Symmetric(1, 1, 0, 3)),
            (288, 384, 35, 3, 3, Conv2dParams.Symmetric(2, 2, 0, 0)),
        })
        {
            var x = Tensor.Empty(d, batch, cin, hw, hw);
            var w = Tensor.Empty(d, cout, cin, kh, kw);
            x.CopyFrom(Edm.Verification.Compare.Random(x.Length, 1));
            w.CopyFrom(Edm.Verification.Compare.Random(w.Length, 2, -0.05, 0.05));
            int ho = (hw + p.PadTop + p.PadBottom - kh) / p.StrideH + 1, wo = (hw + p.PadLeft + p.PadRight - kw) / p.StrideW + 1;
            double flops = 2.0 * batch * cout * cin * kh * kw * ho * wo;
            double bytes = 4.0 * (x.Length + w.Length + (double)batch * cout * ho * wo);
            string shape = $"B{batch} {cin}->{cout} {hw}x{hw} k{kh}x{kw} s{p.StrideH}";
            Action ours = () => Kernels.Ops.Conv2d(x, w, null, p).Dispose();
            var owned = new Baselines.Disposables(x, w);
            if (d.IsCpu)
            {
                var hx = x.ToArray();
                var hwt = w.ToArray();
                var hy = new float[batch * cout * ho * wo];
                yield return new BenchCase("conv2d-geom", shape, bytes, flops, ours, "csharp-direct-loops",
                    () => DirectForwardGeneral(hx, hwt, hy, batch, cin, cout, hw, hw, kh, kw, p), owned, note);
                continue;
            }
            var (name, gemm, res) = GemmBench.GpuGemmBaseline(d, cout, batch * ho * wo, cin * kh * kw);
            yield return new BenchCase("conv2d-geom", shape, bytes, flops, ours, name, gemm, new Baselines.Disposables(owned, res), note);
        }
    }

    /// <summary>y (B, Cout, Ho, Wo) = direct convolution of x (B, Cin, H, W) with any geometry (no bias), plain loops.</summary>
    public static void DirectForwardGeneral(float[] x, float[] w, float[] y, int batch, int cin, int cout, int h, int wd, int kh, int kw, Conv2dParams p)
    {
        int ho = (h + p.PadTop + p.PadBottom - kh) / p.StrideH + 1, wo = (wd + p.PadLeft + p.PadRight - kw) / p.StrideW + 1;
        Parallel.For(0, batch * cout, bc =>
        {
            int b = bc / cout, co = bc % cout;
            var o = y.AsSpan(bc * ho * wo, ho * wo);
            o.Clear();
            for (int ci = 0; ci < cin; ci++)
                for (int ky = 0; ky < kh; ky++)
                    for (int kx = 0; kx < kw; kx++)
                    {
                        float wv = w[((co * cin + ci) * kh + ky) * kw + kx];
                        for (int oy = 0; oy < ho; oy++)
                        {
                            int iy = oy * p.StrideH + ky - p.PadTop;
                            if (iy < 0 || iy >= h) continue;
                            int xo = ((b * cin + ci) * h + iy) * wd;
                            for (int ox = 0; ox < wo; ox++)
                            {
                                int ix = ox * p.StrideW + kx - p.PadLeft;
                                if ((uint)ix < (uint)wd) o[oy * wo + ox] += wv * x[xo + ix];
                            }
                        }
                    }
        });
    }
}

// verify rows for Conv2d: forward, backward-data, backward-weight and bias gradient against the
// float64 reference (Conv2dReference), odd shapes; on the CPU accelerator "kernel" rows run the
// ILGPU im2col/col2im + tiled GEMM path at tiny sizes. The general geometry (strides, rectangular
// kernels, asymmetric padding: the Inception-v3 layers) has its own rows, "conv kh x kw s.. p..".
using Edm.Verification;
using Edm.Kernels;

namespace Edm.Verification;

/// <summary>Checks of Conv2d.</summary>
public sealed class Conv2dVerify : IVerifySuite
{
    /// <inheritdoc/>
    public string Family => "conv2d";

    /// <inheritdoc/>
    public IEnumerable<VerifyRow> Run(EdmDevice d)
    {
        foreach (var row in Conv(d, 2, 37, 9, 11, 45, 3, -1)) yield return row;
        foreach (var row in Conv(d, 1, 33, 1, 1, 7, 3, -1)) yield return row;
        foreach (var row in Conv(d, 3, 20, 8, 8, 36, 1, -1)) yield return row;
        foreach (var row in Conv(d, 2, 5, 7, 6, 4, 5, -1)) yield return row;
        foreach (var row in Conv(d, 2, 6, 6, 5, 3, 3, 0)) yield return row;
        // Inception-v3 geometries (pytorch-fid's blocks): 1x7 / 7x1 same, 3x3 stride 2 valid, 1x3 / 3x1,
        // 1x1 stride 2; plus asymmetric padding and an even kernel.
        foreach (var row in General(d, 2, 19, 9, 8, 21, 1, 7, Conv2dParams.Symmetric(1, 1, 0, 3))) yield return row;
        foreach (var row in General(d, 2, 19, 9, 8, 21, 7, 1, Conv2dParams.Symmetric(1, 1, 3, 0))) yield return row;
        foreach (var row in General(d, 2, 17, 15, 13, 20, 3, 3, Conv2dParams.Symmetric(2, 2, 0, 0))) yield return row;
        foreach (var row in General(d, 3, 9, 7, 6, 11, 1, 3, Conv2dParams.Symmetric(1, 1, 0, 1))) yield return row;
        foreach (var row in General(d, 3, 9, 7, 6, 11, 3, 1, Conv2dParams.Symmetric(1, 1, 1, 0))) yield return row;
        foreach (var row in General(d, 2, 8, 9, 10, 5, 1, 1, Conv2dParams.Symmetric(2, 2, 0, 0))) yield return row;
        foreach (var row in General(d, 2, 5, 8, 9, 6, 3, 3, new(2, 1, 0, 1, 2, 0))) yield return row;
        foreach (var row in General(d, 1, 4, 6, 7, 3, 2, 4, new(1, 3, 1, 0, 0, 2))) yield return row;
        // 3x3 same with at least 32 channels: Winograd F(2x2, 3x3) on the CPU fast path (odd sizes: partial
        // tiles), then the same shape by the direct product.
        foreach (var row in Conv(d, 2, 67, 9, 11, 70, 3, -1, d.UseCpuFastPath && d.AllowWinograd ? " winograd" : "")) yield return row;
        if (d.UseCpuFastPath && d.AllowWinograd)
        {
            d.AllowWinograd = false;
            try
            {
                foreach (var row in Conv(d, 2, 67, 9, 11, 70, 3, -1, " direct")) yield return row;
            }
            finally { d.AllowWinograd = true; }
        }
        // The kernel path runs implicit GEMMs (ConvImplicitGemm.cs) unless told otherwise: on a GPU
        // the rows above are theirs, and these are im2col + GEMM's.
        if (!d.IsCpu)
            foreach (var row in Im2Col(d, "")) yield return row;
        if (d.IsCpu)
        {
            var keep = d.CpuFastPaths;
            d.CpuFastPaths = false;
            try
            {
                foreach (var row in KernelRows(d, " kernel")) yield return row;
                foreach (var row in Conv(d, 3, 4, 12, 12, 130, 3, -1, " kernel")) yield return row;   // two tile rows, the dW split in chunks
                foreach (var row in Im2Col(d, " kernel")) yield return row;
            }
            finally { d.CpuFastPaths = keep; }
        }
    }

    static IEnumerable<VerifyRow> KernelRows(EdmDevice d, string tag)
    {
        foreach (var row in Conv(d, 2, 3, 5, 4, 5, 3, -1, tag)) yield return row;
        foreach (var row in General(d, 2, 3, 9, 8, 4, 3, 3, new(2, 2, 0, 1, 1, 0), tag)) yield return row;
        foreach (var row in General(d, 1, 4, 5, 7, 3, 1, 7, Conv2dParams.Symmetric(1, 1, 0, 3), tag)) yield return row;
    }

    static IEnumerable<VerifyRow> Im2Col(EdmDevice d, string tag)
    {
        bool keep = Ops.ImplicitConv;
        Ops.ImplicitConv = false;
        try
        {
            foreach (var row in KernelRows(d, tag + " im2col")) yield return row;
        }
        finally { Ops.ImplicitConv = keep; }
    }

    /// <summary>
    /// The TF32 implicit-GEMM convolutions (forward, backward-data, weight gradient; EdmDevice.AllowTf32
    /// on, CUDA) against the float64 reference of the TF32-rounded operands (float32 accumulation
    /// error only). Run in the tf32 family, last (a fault in a new GPU kernel ends the context).
    /// </summary>
    public static IEnumerable<VerifyRow> Tf32(EdmDevice d, int b, int cin, int h, int w, int cout, int k)
    {
        int pad = k / 2;
        var x = Compare.Random(b * cin * h * w, 21);
        var wt = Compare.Random(cout * cin * k * k, 22);
        var bias = Compare.Random(cout, 23);
        var dy = Compare.Random(b * cout * h * w, 24);
        static double[] R(float[] v) => Array.ConvertAll(v, q => (double)GemmVerify.RoundTf32(q));
        using var tx = Tensor.FromArray(d, x, b, cin, h, w);
        using var tw = Tensor.FromArray(d, wt, cout, cin, k, k);
        using var tb = Tensor.FromArray(d, bias, cout);
        using var tdy = Tensor.FromArray(d, dy, b, cout, h, w);
        string shapes = $"x ({b}, {cin}, {h}, {w}) w ({cout}, {cin}, {k}, {k})";
        var (rdx, rdw, _) = Conv2dReference.Backward(R(x), R(wt), R(dy), b, cin, h, w, cout, k, pad);
        bool keep = d.AllowTf32;
        d.AllowTf32 = true;
        try
        {
            using (var y = Ops.Conv2d(tx, tw, tb))
                yield return Compare.Row($"conv{k}x{k} forward tf32", shapes, y.ToArray(),
                    Conv2dReference.Forward(R(x), R(wt), Array.ConvertAll(bias, v => (double)v), b, cin, h, w, cout, k, pad), 1e-5 * Math.Sqrt(cin * k * k));
            using (var dx = Ops.Conv2dBackwardData(tdy, tw))
                yield return Compare.Row($"conv{k}x{k} backward-data tf32", shapes, dx.ToArray(), rdx, 1e-5 * Math.Sqrt(cout * k * k));
            using (var dw = Ops.Conv2dBackwardWeight(tx, tdy, k))
                yield return Compare.Row($"conv{k}x{k} backward-weight tf32", shapes, dw.ToArray(), rdw, 1e-5 * Math.Sqrt(b * h * w));
        }
        finally { d.AllowTf32 = keep; }
    }

    /// <summary>The four conv ops on one shape, one row each.</summary>
    public static IEnumerable<VerifyRow> Conv(EdmDevice d, int b, int cin, int h, int w, int cout, int k, int padding, string tag = "")
    {
        int pad = padding < 0 ? k / 2 : padding;
        int ho = h + 2 * pad - k + 1, wo = w + 2 * pad - k + 1;
        var x = Compare.Random(b * cin * h * w, 11);
        var wt = Compare.Random(cout * cin * k * k, 12);
        var bias = Compare.Random(cout, 13);
        var dy = Compare.Random(b * cout * ho * wo, 14);
        double[] D(float[] v) => Array.ConvertAll(v, f => (double)f);
        using var tx = Tensor.FromArray(d, x, b, cin, h, w);
        using var tw = Tensor.FromArray(d, wt, cout, cin, k, k);
        using var tb = Tensor.FromArray(d, bias, cout);
        using var tdy = Tensor.FromArray(d, dy, b, cout, ho, wo);
        string shapes = $"x {tx.ShapeString}, W {tw.ShapeString}, pad {pad}";
        string kk = $"conv{k}x{k}";
        var (rdx, rdw, rdb) = Conv2dReference.Backward(D(x), D(wt), D(dy), b, cin, h, w, cout, k, pad);
        using (var y = Ops.Conv2d(tx, tw, tb, padding))
            yield return Compare.Row($"{kk} forward{tag}", shapes, y.ToArray(), Conv2dReference.Forward(D(x), D(wt), D(bias), b, cin, h, w, cout, k, pad), 1e-5 * Math.Sqrt(cin * k * k));
        using (var dx = Ops.Conv2dBackwardData(tdy, tw, padding))
            yield return Compare.Row($"{kk} backward-data{tag}", shapes, dx.ToArray(), rdx, 1e-5 * Math.Sqrt(cout * k * k));
        using (var dw = Ops.Conv2dBackwardWeight(tx, tdy, k, padding))
            yield return Compare.Row($"{kk} backward-weight{tag}", shapes, dw.ToArray(), rdw, 1e-5 * Math.Sqrt(b * ho * wo));
        using (var db = Ops.Conv2dBackwardBias(tdy))
            yield return Compare.Row($"{kk} backward-bias{tag}", shapes, db.ToArray(), rdb, 1e-5 * Math.Sqrt(b * ho * wo));
    }

    /// <summary>The four conv ops on one general geometry (kernel kh x kw, stride and padding per side), one row each.</summary>
    public static IEnumerable<VerifyRow> General(EdmDevice d, int b, int cin, int h, int w, int cout, int kh, int kw, Conv2dParams p, string tag = "")
    {
        var (ho, wo) = Conv2dReference.OutputSize(h, w, kh, kw, p);
        var x = Compare.Random(b * cin * h * w, 21);
        var wt = Compare.Random(cout * cin * kh * kw, 22);
        var bias = Compare.Random(cout, 23);
        var dy = Compare.Random(b * cout * ho * wo, 24);
        double[] D(float[] v) => Array.ConvertAll(v, f => (double)f);
        using var tx = Tensor.FromArray(d, x, b, cin, h, w);
        using var tw = Tensor.FromArray(d, wt, cout, cin, kh, kw);
        using var tb = Tensor.FromArray(d, bias, cout);
        using var tdy = Tensor.FromArray(d, dy, b, cout, ho, wo);
        string shapes = $"x {tx.ShapeString}, W {tw.ShapeString}, {p}";
        string kk = $"conv{kh}x{kw} s{p.StrideH}{p.StrideW}";
        int taps = cin * kh * kw;
        var (rdx, rdw, rdb) = Conv2dReference.Backward(D(x), D(wt), D(dy), b, cin, h, w, cout, kh, kw, p);
        using (var y = Ops.Conv2d(tx, tw, tb, p))
            yield return Compare.Row($"{kk} forward{tag}", shapes, y.ToArray(), Conv2dReference.Forward(D(x), D(wt), D(bias), b, cin, h, w, cout, kh, kw, p), 1e-5 * Math.Sqrt(taps));
        using (var dx = Ops.Conv2dBackwardData(tdy, tw, h, w, p))
            yield return Compare.Row($"{kk} backward-data{tag}", shapes, dx.ToArray(), rdx, 1e-5 * Math.Sqrt(cout * kh * kw));
        using (var dw = Ops.Conv2dBackwardWeight(tx, tdy, kh, kw, p))
            yield return Compare.Row($"{kk} backward-weight{tag}", shapes, dw.ToArray(), rdw, 1e-5 * Math.Sqrt(b * ho * wo));
        using (var db = Ops.Conv2dBackwardBias(tdy))
            yield return Compare.Row($"{kk} backward-bias{tag}", shapes, db.ToArray(), rdb, 1e-5 * Math.Sqrt(b * ho * wo));
    }
}

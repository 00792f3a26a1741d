// verify rows for windowed max / average pooling and adaptive average pooling (Edm.Kernels/Pool2d.cs)
// against References/Pool2dReference.cs: Inception-v3's poolings (3x3 stride 2; 3x3 stride 1 pad 1,
// average without the padding; global average), count_include_pad both ways, asymmetric padding,
// rectangular windows, odd sizes; plus ILGPU-kernel rows on the CPU accelerator.
using Edm.Kernels;

namespace Edm.Verification;

/// <summary>Windowed and adaptive pooling, forward and backward.</summary>
public sealed class Pool2dVerify : IVerifySuite
{
    /// <inheritdoc/>
    public string Family => "pool2d";

    /// <inheritdoc/>
    public IEnumerable<VerifyRow> Run(EdmDevice d)
    {
        foreach (var r in All(d, "")) yield return r;
        if (d.IsCpu)
        {
            var keep = d.CpuFastPaths;
            d.CpuFastPaths = false;
            try { foreach (var r in All(d, " kernel")) yield return r; }
            finally { d.CpuFastPaths = keep; }
        }
    }

    static IEnumerable<VerifyRow> All(EdmDevice d, string tag)
    {
        int n = 2, c = 5;
        foreach (var (h, w, kh, kw, p) in new[]
        {
            (15, 13, 3, 3, Conv2dParams.Symmetric(2, 2, 0, 0)),   // Inception's max pools and grid reductions
            (9, 8, 3, 3, Conv2dParams.Symmetric(1, 1, 1, 1)),     // Inception's branch pools
            (8, 11, 2, 3, new Conv2dParams(2, 1, 1, 0, 0, 1)),    // asymmetric padding, rectangular
        })
        {
            foreach (var (name, max, inc) in new[] { ("maxpool", true, false), ("avgpool incl-pad", false, true), ("avgpool excl-pad", false, false) })
                foreach (var r in Windowed(d, n, c, h, w, kh, kw, p, max, inc, name + tag)) yield return r;
        }
        foreach (var (h, w, oh, ow) in new[] { (8, 7, 1, 1), (10, 7, 3, 4) })
            foreach (var r in Adaptive(d, n, c, h, w, oh, ow, "adaptive-avgpool" + tag)) yield return r;
    }

    /// <summary>Forward and backward rows of one windowed pooling.</summary>
    public static IEnumerable<VerifyRow> Windowed(EdmDevice d, int n, int c, int h, int w, int kh, int kw, Conv2dParams p, bool max, bool inc, string name)
    {
        var (ho, wo) = Pool2dReference.OutputSize(h, w, kh, kw, p);
        int planes = n * c;
        var x = Compare.Random(planes * h * w, 51);
        var dy = Compare.Random(planes * ho * wo, 52);
        static double[] D(float[] a) => Array.ConvertAll(a, v => (double)v);
        using var tx = Tensor.FromArray(d, x, n, c, h, w);
        using var tdy = Tensor.FromArray(d, dy, n, c, ho, wo);
        string shape = $"{tx.ShapeString} k({kh},{kw}) {p}";
        using var y = max ? Ops.MaxPool2d(tx, kh, kw, p) : Ops.AvgPool2d(tx, kh, kw, p, inc);
        using var dx = max ? Ops.MaxPool2dBackward(tx, tdy, kh, kw, p) : Ops.AvgPool2dBackward(tx, tdy, kh, kw, p, inc);
        yield return Compare.Row(name, shape, y.ToArray(), Pool2dReference.Forward(D(x), planes, h, w, kh, kw, p, max, inc).Y, 1e-6);
        yield return Compare.Row(name + " backward", shape, dx.ToArray(), Pool2dReference.Backward(D(x), D(dy), planes, h, w, kh, kw, p, max, inc), 1e-6);
    }

    /// <summary>Forward and backward rows of one adaptive average pooling.</summary>
    public static IEnumerable<VerifyRow> Adaptive(EdmDevice d, int n, int c, int h, int w, int oh, int ow, string name)
    {
        int planes = n * c;
        var x = Compare.Random(planes * h * w, 53);
        var dy = Compare.Random(planes * oh * ow, 54);
        static double[] D(float[] a) => Array.ConvertAll(a, v => (double)v);
        using var tx = Tensor.FromArray(d, x, n, c, h, w);
        using var tdy = Tensor.FromArray(d, dy, n, c, oh, ow);
        string shape = $"{tx.ShapeString} -> ({oh}, {ow})";
        using var y = Ops.AdaptiveAvgPool2d(tx, oh, ow);
        using var dx = Ops.AdaptiveAvgPool2dBackward(tdy, h, w);
        yield return Compare.Row(name, shape, y.ToArray(), Pool2dReference.Adaptive(D(x), planes, h, w, oh, ow), 1e-6);
        yield return Compare.Row(name + " backward", shape, dx.ToArray(), Pool2dReference.AdaptiveBackward(D(dy), planes, h, w, oh, ow), 1e-6);
    }
}

// Gradient-check cases of conv2d (Edm.Autograd/Ops/Conv2dFn.cs; stride 1 same padding, and the
// general geometry: strides, rectangular kernels, asymmetric padding) against References/Conv2dReference.cs. The FIR-resampling convolutions are in ResampleGradCases.cs.
using Edm.Autograd;
using Edm.Kernels;

namespace Edm.Verification;

/// <summary>Cases of conv2d.</summary>
public sealed class Conv2dGradCases : IGradCases
{
    /// <inheritdoc/>
    public IReadOnlyDictionary<string, GradCase> Cases()
    {
        var c = new Dictionary<string, GradCase>();
        foreach (var (b, cin, h, w, cout, k) in new[] { (2, 3, 5, 4, 4, 3), (1, 2, 3, 3, 3, 1), (1, 1, 6, 7, 2, 3) })
        {
            int pad = k / 2;  // stride 1, same padding
            // x (B, Cin, H, W), w (Cout, Cin, k, k), b (Cout) -> y (B, Cout, H, W)
            c[$"conv2d k{k} ({b},{cin},{h},{w})->{cout}"] = new([[b, cin, h, w], [cout, cin, k, k], [cout]], v => Fn.Conv2d(v[0], v[1], v[2]),
                x => new RefTensor(Conv2dReference.Forward(x[0].Data, x[1].Data, x[2].Data, b, cin, h, w, cout, k, pad), [b, cout, h, w]),
                (x, g) =>
                {
                    var (dx, dw, db) = Conv2dReference.Backward(x[0].Data, x[1].Data, g.Data, b, cin, h, w, cout, k, pad);
                    return [new(dx, [b, cin, h, w]), new(dw, [cout, cin, k, k]), new(db, [cout])];
                });
        }
        foreach (var (b, cin, h, w, cout, kh, kw, p) in new[]
        {
            (2, 2, 5, 6, 3, 3, 3, Conv2dParams.Symmetric(2, 2, 0, 0)),        // Inception's reductions
            (1, 2, 4, 5, 2, 1, 3, Conv2dParams.Symmetric(1, 1, 0, 1)),        // 1x3 same
            (1, 2, 5, 3, 2, 3, 1, Conv2dParams.Symmetric(1, 1, 1, 0)),        // 3x1 same
            (1, 1, 5, 6, 2, 2, 3, new Conv2dParams(2, 1, 1, 0, 0, 2)),        // asymmetric, even kh
        })
        {
            var (ho, wo) = Conv2dReference.OutputSize(h, w, kh, kw, p);
            c[$"conv2d {kh}x{kw} {p} ({b},{cin},{h},{w})->{cout}"] = new([[b, cin, h, w], [cout, cin, kh, kw], [cout]], v => Fn.Conv2d(v[0], v[1], v[2], p),
                x => new RefTensor(Conv2dReference.Forward(x[0].Data, x[1].Data, x[2].Data, b, cin, h, w, cout, kh, kw, p), [b, cout, ho, wo]),
                (x, g) =>
                {
                    var (dx, dw, db) = Conv2dReference.Backward(x[0].Data, x[1].Data, g.Data, b, cin, h, w, cout, kh, kw, p);
                    return [new(dx, [b, cin, h, w]), new(dw, [cout, cin, kh, kw]), new(db, [cout])];
                });
        }
        return c;
    }
}

// Gradient-check cases of conv2d (Edm.Autograd/Ops/Conv2dFn.cs; stride 1, same padding) against
// References/Conv2dReference.cs. The FIR-resampling convolutions are in ResampleGradCases.cs.
using Edm.Autograd;

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
        return c;
    }
}

// Gradient-check cases of nearest 2x upsampling and 2x2 average pooling
// (Edm.Autograd/Ops/PoolingFn.cs) against References/PoolingReference.cs.
using Edm.Autograd;

namespace Edm.Verification;

/// <summary>Cases of nearest upsampling and average pooling.</summary>
public sealed class PoolingGradCases : IGradCases
{
    /// <inheritdoc/>
    public IReadOnlyDictionary<string, GradCase> Cases()
    {
        var c = new Dictionary<string, GradCase>();
        foreach (var (n, ch, h, w) in new[] { (2, 3, 4, 6), (1, 1, 2, 2) })
        {
            int planes = n * ch;
            c[$"upsample_nearest2x ({n},{ch},{h},{w})"] = new([[n, ch, h, w]], v => Fn.UpsampleNearest2x(v[0]),
                x => new RefTensor(PoolingReference.UpsampleNearest2x(x[0].Data, planes, h, w), [n, ch, 2 * h, 2 * w]),
                (x, g) => [new RefTensor(PoolingReference.UpsampleNearest2xBackward(g.Data, planes, h, w), [n, ch, h, w])]);
            c[$"avgpool2x ({n},{ch},{h},{w})"] = new([[n, ch, h, w]], v => Fn.AvgPool2x(v[0]),
                x => new RefTensor(PoolingReference.AvgPool2x(x[0].Data, planes, h, w), [n, ch, h / 2, w / 2]),
                (x, g) => [new RefTensor(PoolingReference.AvgPool2xBackward(g.Data, planes, h, w), [n, ch, h, w])]);
        }
        return c;
    }
}

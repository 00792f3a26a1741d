// Gradient-check cases of the bilinear resize (Edm.Autograd/Ops/InterpolateFn.cs) against
// References/InterpolateReference.cs: up, down, and mixed per axis.
using Edm.Autograd;

namespace Edm.Verification;

/// <summary>Cases of the bilinear resize.</summary>
public sealed class InterpolateGradCases : IGradCases
{
    /// <inheritdoc/>
    public IReadOnlyDictionary<string, GradCase> Cases()
    {
        var cases = new Dictionary<string, GradCase>();
        foreach (var (n, c, h, w, oh, ow) in new[] { (2, 2, 4, 3, 9, 7), (1, 2, 7, 6, 3, 4), (1, 1, 5, 2, 3, 5) })
        {
            int planes = n * c;
            cases[$"bilinear ({n},{c},{h},{w})->({oh},{ow})"] = new([[n, c, h, w]], v => Fn.InterpolateBilinear(v[0], oh, ow),
                x => new RefTensor(InterpolateReference.Forward(x[0].Data, planes, h, w, oh, ow), [n, c, oh, ow]),
                (x, g) => [new RefTensor(InterpolateReference.Backward(g.Data, planes, h, w, oh, ow), [n, c, h, w])]);
        }
        return cases;
    }
}

// Gradient-check cases of windowed max / average pooling and adaptive average pooling
// (Edm.Autograd/Ops/Pool2dFn.cs) against References/Pool2dReference.cs. Max pooling gets inputs
// that are a shuffled ramp with steps of 0.05: no two values within a finite-difference step, so
// every window's maximum is unique and the function is differentiable there.
using Edm.Autograd;
using Edm.Kernels;

namespace Edm.Verification;

/// <summary>Cases of the windowed and adaptive poolings.</summary>
public sealed class Pool2dGradCases : IGradCases
{
    /// <summary>n distinct values -1 + 0.05 k in a seeded random order.</summary>
    static float[] Distinct(int n)
    {
        var v = Enumerable.Range(0, n).Select(k => (float)(0.05 * k - 1)).ToArray();
        new Random(7).Shuffle(v);
        return v;
    }

    /// <inheritdoc/>
    public IReadOnlyDictionary<string, GradCase> Cases()
    {
        var cases = new Dictionary<string, GradCase>();
        int n = 2, c = 2;
        foreach (var (h, w, kh, kw, p) in new[]
        {
            (7, 6, 3, 3, Conv2dParams.Symmetric(2, 2, 0, 0)),
            (5, 4, 3, 3, Conv2dParams.Symmetric(1, 1, 1, 1)),
            (4, 5, 2, 3, new Conv2dParams(2, 1, 1, 0, 0, 1)),
        })
        {
            var (ho, wo) = Pool2dReference.OutputSize(h, w, kh, kw, p);
            int planes = n * c;
            foreach (var (name, max, inc) in new[] { ("maxpool2d", true, false), ("avgpool2d incl-pad", false, true), ("avgpool2d excl-pad", false, false) })
            {
                cases[$"{name} k({kh},{kw}) {p} ({n},{c},{h},{w})"] = new([[n, c, h, w]],
                    v => max ? Fn.MaxPool2d(v[0], kh, kw, p) : Fn.AvgPool2d(v[0], kh, kw, p, inc),
                    x => new RefTensor(Pool2dReference.Forward(x[0].Data, planes, h, w, kh, kw, p, max, inc).Y, [n, c, ho, wo]),
                    (x, g) => [new RefTensor(Pool2dReference.Backward(x[0].Data, g.Data, planes, h, w, kh, kw, p, max, inc), [n, c, h, w])],
                    max ? [Distinct] : null);
            }
        }
        foreach (var (h, w, oh, ow) in new[] { (5, 4, 1, 1), (7, 5, 3, 2) })
        {
            int planes = n * c;
            cases[$"adaptive_avgpool2d ({n},{c},{h},{w})->({oh},{ow})"] = new([[n, c, h, w]], v => Fn.AdaptiveAvgPool2d(v[0], oh, ow),
                x => new RefTensor(Pool2dReference.Adaptive(x[0].Data, planes, h, w, oh, ow), [n, c, oh, ow]),
                (x, g) => [new RefTensor(Pool2dReference.AdaptiveBackward(g.Data, planes, h, w, oh, ow), [n, c, h, w])]);
        }
        return cases;
    }
}

// Gradient-check case of dropout (Edm.Autograd/Ops/DropoutFn.cs). Its backward is the same mask
// and scale applied to gy, so the reference backward is the reference dropout of gy.
using Edm.Autograd;

namespace Edm.Verification;

/// <summary>Cases of dropout.</summary>
public sealed class DropoutGradCases : IGradCases
{
    /// <inheritdoc/>
    public IReadOnlyDictionary<string, GradCase> Cases()
    {
        const float p = 0.3f;
        return new Dictionary<string, GradCase>
        {
            ["dropout p0.3 (4,9)"] = new([[4, 9]], v => Fn.Dropout(v[0], p, 11, 5),
                x => new RefTensor(DropoutReference.Apply(x[0].Data, p, 11, 5), [4, 9]),
                (x, g) => [new RefTensor(DropoutReference.Apply(g.Data, p, 11, 5), [4, 9])]),
        };
    }
}

// Gradient-check cases of the row softmax (Edm.Autograd/Ops/SoftmaxFn.cs) against
// References/SoftmaxReference.cs.
using Edm.Autograd;

namespace Edm.Verification;

/// <summary>Cases of softmax.</summary>
public sealed class SoftmaxGradCases : IGradCases
{
    /// <inheritdoc/>
    public IReadOnlyDictionary<string, GradCase> Cases()
    {
        var c = new Dictionary<string, GradCase>();
        foreach (var (rows, cols) in new[] { (3, 7), (1, 1), (2, 33) })
            c[$"softmax ({rows},{cols})"] = new([[rows, cols]], v => Fn.Softmax(v[0]),
                x => new RefTensor(SoftmaxReference.Forward(x[0].Data, rows, cols), [rows, cols]),
                (x, g) => [new RefTensor(SoftmaxReference.Backward(SoftmaxReference.Forward(x[0].Data, rows, cols), g.Data, rows, cols), [rows, cols])]);
        return c;
    }
}

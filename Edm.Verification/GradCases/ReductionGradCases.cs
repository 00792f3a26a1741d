// Gradient-check cases of the reductions (sum, mean, max, sum of squares) over all axes, one axis
// kept, several axes, the last axis and a single element.
using Edm.Autograd;
using R = Edm.Verification.AutogradReference;

namespace Edm.Verification;

/// <summary>Cases of the reductions.</summary>
public sealed class ReductionGradCases : IGradCases
{
    static GradCase ReduceCase(int[] s, int[]? axes, bool keep, R.Reduction kind) =>
        new([s], v => kind switch
            {
                R.Reduction.Sum => Fn.Sum(v[0], axes, keep),
                R.Reduction.Mean => Fn.Mean(v[0], axes, keep),
                R.Reduction.Max => Fn.Max(v[0], axes, keep),
                _ => Fn.SumSquares(v[0], axes, keep),
            },
            x => R.Reduce(x[0], axes, keep, kind), (x, g) => [R.ReduceBackward(x[0], axes, g, kind)]);

    /// <inheritdoc/>
    public IReadOnlyDictionary<string, GradCase> Cases()
    {
        var c = new Dictionary<string, GradCase>();
        foreach (var kind in Enum.GetValues<R.Reduction>())
        {
            string k = kind.ToString().ToLowerInvariant();
            c[$"{k} all"] = ReduceCase([3, 5, 7], null, false, kind);
            c[$"{k} axis1 keep"] = ReduceCase([3, 5, 7], [1], true, kind);
            c[$"{k} axes0,2"] = ReduceCase([3, 5, 7], [0, 2], false, kind);
            c[$"{k} last"] = ReduceCase([2, 9], [-1], false, kind);
            c[$"{k} single"] = ReduceCase([1], null, false, kind);
        }
        return c;
    }
}

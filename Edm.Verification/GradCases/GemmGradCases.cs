// Gradient-check cases of matmul and Linear (Edm.Autograd/Ops/MatMulFn.cs, LinearFn.cs) against
// References/GemmReference.cs and AutogradReference.cs. Odd sizes throughout.
using Edm.Autograd;
using Edm.Kernels;
using R = Edm.Verification.AutogradReference;

namespace Edm.Verification;

/// <summary>Cases of matmul and Linear.</summary>
public sealed class GemmGradCases : IGradCases
{
    /// <inheritdoc/>
    public IReadOnlyDictionary<string, GradCase> Cases()
    {
        var c = new Dictionary<string, GradCase>();
        foreach (var (m, k, n) in new[] { (5, 7, 3), (1, 4, 1), (13, 17, 9) })
            c[$"matmul ({m},{k})x({k},{n})"] = new([[m, k], [k, n]], v => Fn.MatMul(v[0], v[1]), x => R.MatMul(x[0], x[1]), (x, g) => R.MatMulBackward(x[0], x[1], g));
        // Batched, and broadcast over the batch from a rank-2 operand or a batch of 1.
        foreach (var (sa, sb) in new (int[], int[])[] { ([3, 4, 5], [3, 5, 2]), ([4, 5], [3, 5, 2]), ([3, 4, 5], [5, 2]), ([1, 4, 5], [3, 5, 2]) })
            c[$"matmul {Shapes.Format(sa)}x{Shapes.Format(sb)}"] = new([sa, sb], v => Fn.MatMul(v[0], v[1]), x => R.MatMul(x[0], x[1]), (x, g) => R.MatMulBackward(x[0], x[1], g));
        foreach (var (n, inF, outF) in new[] { (5, 7, 3), (1, 1, 1), (9, 16, 33) })
        {
            // x (N, in), W (out, in), b (out)
            c[$"linear ({n},{inF})->{outF}"] = new([[n, inF], [outF, inF], [outF]], v => Fn.Linear(v[0], v[1], v[2]),
                x => new RefTensor(GemmReference.Linear(x[0].Data, x[1].Data, x[2].Data, n, inF, outF), [n, outF]),
                (x, g) =>
                {
                    var (dx, dw, db) = GemmReference.LinearBackward(x[0].Data, x[1].Data, g.Data, n, inF, outF);
                    return [new(dx, [n, inF]), new(dw, [outF, inF]), new(db, [outF])];
                });
        }
        c["linear no bias"] = new([[4, 6], [5, 6]], v => Fn.Linear(v[0], v[1]),
            x => new RefTensor(GemmReference.Linear(x[0].Data, x[1].Data, null, 4, 6, 5), [4, 5]),
            (x, g) =>
            {
                var (dx, dw, _) = GemmReference.LinearBackward(x[0].Data, x[1].Data, g.Data, 4, 6, 5);
                return [new(dx, [4, 6]), new(dw, [5, 6])];
            });
        return c;
    }
}

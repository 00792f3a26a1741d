// Gradient-check cases of batch norm (Edm.Autograd/Ops/BatchNormFn.cs), training and inference,
// against References/BatchNormReference.cs.
using Edm.Autograd;
using Edm.Kernels;

namespace Edm.Verification;

/// <summary>Cases of batch norm.</summary>
public sealed class BatchNormGradCases : IGradCases
{
    /// <inheritdoc/>
    public IReadOnlyDictionary<string, GradCase> Cases()
    {
        var cases = new Dictionary<string, GradCase>();
        const float eps = 1e-3f;
        foreach (var (n, c, h, w) in new[] { (3, 2, 2, 3), (4, 3, 1, 1) })
        {
            int hw = h * w;
            var rm = Array.ConvertAll(Compare.Random(c, 41), v => (double)v);
            var rv = Array.ConvertAll(Compare.Random(c, 42, 0.5, 2), v => (double)v);
            foreach (bool training in new[] { true, false })
            {
                // x (N, C, H, W), weight (C), bias (C); running statistics fixed buffers (fresh per call, so
                // the training update does not change later evaluations).
                cases[$"batchnorm {(training ? "train" : "eval")} ({n},{c},{h},{w})"] = new([[n, c, h, w], [c], [c]],
                    v =>
                    {
                        using var trm = Tensor.FromArray(v[0].Value.Device, Array.ConvertAll(rm, a => (float)a), c);
                        using var trv = Tensor.FromArray(v[0].Value.Device, Array.ConvertAll(rv, a => (float)a), c);
                        return Fn.BatchNorm(v[0], v[1], v[2], trm, trv, training, 0.1f, eps);
                    },
                    x => new RefTensor(BatchNormReference.Forward(x[0].Data, x[1].Data, x[2].Data, rm, rv, n, c, hw, training, 0.1, eps).Y, [n, c, h, w]),
                    (x, g) =>
                    {
                        var (dx, dw, db) = BatchNormReference.Backward(x[0].Data, x[1].Data, g.Data, rm, rv, n, c, hw, training, eps);
                        return [new(dx, [n, c, h, w]), new(dw, [c]), new(db, [c])];
                    });
            }
        }
        return cases;
    }
}

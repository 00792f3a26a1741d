// Gradient-check cases of the remaining NN tape ops: softmax, nearest upsampling, average pooling
// and dropout, against the kernels' float64 references. Dropout's backward is the same mask and
// scale applied to gy, so its reference backward is the reference dropout of gy.
using Edm.Autograd;
using Edm.Bench.Reference;

namespace Edm.Bench.Verify;

/// <summary>Cases of softmax, pooling and dropout.</summary>
public sealed class MiscNnGradCases : IGradCases
{
    /// <inheritdoc/>
    public IReadOnlyDictionary<string, GradCase> Cases()
    {
        var c = new Dictionary<string, GradCase>();
        foreach (var (rows, cols) in new[] { (3, 7), (1, 1), (2, 33) })
            c[$"softmax ({rows},{cols})"] = new([[rows, cols]], v => Fn.Softmax(v[0]),
                x => new RefTensor(SoftmaxReference.Forward(x[0].Data, rows, cols), [rows, cols]),
                (x, g) => [new RefTensor(SoftmaxReference.Backward(SoftmaxReference.Forward(x[0].Data, rows, cols), g.Data, rows, cols), [rows, cols])]);
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
        const float p = 0.3f;
        c["dropout p0.3 (4,9)"] = new([[4, 9]], v => Fn.Dropout(v[0], p, 11, 5),
            x => new RefTensor(DropoutReference.Apply(x[0].Data, p, 11, 5), [4, 9]),
            (x, g) => [new RefTensor(DropoutReference.Apply(g.Data, p, 11, 5), [4, 9])]);
        return c;
    }
}

// `verify` rows of the augmentation family (Edm.Kernels/Augment.cs, Edm.Model/Augment.cs) against
// the float64 references in Edm.Verification/References/AugmentReference.cs: the affine resampler on random
// maps (odd sizes, shifts beyond one reflect period), flips and integer shifts (exact), and the
// EDM pipe rebuilt from its draws. On the CPU accelerator both the plain C# fast path and the
// ILGPU kernel are checked.
using Edm.Verification;
using Edm.Kernels;
using Edm.Model;

namespace Edm.Verification;

/// <summary>Affine resampling and the EDM augmentation pipe against float64 references.</summary>
public sealed class AugmentVerify : IVerifySuite
{
    /// <inheritdoc/>
    public string Family => "augment";

    /// <inheritdoc/>
    public IEnumerable<VerifyRow> Run(EdmDevice device)
    {
        bool saved = device.CpuFastPaths;
        var paths = device.IsCpu ? new[] { true, false } : [true];
        try
        {
            foreach (bool fast in paths)
            {
                device.CpuFastPaths = fast;
                string tag = device.IsCpu ? (fast ? " [cpu fast path]" : " [ilgpu kernel]") : "";
                // The ILGPU CPU accelerator runs kernels slowly: keep its sizes small.
                int[][] shapes = device.IsCpu && !fast ? [[2, 3, 5, 7], [1, 1, 1, 4]] : [[2, 3, 5, 7], [1, 1, 1, 4], [16, 3, 32, 32], [3, 1, 33, 17]];
                foreach (var s in shapes)
                {
                    yield return Affine(device, s[0], s[1], s[2], s[3], tag);
                    yield return Blit(device, s[0], s[1], s[2], s[3], tag);
                }
                yield return Pipe(device, fast || !device.IsCpu ? 16 : 2, 3, 8, 8, tag);
            }
        }
        finally
        {
            device.CpuFastPaths = saved;
        }
    }

    /// <summary>Random per-sample rotation, anisotropic scale and shift (up to 1.5 sizes) vs the float64 sampler.</summary>
    public static VerifyRow Affine(EdmDevice device, int b, int c, int h, int w, string tag = "")
    {
        var x = Compare.Random(b * c * h * w, 1);
        var rng = new Random(2);
        var m = new float[6 * b];
        for (int s = 0; s < b; s++)
        {
            double th = rng.NextDouble() * 2 * Math.PI, sx = 0.5 + rng.NextDouble(), sy = 0.5 + rng.NextDouble();
            double tx = (rng.NextDouble() * 3 - 1.5) * w, ty = (rng.NextDouble() * 3 - 1.5) * h;
            var pm = AugmentReference.CentredToPixel(Math.Cos(th) * sx, -Math.Sin(th) * sy, Math.Sin(th) * sx, Math.Cos(th) * sy, tx, ty, h, w);
            for (int k = 0; k < 6; k++) m[6 * s + k] = (float)pm[k];
        }
        using var t = Tensor.FromArray(device, x, b, c, h, w);
        using var y = Ops.AffineResample(t, m);
        var reference = AugmentReference.AffineBicubic(Array.ConvertAll(x, v => (double)v), b, c, h, w, Array.ConvertAll(m, v => (double)v));
        return Compare.Row("affine_resample" + tag, Shapes.Format([b, c, h, w]), y.ToArray(), reference, 1e-4);
    }

    /// <summary>Flips and integer shifts as matrices: must reproduce augment.py's blits exactly (tolerance 0).</summary>
    public static VerifyRow Blit(EdmDevice device, int b, int c, int h, int w, string tag = "")
    {
        var x = Compare.Random(b * c * h * w, 3);
        var rng = new Random(4);
        int[] xf = new int[b], yf = new int[b], sx = new int[b], sy = new int[b];
        var m = new float[6 * b];
        for (int s = 0; s < b; s++)
        {
            xf[s] = rng.Next(2); yf[s] = rng.Next(2);
            sx[s] = rng.Next(-2 * w, 2 * w + 1); sy[s] = rng.Next(-2 * h, 2 * h + 1);
            // Lookup: (x - tx, y + ty), then the flips (reflection commutes with them).
            m[6 * s] = xf[s] == 1 ? -1 : 1;
            m[6 * s + 2] = xf[s] == 1 ? w - 1 + sx[s] : -sx[s];
            m[6 * s + 4] = yf[s] == 1 ? -1 : 1;
            m[6 * s + 5] = yf[s] == 1 ? h - 1 - sy[s] : sy[s];
        }
        using var t = Tensor.FromArray(device, x, b, c, h, w);
        using var y = Ops.AffineResample(t, m);
        var reference = AugmentReference.Blit(Array.ConvertAll(x, v => (double)v), b, c, h, w, xf, yf, sx, sy);
        return Compare.Row("affine_blit_exact" + tag, Shapes.Format([b, c, h, w]), y.ToArray(), reference, 0);
    }

    /// <summary>The EDM pipe at p = 1 against the float64 sampler at each sample's map, rebuilt from its draws.</summary>
    public static VerifyRow Pipe(EdmDevice device, int b, int c, int h, int w, string tag = "")
    {
        var pipe = new AugmentPipe(1);
        var x = Compare.Random(b * c * h * w, 5);
        using var t = Tensor.FromArray(device, x, b, c, h, w);
        var (images, labels) = pipe.Apply(t, 31, 9);
        using (images)
        using (labels)
        {
            var draws = pipe.Draw(b, h, w, 31, 9);
            var m = new double[6 * b];
            for (int s = 0; s < b; s++)
            {
                // The kernel sees float32 matrices: compare at the same map.
                var pm = pipe.Matrix(draws[s], h, w);
                for (int k = 0; k < 6; k++) m[6 * s + k] = (float)pm[k];
            }
            var reference = AugmentReference.AffineBicubic(Array.ConvertAll(x, v => (double)v), b, c, h, w, m);
            return Compare.Row("augment_pipe_edm" + tag, $"{Shapes.Format([b, c, h, w])} labels {labels.ShapeString}", images.ToArray(), reference, 1e-4);
        }
    }
}

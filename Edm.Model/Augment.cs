// AugmentPipe: EDM's non-leaking geometric augmentation (Karras et al. 2022, Sec. 5 and Appendix
// F.2), after NVlabs/edm training/augment.py (itself after StyleGAN2-ADA's pipe) with the settings
// NVlabs/edm train.py uses for --augment: xflip=1e8, yflip=1, scale=1, rotate_frac=1, aniso=1,
// translate_frac=1 (rotate_int and translate_int are implemented but off, as there). The network
// is conditioned on the (B, LabelDim) augment labels; sampling passes all-zero labels.
//
// Per sample the parameters are drawn on the host from Philox keyed by (seed, stream) (sample b,
// draw slot k -> element index 32 b + k), composed into one output->input affine map in centred
// pixel coordinates, and applied on the device by Ops.AffineResample (Edm.Kernels/Augment.cs).
// Composition, as augment.py applies its steps: pixel blits first (x-flip, y-flip, integer
// rotation, integer translation), then the geometric chain G_inv = S^-1 R A T^-1 (isotropic
// scale, rotation, anisotropic scale, fractional translation), so an output position p (centred)
// reads the input at Fx Fy Rint Tint G_inv p. docs/model.md (Augmentation) gives the label layout and the
// differences from augment.py.
using Edm.Kernels;

namespace Edm.Model;

/// <summary>
/// One sample's random draws, as augment.py names them (zero where the transform was not applied):
/// flips 0/1, integer rotation 0..3 (quarter turns), integer translation in pixels, scale and
/// aniso log2-normal draws w, rotation angle and aniso frame angle in radians, fractional
/// translation normals.
/// </summary>
public readonly record struct AugmentDraw(
    int XFlip, int YFlip, int RotateInt, int TranslateIntX, int TranslateIntY,
    double Scale, double Rotate, double AnisoW, double AnisoR, double TranslateFracX, double TranslateFracY);

/// <summary>
/// EDM's augmentation pipe: random per-sample geometric transforms with probability p times each
/// transform's multiplier, and the augment labels that describe them (NVlabs/edm augment.py).
/// Defaults are NVlabs/edm train.py's --augment settings; only the probability p is required.
/// </summary>
public sealed class AugmentPipe
{
    /// <summary>Philox element indices reserved per sample (draw slots).</summary>
    const int Slots = 32;

    /// <summary>Creates a pipe with overall augmentation probability p (EDM CIFAR-10: 0.12).</summary>
    public AugmentPipe(double p)
    {
        if (!(p >= 0 && double.IsFinite(p))) throw new ArgumentException($"AugmentPipe: p must be a finite number >= 0, got {p}");
        P = p;
    }

    /// <summary>Overall multiplier of every transform's probability.</summary>
    public double P { get; }

    /// <summary>x-flip multiplier (train.py: 1e8, i.e. whenever p > 1e-8 a fair coin decides the flip).</summary>
    public double XFlip { get; init; } = 1e8;
    /// <summary>y-flip multiplier (train.py: 1).</summary>
    public double YFlip { get; init; } = 1;
    /// <summary>Integer (quarter-turn) rotation multiplier (train.py: off). Needs square images.</summary>
    public double RotateInt { get; init; }
    /// <summary>Integer translation multiplier (train.py: off).</summary>
    public double TranslateInt { get; init; }
    /// <summary>Integer translation range, relative to the image size (augment.py: 0.125).</summary>
    public double TranslateIntMax { get; init; } = 0.125;
    /// <summary>Isotropic scaling multiplier (train.py: 1).</summary>
    public double Scale { get; init; } = 1;
    /// <summary>Arbitrary-angle rotation multiplier (train.py: 1).</summary>
    public double RotateFrac { get; init; } = 1;
    /// <summary>Anisotropic scaling multiplier (train.py: 1).</summary>
    public double Aniso { get; init; } = 1;
    /// <summary>Fractional translation multiplier (train.py: 1).</summary>
    public double TranslateFrac { get; init; } = 1;
    /// <summary>log2 standard deviation of isotropic scaling (augment.py: 0.2).</summary>
    public double ScaleStd { get; init; } = 0.2;
    /// <summary>Rotation range, 1 = full circle (augment.py: 1).</summary>
    public double RotateFracMax { get; init; } = 1;
    /// <summary>log2 standard deviation of anisotropic scaling (augment.py: 0.2).</summary>
    public double AnisoStd { get; init; } = 0.2;
    /// <summary>Probability of anisotropic scaling in a rotated frame (augment.py: 0.5).</summary>
    public double AnisoRotateProb { get; init; } = 0.5;
    /// <summary>Fractional translation standard deviation, relative to the image size (augment.py: 0.125).</summary>
    public double TranslateFracStd { get; init; } = 0.125;

    /// <summary>
    /// Width of the augment labels: one per enabled flip, two each for integer rotation, integer
    /// translation, rotation, aniso and fractional translation, one for scale (9 with the defaults).
    /// </summary>
    public int LabelDim =>
        (XFlip > 0 ? 1 : 0) + (YFlip > 0 ? 1 : 0) + (RotateInt > 0 ? 2 : 0) + (TranslateInt > 0 ? 2 : 0)
        + (Scale > 0 ? 1 : 0) + (RotateFrac > 0 ? 2 : 0) + (Aniso > 0 ? 2 : 0) + (TranslateFrac > 0 ? 2 : 0);

    /// <summary>The labels to condition on when sampling: all zeros, (B, LabelDim).</summary>
    public Tensor SamplingLabels(EdmDevice device, int batch) => Tensor.Zeros(device, batch, LabelDim);

    /// <summary>
    /// Augments a batch <paramref name="x"/> (B, C, H, W) in [-1, 1]: returns the augmented images
    /// (B, C, H, W) and the augment labels (B, LabelDim), both new tensors on x's device. The
    /// draws depend only on (seed, stream) and the sample's index in the batch. With p = 0 the
    /// images are an exact copy and the labels all zero.
    /// </summary>
    public (Tensor Images, Tensor Labels) Apply(Tensor x, ulong seed, ulong stream)
    {
        if (x.Rank != 4) throw new ArgumentException($"AugmentPipe.Apply: x must be (B, C, H, W), got {x.ShapeString}");
        int n = x.Shape[0], h = x.Shape[2], w = x.Shape[3];
        var draws = Draw(n, h, w, seed, stream);
        var matrices = new float[6 * n];
        var labels = new float[n * LabelDim];
        bool identity = true;
        for (int b = 0; b < n; b++)
        {
            var m = Matrix(draws[b], h, w);
            for (int k = 0; k < 6; k++)
            {
                matrices[6 * b + k] = (float)m[k];
                identity &= matrices[6 * b + k] == (k == 0 || k == 4 ? 1f : 0f);
            }
            Labels(draws[b], h, w).CopyTo(labels, b * LabelDim);
        }
        // No transform drawn: copy (the resampler would reproduce x exactly too, at a cost).
        var images = identity ? Ops.Copy(x) : Ops.AffineResample(x, matrices);
        try
        {
            return (images, Tensor.FromArray(x.Device, labels, n, LabelDim));
        }
        catch
        {
            images.Dispose();
            throw;
        }
    }

    /// <summary>
    /// Draws every sample's parameters from Philox keyed by (seed, stream), in augment.py's order:
    /// a transform with multiplier m applies when a uniform draw is below m p.
    /// </summary>
    public AugmentDraw[] Draw(int batch, int h, int w, ulong seed, ulong stream)
    {
        Validate(h, w);
        var draws = new AugmentDraw[batch];
        for (int b = 0; b < batch; b++)
        {
            uint @base = checked((uint)(b * Slots));
            double U(int slot) => Philox.Uniform(seed, stream, @base + (uint)slot);
            double N(int slot) => Philox.Normal(seed, stream, @base + (uint)slot);
            bool Applies(double multiplier, int slot) => multiplier > 0 && U(slot) < multiplier * P;

            int xflip = Applies(XFlip, 1) && U(0) < 0.5 ? 1 : 0;
            int yflip = Applies(YFlip, 3) && U(2) < 0.5 ? 1 : 0;
            int rotInt = Applies(RotateInt, 5) ? Math.Min(3, (int)(U(4) * 4)) : 0;
            int tix = 0, tiy = 0;
            if (Applies(TranslateInt, 8))
            {
                // augment.py: w ~ U[-1, 1), t = round(w * size * max) (round half to even, as torch).
                tix = (int)Math.Round((U(6) * 2 - 1) * w * TranslateIntMax, MidpointRounding.ToEven);
                tiy = (int)Math.Round((U(7) * 2 - 1) * h * TranslateIntMax, MidpointRounding.ToEven);
            }
            double scale = Applies(Scale, 10) ? N(9) : 0;
            double rotate = Applies(RotateFrac, 12) ? (U(11) * 2 - 1) * Math.PI * RotateFracMax : 0;
            double anisoW = Applies(Aniso, 15) ? N(13) : 0;
            double anisoR = U(16) < AnisoRotateProb ? (U(14) * 2 - 1) * Math.PI : 0;
            double tfx = 0, tfy = 0;
            if (Applies(TranslateFrac, 19)) { tfx = N(17); tfy = N(18); }
            draws[b] = new AugmentDraw(xflip, yflip, rotInt, tix, tiy, scale, rotate, anisoW, anisoR, tfx, tfy);
        }
        return draws;
    }

    /// <summary>
    /// One sample's augment labels in augment.py's order, for the enabled transforms only:
    /// [xflip, yflip, rotint (w in {1,2}), rotint (w in {2,3}), tx / (W max), ty / (H max), scale w,
    /// cos(angle) - 1, sin(angle), aniso w cos r, aniso w sin r, translate_frac x, y].
    /// </summary>
    public float[] Labels(AugmentDraw d, int h, int w)
    {
        var l = new List<float>(LabelDim);
        if (XFlip > 0) l.Add(d.XFlip);
        if (YFlip > 0) l.Add(d.YFlip);
        if (RotateInt > 0) { l.Add(d.RotateInt is 1 or 2 ? 1 : 0); l.Add(d.RotateInt is 2 or 3 ? 1 : 0); }
        if (TranslateInt > 0) { l.Add((float)(d.TranslateIntX / (w * TranslateIntMax))); l.Add((float)(d.TranslateIntY / (h * TranslateIntMax))); }
        if (Scale > 0) l.Add((float)d.Scale);
        if (RotateFrac > 0) { l.Add((float)(Math.Cos(d.Rotate) - 1)); l.Add((float)Math.Sin(d.Rotate)); }
        if (Aniso > 0) { l.Add((float)(d.AnisoW * Math.Cos(d.AnisoR))); l.Add((float)(d.AnisoW * Math.Sin(d.AnisoR))); }
        if (TranslateFrac > 0) { l.Add((float)d.TranslateFracX); l.Add((float)d.TranslateFracY); }
        return l.ToArray();
    }

    /// <summary>
    /// The output-pixel -> input-position map [a, b, c, d, e, f] of one sample for an H x W image
    /// (pixel centres at integers), in the layout <see cref="Ops.AffineResample"/> takes.
    /// </summary>
    public double[] Matrix(AugmentDraw d, int h, int w)
    {
        // 3x3 affine maps in centred coordinates (origin at ((W-1)/2, (H-1)/2)), composed by
        // right-multiplication: the rightmost is applied to the output position first.
        var m = Affine.Identity;
        if (d.XFlip == 1) m = m * Affine.Linear(-1, 0, 0, 1);
        if (d.YFlip == 1) m = m * Affine.Linear(1, 0, 0, -1);
        if (d.RotateInt is 1 or 2) m = m * Affine.Linear(-1, 0, 0, 1);
        if (d.RotateInt is 2 or 3) m = m * Affine.Linear(1, 0, 0, -1);
        if (d.RotateInt is 1 or 3) m = m * Affine.Linear(0, 1, 1, 0); // transpose
        // augment.py's integer translation reads x - tx and y + ty.
        m = m * Affine.Translation(-d.TranslateIntX, d.TranslateIntY);
        double s = Math.Pow(2, d.Scale * ScaleStd);
        m = m * Affine.Linear(1 / s, 0, 0, 1 / s);
        m = m * Affine.Rotation(d.Rotate);
        double sa = Math.Pow(2, d.AnisoW * AnisoStd);
        m = m * Affine.Rotation(-d.AnisoR) * Affine.Linear(1 / sa, 0, 0, sa) * Affine.Rotation(d.AnisoR);
        m = m * Affine.Translation(-d.TranslateFracX * w * TranslateFracStd, -d.TranslateFracY * h * TranslateFracStd);
        double cx = (w - 1) / 2.0, cy = (h - 1) / 2.0;
        m = Affine.Translation(cx, cy) * m * Affine.Translation(-cx, -cy);
        return [m.A, m.B, m.C, m.D, m.E, m.F];
    }

    void Validate(int h, int w)
    {
        double[] all = [XFlip, YFlip, RotateInt, TranslateInt, TranslateIntMax, Scale, RotateFrac, Aniso, TranslateFrac,
            ScaleStd, RotateFracMax, AnisoStd, AnisoRotateProb, TranslateFracStd];
        foreach (double v in all)
            if (!(v >= 0 && double.IsFinite(v)))
                throw new ArgumentException($"AugmentPipe: multipliers, ranges and deviations must be finite and >= 0, got {v}");
        if (RotateInt > 0 && h != w)
            throw new ArgumentException($"AugmentPipe: integer rotation needs square images, got {h}x{w}");
    }

    /// <summary>A 2-D affine map [[A, B, C], [D, E, F], [0, 0, 1]] in float64.</summary>
    readonly record struct Affine(double A, double B, double C, double D, double E, double F)
    {
        public static Affine Identity => new(1, 0, 0, 0, 1, 0);
        public static Affine Linear(double a, double b, double d, double e) => new(a, b, 0, d, e, 0);
        public static Affine Translation(double tx, double ty) => new(1, 0, tx, 0, 1, ty);
        /// <summary>augment.py's rotate2d(theta) = [[cos, -sin], [sin, cos]].</summary>
        public static Affine Rotation(double theta) => Linear(Math.Cos(theta), -Math.Sin(theta), Math.Sin(theta), Math.Cos(theta));

        public static Affine operator *(Affine p, Affine q) => new(
            p.A * q.A + p.B * q.D, p.A * q.B + p.B * q.E, p.A * q.C + p.B * q.F + p.C,
            p.D * q.A + p.E * q.D, p.D * q.B + p.E * q.E, p.D * q.C + p.E * q.F + p.F);
    }
}

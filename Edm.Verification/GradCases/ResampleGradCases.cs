// Gradient-check cases of Fn.ResampleConv2d (EDM's Conv2d with FIR up/down resampling, networks.py
// Conv2d.forward) against a float64 composite reference: the forward is ResampleReference.Conv;
// the backward chains the adjoints of its pieces (conv backward, then the FIR adjoint), written
// here from the same pieces so each path of the op (sequential up/down with a 3x3 or no kernel,
// fused down as NCSN++'s residual encoder uses) is checked by finite differences and on the device.
using Edm.Autograd;
using Edm.Verification;
using Edm.Kernels;
using Img = Edm.Verification.ResampleReference.Img;

namespace Edm.Verification;

/// <summary>Cases of the resampling convolution.</summary>
public sealed class ResampleGradCases : IGradCases
{
    /// <inheritdoc/>
    public IReadOnlyDictionary<string, GradCase> Cases()
    {
        var c = new Dictionary<string, GradCase>();
        // (mode, kernel, fused, filter): every path the EDM networks use.
        var paths = new (string Mode, int K, bool Fused, float[] F)[]
        {
            ("down", 3, false, [1, 1]), ("up", 3, false, [1, 1]), ("down", 0, false, [1, 1]), ("up", 0, false, [1, 3, 3, 1]),
            ("down", 1, false, [1, 3, 3, 1]), ("down", 3, true, [1, 3, 3, 1]),
        };
        foreach (var (mode, k, fused, f) in paths)
        {
            var s = new Img(2, 3, 6, 6);
            int cout = k == 0 ? s.C : 4;
            var res = mode == "up" ? Resample.Up : Resample.Down;
            string name = $"resample_conv2d {mode} k{k}{(fused ? " fused" : "")} f[{string.Join(",", f)}]";
            var (_, ys) = ResampleReference.Conv(new double[s.N * s.C * s.H * s.W], s, k == 0 ? null : new double[cout * s.C * k * k], cout, k,
                k == 0 ? null : new double[cout], mode, f, fused);
            int[] yShape = [ys.N, ys.C, ys.H, ys.W];
            if (k == 0)
            {
                c[name] = new([[s.N, s.C, s.H, s.W]], v => Fn.ResampleConv2d(v[0], null, null, res, f, fused),
                    x => new RefTensor(ResampleReference.Conv(x[0].Data, s, null, cout, 0, null, mode, f, fused).Y, yShape),
                    (x, g) => [new RefTensor(FirAdjoint(g.Data, mode, s, f, (f.Length - 1) / 2), [s.N, s.C, s.H, s.W])]);
                continue;
            }
            c[name] = new([[s.N, s.C, s.H, s.W], [cout, s.C, k, k], [cout]], v => Fn.ResampleConv2d(v[0], v[1], v[2], res, f, fused),
                x => new RefTensor(ResampleReference.Conv(x[0].Data, s, x[1].Data, cout, k, x[2].Data, mode, f, fused).Y, yShape),
                (x, g) => Backward(x[0].Data, x[1].Data, g.Data, s, cout, k, mode, f, fused));
        }
        return c;
    }

    // dx of the FIR resampling alone (its adjoint).
    static double[] FirAdjoint(double[] dy, string mode, Img s, float[] f, int p) =>
        mode == "up" ? ResampleReference.UpBackward(dy, s.Planes, s.H, s.W, f, p) : ResampleReference.DownBackward(dy, s.Planes, s.H, s.W, f, p);

    static RefTensor[] Backward(double[] x, double[] w, double[] dy, Img s, int cout, int k, string mode, float[] f, bool fused)
    {
        int fPad = (f.Length - 1) / 2, wPad = k / 2;
        double[] dx, dw, db;
        if (fused) // down only: y = Down(conv(x, pad wPad + fPad), pad 0) + b
        {
            int p = wPad + fPad, ch = s.H + 2 * p - k + 1, cw = s.W + 2 * p - k + 1;
            var dc = ResampleReference.DownBackward(dy, s.N * cout, ch, cw, f, 0);
            (dx, dw, _) = Conv2dReference.Backward(x, w, dc, s.N, s.C, s.H, s.W, cout, k, p);
            db = BiasGrad(dy, s.N, cout);
        }
        else // y = conv(R(x), pad wPad) + b
        {
            var t = mode == "up" ? ResampleReference.Up(x, s.Planes, s.H, s.W, f, fPad) : ResampleReference.Down(x, s.Planes, s.H, s.W, f, fPad);
            int th = mode == "up" ? ResampleReference.UpSize(s.H, f.Length, fPad) : ResampleReference.DownSize(s.H, f.Length, fPad);
            int tw = mode == "up" ? ResampleReference.UpSize(s.W, f.Length, fPad) : ResampleReference.DownSize(s.W, f.Length, fPad);
            double[] dt;
            (dt, dw, db) = Conv2dReference.Backward(t, w, dy, s.N, s.C, th, tw, cout, k, wPad);
            dx = FirAdjoint(dt, mode, s, f, fPad);
        }
        return [new(dx, [s.N, s.C, s.H, s.W]), new(dw, [cout, s.C, k, k]), new(db, [cout])];
    }

    static double[] BiasGrad(double[] dy, int n, int c)
    {
        var db = new double[c];
        int hw = dy.Length / (n * c);
        for (int i = 0; i < dy.Length; i++) db[i / hw % c] += dy[i];
        return db;
    }
}

// The tape: a composite graph against a hand-written float64 computation, gradient
// accumulation, keepGraph and released graphs, NoGrad, Detach, bad input, training with Adam,
// and device memory over 1,000 training iterations.
using Edm.Autograd;
using Edm.Verification;
using Edm.Kernels;
using Xunit;
using Xunit.Abstractions;

namespace Edm.Tests.Autograd;

[Collection("cpu-device")]
public sealed class TapeTests(CpuDevice cpu, ITestOutputHelper output) : IClassFixture<CpuDevice>
{
    readonly EdmDevice _d = cpu.Device;

    Variable Param(int seed, double scale, params int[] shape) =>
        Variable.Parameter(Tensor.FromArray(_d, Compare.Random((int)Shapes.Count(shape), seed, -scale, scale), shape));

    Variable Const(int seed, params int[] shape) =>
        new(Tensor.FromArray(_d, Compare.Random((int)Shapes.Count(shape), seed), shape));

    /// <summary>Two-layer MLP with GELU and a mean-squared loss: mean((gelu(x W1 + b1) W2 + b2 - t)^2).</summary>
    static Variable MlpLoss(Variable x, Variable w1, Variable b1, Variable w2, Variable b2, Variable t)
    {
        var h = Fn.Gelu(Fn.Add(Fn.MatMul(x, w1), b1));   // (B, H)
        var y = Fn.Add(Fn.MatMul(h, w2), b2);            // (B, O)
        return Fn.Mean(Fn.Square(Fn.Sub(y, t)));         // (1)
    }

    [Fact]
    public void Mlp_values_and_gradients_match_hand_written_float64()
    {
        const int B = 6, D = 5, H = 7, O = 3;
        foreach (bool fast in new[] { true, false })
        {
            _d.CpuFastPaths = fast;
            try
            {
                using var scope = new TensorScope();
                var x = Const(1, B, D);
                var t = Const(2, B, O);
                var w1 = Param(3, 0.6, D, H);
                var b1 = Param(4, 0.3, H);
                var w2 = Param(5, 0.6, H, O);
                var b2 = Param(6, 0.3, O);
                var loss = MlpLoss(x, w1, b1, w2, b2, t);
                loss.Backward();

                // Hand-written float64 forward and backward.
                double[] X = D64(x), T = D64(t), W1 = D64(w1), B1 = D64(b1), W2 = D64(w2), B2 = D64(b2);
                var pre = new double[B * H];
                var hid = new double[B * H];
                var y = new double[B * O];
                for (int b = 0; b < B; b++)
                    for (int j = 0; j < H; j++)
                    {
                        double s = B1[j];
                        for (int i = 0; i < D; i++) s += X[b * D + i] * W1[i * H + j];
                        pre[b * H + j] = s;
                        hid[b * H + j] = Edm.Verification.AutogradReference.Gelu(s);
                    }
                double lossRef = 0;
                for (int b = 0; b < B; b++)
                    for (int o = 0; o < O; o++)
                    {
                        double s = B2[o];
                        for (int j = 0; j < H; j++) s += hid[b * H + j] * W2[j * O + o];
                        y[b * O + o] = s;
                        lossRef += (s - T[b * O + o]) * (s - T[b * O + o]) / (B * O);
                    }
                var gW1 = new double[D * H]; var gB1 = new double[H]; var gW2 = new double[H * O]; var gB2 = new double[O];
                for (int b = 0; b < B; b++)
                {
                    var gh = new double[H];
                    for (int o = 0; o < O; o++)
                    {
                        double gy = 2 * (y[b * O + o] - T[b * O + o]) / (B * O);
                        gB2[o] += gy;
                        for (int j = 0; j < H; j++) { gW2[j * O + o] += hid[b * H + j] * gy; gh[j] += W2[j * O + o] * gy; }
                    }
                    for (int j = 0; j < H; j++)
                    {
                        double gp = gh[j] * Edm.Verification.AutogradReference.GeluGrad(pre[b * H + j]);
                        gB1[j] += gp;
                        for (int i = 0; i < D; i++) gW1[i * H + j] += X[b * D + i] * gp;
                    }
                }

                Assert.Equal(lossRef, loss.Value.Item(), 5);
                AssertClose(gW1, w1.Grad, "W1");
                AssertClose(gB1, b1.Grad, "b1");
                AssertClose(gW2, w2.Grad, "W2");
                AssertClose(gB2, b2.Grad, "b2");
            }
            finally { _d.CpuFastPaths = true; }
        }
    }

    static double[] D64(Variable v) => v.Value.ToArray().Select(f => (double)f).ToArray();

    static void AssertClose(double[] reference, Tensor got, string what)
    {
        var g = got.ToArray();
        double scale = reference.Max(Math.Abs);
        Assert.True(scale > 1e-4, $"{what}: reference gradient is ~0; the test would not discriminate");
        for (int i = 0; i < g.Length; i++)
            Assert.True(Math.Abs(g[i] - reference[i]) <= 1e-4 * (scale + Math.Abs(reference[i])), $"{what}[{i}]: {g[i]} vs {reference[i]}");
    }

    [Fact]
    public void Gradients_accumulate_over_two_backwards_and_reset_on_zeroing()
    {
        using var scope = new TensorScope();
        var w = Param(1, 1, 4, 3);
        var x = Const(2, 2, 4);
        Variable Loss() => Fn.Sum(Fn.Square(Fn.MatMul(x, w)));
        Loss().Backward();
        var once = w.Grad.ToArray();
        Assert.Contains(once, g => Math.Abs(g) > 1e-3);
        Loss().Backward();
        var twice = w.Grad.ToArray();
        for (int i = 0; i < once.Length; i++) Assert.Equal(2 * once[i], twice[i], 5);
        w.ZeroGrad();
        Assert.All(w.Grad.ToArray(), g => Assert.Equal(0f, g));
        Loss().Backward();
        Assert.Equal(once, w.Grad.ToArray());
    }

    [Fact]
    public void KeepGraph_allows_a_second_backward_and_a_released_graph_refuses_one()
    {
        using var scope = new TensorScope();
        var w = Param(1, 1, 5);
        var loss = Fn.Sum(Fn.Exp(w));
        loss.Backward(keepGraph: true);
        var once = w.Grad.ToArray();
        loss.Backward();  // releases
        var twice = w.Grad.ToArray();
        for (int i = 0; i < once.Length; i++) Assert.Equal(2 * once[i], twice[i], 5);
        var ex = Assert.Throws<InvalidOperationException>(() => loss.Backward());
        Assert.Contains("released by an earlier Backward", ex.Message);
        Assert.Contains("keepGraph", ex.Message);
    }

    sealed class OwnsTensorNode(Tensor owned) : Node
    {
        public Tensor Owned => owned;
        protected override Tensor?[] Backward(Tensor gy) => [Ops.Mul(gy, owned)];
        protected override void DisposeOwned() => owned.Dispose();
    }

    [Fact]
    public void Saved_tensors_are_released_after_backward_unless_kept()
    {
        using var scope = new TensorScope();
        foreach (bool keep in new[] { true, false })
        {
            var x = Param(1, 1, 3);
            var node = new OwnsTensorNode(Tensor.FromArray(_d, [2f, 3f, 4f], 3));
            var y = Tape.Record(node, Ops.Copy(x.Value), x);
            Fn.Sum(y).Backward(keepGraph: keep);
            Assert.Equal([2f, 3f, 4f], x.Grad.ToArray());
            Assert.Equal(!keep, node.Owned.IsDisposed);
            Assert.Equal(!keep, node.IsReleased);
        }
    }

    [Fact]
    public void NoGrad_records_nothing_and_Detach_cuts_the_graph()
    {
        using var scope = new TensorScope();
        var w = Param(1, 1, 4);
        long before = Tape.RecordedNodes;
        Variable z;
        using (Tape.NoGrad())
        {
            z = Fn.Sum(Fn.Mul(Fn.Exp(w), w));
            Assert.False(Tape.IsRecording);
        }
        Assert.True(Tape.IsRecording);
        Assert.Equal(before, Tape.RecordedNodes);
        Assert.False(z.RequiresGrad);
        Assert.Null(z.Creator);
        var ex = Assert.Throws<InvalidOperationException>(() => z.Backward());
        Assert.Contains("does not require a gradient", ex.Message);

        // y = w^2 detached: d(sum(y * w))/dw = y, not 3 w^2.
        var y = Fn.Square(w).Detach();
        Assert.False(y.RequiresGrad);
        Fn.Sum(Fn.Mul(y, w)).Backward();
        Assert.Equal(y.Value.ToArray(), w.Grad.ToArray());
        Assert.True(Tape.RecordedNodes > before);
    }

    [Fact]
    public void Bad_input_gives_clear_exceptions()
    {
        using var scope = new TensorScope();
        var w = Param(1, 1, 2, 3);
        var y = Fn.Mul(w, w);
        var ex = Assert.Throws<InvalidOperationException>(() => y.Backward());
        Assert.Contains("is not a scalar; pass a seed gradient of shape (2, 3)", ex.Message);
        var badSeed = Tensor.Zeros(_d, 3, 2);
        Assert.Contains("seed gradient has shape (3, 2), expected (2, 3)", Assert.Throws<ArgumentException>(() => y.Backward(badSeed)).Message);

        var c = Const(2, 2, 3);
        ex = Assert.Throws<InvalidOperationException>(() => c.Grad);
        Assert.Contains("does not require a gradient", ex.Message);
        ex = Assert.Throws<InvalidOperationException>(() => y.Grad);
        Assert.Contains("only leaves keep gradients", ex.Message);

        using var other = EdmDevice.Create("cpu");
        using var v = Variable.Parameter(Tensor.Zeros(other, 2, 3));
        var aex = Assert.Throws<ArgumentException>(() => Fn.Add(w, v));
        Assert.Contains("Add: inputs live on two different devices", aex.Message);
    }

    /// <summary>
    /// Regression target y = sin(2 x0) + x0 x1 on 64 fixed points in [-1, 1]^2, fitted by a
    /// 2-32-1 GELU MLP with Adam. Threshold: 5% of the mean-squared error of the best affine fit
    /// (least squares, computed here). Only a model that has learned the nonlinear part gets
    /// there: it starts above the affine fit's error and an affine model cannot go below it.
    /// </summary>
    [Fact]
    public void Mlp_trained_with_Adam_beats_the_best_affine_fit()
    {
        const int N = 64, Hd = 32;
        var xs = Compare.Random(2 * N, 42);
        var ys = new float[N];
        for (int i = 0; i < N; i++) ys[i] = MathF.Sin(2 * xs[2 * i]) + xs[2 * i] * xs[2 * i + 1];
        double affineMse = AffineFitMse(xs, ys);
        double threshold = 0.05 * affineMse;

        using var w1 = Param(1, 1.0, 2, Hd);
        using var b1 = Param(2, 0.5, Hd);
        using var w2 = Param(3, 1.0 / Math.Sqrt(Hd), Hd, 1);
        using var b2 = Param(4, 0.1, 1);
        using var x = new Variable(Tensor.FromArray(_d, xs, N, 2));
        using var t = new Variable(Tensor.FromArray(_d, ys, N, 1));
        Variable[] ps = [w1, b1, w2, b2];
        using var adam = new Adam(ps);
        double first = 0, last = 0;
        for (int step = 0; step < 600; step++)
        {
            using var scope = new TensorScope();
            adam.ZeroGrad();
            var h = Fn.Gelu(Fn.Add(Fn.MatMul(x, w1), b1));
            var loss = Fn.Mean(Fn.Square(Fn.Sub(Fn.Add(Fn.MatMul(h, w2), b2), t)));
            loss.Backward();
            adam.Step(step < 50 ? 1e-2f * (step + 1) / 50 : 1e-2f);  // EDM-style linear ramp-up
            last = loss.Value.Item();
            if (step == 0) first = last;
        }
        output.WriteLine($"affine-fit MSE {affineMse:G4}, threshold {threshold:G4}, MLP loss {first:G4} -> {last:G4}");
        Assert.True(first > affineMse, "the initial model is already better than the affine fit; the test would not discriminate");
        Assert.True(last < threshold, $"MLP loss {last:G4} did not fall below {threshold:G4} (5% of the affine fit's {affineMse:G4})");
    }

    /// <summary>MSE of the least-squares fit y ~ c0 + c1 x0 + c2 x1 (normal equations, float64).</summary>
    static double AffineFitMse(float[] xs, float[] ys)
    {
        int n = ys.Length;
        var a = new double[3, 4];
        for (int i = 0; i < n; i++)
        {
            double[] f = [1, xs[2 * i], xs[2 * i + 1]];
            for (int r = 0; r < 3; r++)
            {
                for (int c = 0; c < 3; c++) a[r, c] += f[r] * f[c];
                a[r, 3] += f[r] * ys[i];
            }
        }
        for (int p = 0; p < 3; p++)  // Gauss-Jordan (the Gram matrix is positive definite)
            for (int r = 0; r < 3; r++)
            {
                if (r == p) continue;
                double m = a[r, p] / a[p, p];
                for (int c = 0; c < 4; c++) a[r, c] -= m * a[p, c];
            }
        double mse = 0;
        for (int i = 0; i < n; i++)
        {
            double pred = a[0, 3] / a[0, 0] + a[1, 3] / a[1, 1] * xs[2 * i] + a[2, 3] / a[2, 2] * xs[2 * i + 1];
            mse += (pred - ys[i]) * (pred - ys[i]) / n;
        }
        return mse;
    }

    [Fact]
    public void Device_memory_returns_to_its_start_after_1000_training_iterations()
    {
        long start = _d.BytesInUse;
        long afterFirst = 0, peakStep = 0;
        {
            using var w1 = Param(1, 0.5, 8, 16);
            using var b1 = Param(2, 0.5, 16);
            using var w2 = Param(3, 0.5, 16, 4);
            using var x = Const(4, 10, 8);
            using var t = Const(5, 10, 4);
            using var adam = new Adam([w1, b1, w2]);
            using var ema = new Variable(Ops.Copy(w1.Value));
            long setUp = _d.BytesInUse;
            for (int i = 0; i < 1000; i++)
            {
                using (var scope = new TensorScope())
                {
                    adam.ZeroGrad();
                    var h = Fn.Silu(Fn.Add(Fn.MatMul(x, w1), b1));
                    var y = Fn.Concat(1, Fn.Slice(Fn.MatMul(h, w2), 1, 0, 2), Fn.Slice(Fn.MatMul(h, w2), 1, 2, 2));
                    var loss = Fn.Mean(Fn.Square(Fn.Sub(y, t)));
                    loss.Backward();
                    Edm.Autograd.Training.NanToNumGrads(adam.Parameters);
                    adam.Step(1e-3f);
                    using (Tape.NoGrad()) Edm.Autograd.Training.EmaUpdate([ema], [w1], 0.99f);
                    peakStep = Math.Max(peakStep, _d.BytesInUse - setUp);
                }
                if (i == 0) afterFirst = _d.BytesInUse;
                Assert.Equal(setUp, _d.BytesInUse);
            }
            Assert.Equal(afterFirst, _d.BytesInUse);
        }
        output.WriteLine($"BytesInUse: {start} at start, {_d.BytesInUse} after 1000 iterations; transient per-step bytes still held at the end of the step body {peakStep}");
        Assert.Equal(start, _d.BytesInUse);
    }
}

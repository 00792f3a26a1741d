// Gradient checker (issue 3), reusable by every differentiable op (the NN kernels included).
//
// For a function f of several inputs and a random output weighting gy, the scalar
// L(x) = sum_j gy_j f(x)_j has dL/dx = the vector-Jacobian product the tape computes. Two checks:
//   1. Reference path, float64 on the host: the analytic gradient of the op's float64 reference
//      backward against central finite differences of its float64 reference forward,
//      (L(x + h e_k) - L(x - h e_k)) / 2h, with a tolerance suited to float64 (1e-6 relative).
//   2. Device path, float32: the op's forward and the tape's gradients on the device against the
//      float64 reference values and gradients (1e-4 relative to each tensor's scale by default).
// Inputs are float32 numbers, so both paths see identical data.
using System.Text;
using Edm.Kernels;

namespace Edm.Autograd;

/// <summary>A float64 host tensor (contiguous, row-major) for reference paths.</summary>
public sealed record RefTensor(double[] Data, int[] Shape)
{
    /// <summary>Zeros of a shape.</summary>
    public static RefTensor Zeros(params int[] shape) => new(new double[Shapes.Count(shape)], (int[])shape.Clone());
    /// <summary>Number of elements.</summary>
    public int Length => Data.Length;
}

/// <summary>Tolerances and sizes of a gradient check.</summary>
public sealed record GradCheckOptions
{
    /// <summary>Finite-difference step relative to max(1, |x|).</summary>
    public double FdStep { get; init; } = 1e-6;
    /// <summary>Relative tolerance of analytic float64 gradients against finite differences.</summary>
    public double FdTol { get; init; } = 1e-6;
    /// <summary>At most this many elements per input are perturbed (chosen at random) for finite differences.</summary>
    public int MaxFdElements { get; init; } = 48;
    /// <summary>Relative tolerance of float32 device values against the reference (relative to each tensor's scale).</summary>
    public double ValueTol { get; init; } = 1e-5;
    /// <summary>Relative tolerance of float32 device gradients against the float64 reference gradients.</summary>
    public double GradTol { get; init; } = 1e-4;
}

/// <summary>Outcome of <see cref="GradCheck.Run"/>: worst errors (scaled) and the first mismatches.</summary>
public sealed record GradCheckReport(string Name, double FdError, double ValueError, double GradError, bool Passed, string Details)
{
    /// <inheritdoc/>
    public override string ToString() =>
        $"{Name}: {(Passed ? "ok" : "FAILED")} (fd {FdError:E2}, value {ValueError:E2}, grad {GradError:E2}){(Details.Length > 0 ? "\n" + Details : "")}";
}

/// <summary>Compares an op's tape gradients with a float64 reference and finite differences.</summary>
public static class GradCheck
{
    /// <summary>
    /// Checks <paramref name="deviceFn"/> (built from differentiable ops) on inputs of
    /// <paramref name="shapes"/> against <paramref name="refForward"/> and
    /// <paramref name="refBackward"/> (inputs, gy) -> one gradient per input.
    /// </summary>
    /// <param name="device">Device for the float32 path.</param>
    /// <param name="name">Label used in the report.</param>
    /// <param name="shapes">Input shapes.</param>
    /// <param name="deviceFn">The function on device variables.</param>
    /// <param name="refForward">Float64 reference forward.</param>
    /// <param name="refBackward">Float64 reference backward (vector-Jacobian product).</param>
    /// <param name="seed">Seed of the random inputs and of gy.</param>
    /// <param name="inputs">Explicit inputs (else uniform in [-1, 1)); each the length of its shape.</param>
    /// <param name="requiresGrad">Which inputs require gradients (default all).</param>
    /// <param name="options">Tolerances.</param>
    public static GradCheckReport Run(EdmDevice device, string name, int[][] shapes,
        Func<Variable[], Variable> deviceFn,
        Func<RefTensor[], RefTensor> refForward,
        Func<RefTensor[], RefTensor, RefTensor[]> refBackward,
        int seed = 0, float[][]? inputs = null, bool[]? requiresGrad = null, GradCheckOptions? options = null)
    {
        options ??= new GradCheckOptions();
        var rng = new Random(seed);
        inputs ??= shapes.Select(s => Enumerable.Range(0, (int)Shapes.Count(s)).Select(_ => (float)(2 * rng.NextDouble() - 1)).ToArray()).ToArray();
        requiresGrad ??= shapes.Select(_ => true).ToArray();
        if (inputs.Length != shapes.Length || requiresGrad.Length != shapes.Length)
            throw new ArgumentException($"GradCheck {name}: {shapes.Length} shapes but {inputs.Length} inputs and {requiresGrad.Length} requiresGrad flags");
        var details = new StringBuilder();

        // ---- 1. float64 reference: analytic gradient vs central finite differences ----
        var x = shapes.Select((s, i) => new RefTensor(inputs[i].Select(f => (double)f).ToArray(), s)).ToArray();
        var y = refForward(x);
        var gy = new RefTensor(y.Data.Select(_ => (double)(float)(2 * rng.NextDouble() - 1)).ToArray(), y.Shape);
        var gRef = refBackward(x, gy);
        double lScale = 1;
        for (int j = 0; j < y.Length; j++) lScale += Math.Abs(gy.Data[j] * y.Data[j]);
        double fdErr = 0;
        for (int i = 0; i < x.Length; i++)
        {
            if (!requiresGrad[i]) continue;
            if (!Shapes.Equal(gRef[i].Shape, x[i].Shape))
                throw new ArgumentException($"GradCheck {name}: reference gradient {i} has shape {Shapes.Format(gRef[i].Shape)}, input {Shapes.Format(x[i].Shape)}");
            double gScale = MaxAbs(gRef[i].Data);
            foreach (int k in Sample(x[i].Length, options.MaxFdElements, rng))
            {
                double xk = x[i].Data[k];
                double h = options.FdStep * Math.Max(1, Math.Abs(xk));
                x[i].Data[k] = xk + h;
                double lp = Dot(gy.Data, refForward(x).Data);
                x[i].Data[k] = xk - h;
                double lm = Dot(gy.Data, refForward(x).Data);
                x[i].Data[k] = xk;
                double fd = (lp - lm) / (2 * h);
                double an = gRef[i].Data[k];
                // Truncation error O(h^2) is judged relative to the gradient's scale; the rounding
                // error of L's two evaluations, about eps64 * sum|gy f| / h, is forgiven.
                double rounding = 4e-16 * lScale / h;
                double err = Math.Max(0, Math.Abs(fd - an) - rounding) / (Math.Abs(an) + gScale + 1e-12);
                fdErr = Math.Max(fdErr, err);
                if (err > options.FdTol && details.Length < 2000)
                    details.AppendLine($"  reference grad input {i}[{k}]: analytic {an:G10} vs finite difference {fd:G10}");
            }
        }

        // ---- 2. float32 device path vs the float64 reference ----
        double valErr = 0, gradErr = 0;
        using (var scope = new TensorScope())
        {
            var vars = new Variable[shapes.Length];
            for (int i = 0; i < vars.Length; i++)
                vars[i] = new Variable(Tensor.FromArray(device, inputs[i], shapes[i]), requiresGrad[i], $"x{i}");
            var yDev = deviceFn(vars);
            if (!Shapes.Equal(yDev.Shape, y.Shape))
                throw new ArgumentException($"GradCheck {name}: device output has shape {Shapes.Format(yDev.Shape)}, reference {Shapes.Format(y.Shape)}");
            valErr = ScaledError(yDev.Value.ToArray(), y.Data, options.ValueTol, "value", details);
            using var seedT = Tensor.FromArray(device, gy.Data.Select(d => (float)d).ToArray(), y.Shape);
            yDev.Backward(seedT);
            for (int i = 0; i < vars.Length; i++)
            {
                if (!requiresGrad[i]) continue;
                gradErr = Math.Max(gradErr, ScaledError(vars[i].Grad.ToArray(), gRef[i].Data, options.GradTol, $"grad input {i}", details));
            }
        }
        bool ok = fdErr <= options.FdTol && valErr <= options.ValueTol && gradErr <= options.GradTol;
        return new GradCheckReport(name, fdErr, valErr, gradErr, ok, details.ToString().TrimEnd());
    }

    /// <summary>max_k |got_k - ref_k| / (|ref_k| + max|ref|), noting the first mismatches.</summary>
    static double ScaledError(float[] got, double[] reference, double tol, string what, StringBuilder details)
    {
        double scale = MaxAbs(reference) + 1e-30, worst = 0;
        int shown = 0;
        for (int k = 0; k < got.Length; k++)
        {
            double e = Math.Abs(got[k] - reference[k]) / (Math.Abs(reference[k]) + scale);
            if (double.IsNaN(got[k])) e = double.PositiveInfinity;
            worst = Math.Max(worst, e);
            if (e > tol && shown++ < 5) details.AppendLine($"  device {what}[{k}]: {got[k]:G9} vs reference {reference[k]:G10}");
        }
        return worst;
    }

    static double MaxAbs(double[] a)
    {
        double m = 0;
        foreach (double d in a) m = Math.Max(m, Math.Abs(d));
        return m;
    }

    static double Dot(double[] a, double[] b)
    {
        double s = 0;
        for (int i = 0; i < a.Length; i++) s += a[i] * b[i];
        return s;
    }

    static IEnumerable<int> Sample(int n, int max, Random rng) =>
        n <= max ? Enumerable.Range(0, n) : Enumerable.Range(0, max).Select(_ => rng.Next(n)).Distinct();
}

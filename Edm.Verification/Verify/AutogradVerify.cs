// `verify` rows of the differentiable ops (Edm.Autograd/Ops/): each case runs GradCheck, i.e.
// float64 reference gradients against central finite differences, and the float32 tape gradients
// on the device against the float64 reference gradients. Cases come from every IGradCases
// implementation in this assembly (one file per op, e.g. Conv2dGradCases.cs; add
// Edm.Verification/GradCases/<Op>GradCases.cs for new ops); Edm.Tests/Autograd/GradCheckTests.cs runs
// the same cases on both CPU paths.
// Row columns: max abs = worst scaled device-gradient error, max rel = worst scaled
// finite-difference error of the reference, tol = the device-gradient tolerance.
using Edm.Autograd;
using Edm.Kernels;

namespace Edm.Verification;

/// <summary>Gradient checks of every differentiable op.</summary>
public sealed class AutogradVerify : IVerifySuite
{
    /// <inheritdoc/>
    public string Family => "autograd";

    /// <summary>Every gradient-check case of every IGradCases in this assembly, by name.</summary>
    public static IReadOnlyDictionary<string, GradCase> Cases { get; } = typeof(AutogradVerify).Assembly.GetTypes()
        .Where(t => typeof(IGradCases).IsAssignableFrom(t) && t is { IsAbstract: false, IsInterface: false })
        .OrderBy(t => t.Name)
        .SelectMany(t => ((IGradCases)Activator.CreateInstance(t)!).Cases())
        .ToDictionary(kv => kv.Key, kv => kv.Value);

    /// <inheritdoc/>
    public IEnumerable<VerifyRow> Run(EdmDevice device)
    {
        foreach (var (name, c) in Cases)
        {
            var r = Check(device, name, c);
            yield return new VerifyRow(name, string.Join("x", c.Shapes.Select(s => Shapes.Format(s))), r.GradError, r.FdError,
                new GradCheckOptions().GradTol, r.Passed, r.Passed ? null : r.Details.Split('\n')[0].Trim());
        }
    }

    /// <summary>Runs one case's gradient check on the device's current path.</summary>
    public static GradCheckReport Check(EdmDevice device, string name, GradCase c)
    {
        float[][]? inputs = c.Inputs?.Select((g, i) => g((int)Shapes.Count(c.Shapes[i]))).ToArray();
        return GradCheck.Run(device, name, c.Shapes, c.Fn, c.Ref, c.RefBack, seed: name.Length, inputs: inputs, requiresGrad: c.RequiresGrad);
    }
}

/// <summary>A gradient-check case: shapes, device function, reference forward/backward, optional inputs.</summary>
public sealed record GradCase(int[][] Shapes, Func<Variable[], Variable> Fn, Func<RefTensor[], RefTensor> Ref,
    Func<RefTensor[], RefTensor, RefTensor[]> RefBack, Func<int, float[]>[]? Inputs = null, bool[]? RequiresGrad = null);

/// <summary>A family's gradient-check cases (public parameterless constructor; discovered by reflection).</summary>
public interface IGradCases
{
    /// <summary>Cases by unique name.</summary>
    IReadOnlyDictionary<string, GradCase> Cases();
}

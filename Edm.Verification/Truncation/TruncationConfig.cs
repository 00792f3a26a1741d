// The truncation-error experiment (docs/formulas.md section 8; issue 5): which datasets,
// solvers, discretizations and step counts, and the seeds of the batch. The same config drives the
// device run and the float64 host reference, and its signature decides whether committed
// reference curves apply to a run.
using System.Globalization;
using Edm.Sampling;

namespace Edm.Verification;

/// <summary>Settings of one truncation-error experiment.</summary>
public sealed record TruncationConfig
{
    /// <summary>Folder of the committed reference curves, relative to the repository root.</summary>
    public const string ReferenceFolder = "docs/reference-curves";

    /// <summary>Datasets to run ("gaussian", "mixture", "points").</summary>
    public string[] Datasets { get; init; } = ["gaussian", "mixture", "points"];
    /// <summary>Data dimension D.</summary>
    public int Dim { get; init; } = 16;                 // small: the default run must take < 2 min on 2 CPU cores
    /// <summary>Points (points dataset) or components (mixture).</summary>
    public int Count { get; init; } = 64;
    /// <summary>Samples per curve point (the RMS runs over them).</summary>
    public int Batch { get; init; } = 16;
    /// <summary>Base seed: sample b uses seed (Seed &lt;&lt; 32) + b; the datasets use Seed.</summary>
    public ulong Seed { get; init; } = 1;
    /// <summary>Solvers of the global-error table.</summary>
    public Solver[] Solvers { get; init; } = Enum.GetValues<Solver>();
    /// <summary>Discretizations of the global-error table.</summary>
    public Discretization[] Discretizations { get; init; } = Enum.GetValues<Discretization>();
    /// <summary>Step counts N (geometric).</summary>
    public int[] Steps { get; init; } = [4, 8, 16, 32, 64, 128];
    /// <summary>rho of the edm discretization in the global table.</summary>
    public double Rho { get; init; } = 7;
    /// <summary>Noise range, the same for every discretization so that every curve approximates the same solution.</summary>
    public double SigmaMin { get; init; } = 0.002;
    /// <summary>Noise range upper end.</summary>
    public double SigmaMax { get; init; } = 80;
    /// <summary>rho values of the local-error analysis (Appendix D.1).</summary>
    public double[] LocalRhos { get; init; } = [1, 2, 3, 5, 7, 10];
    /// <summary>Steps N of the edm discretization in the local-error analysis.</summary>
    public int LocalSteps { get; init; } = 32;
    /// <summary>Solvers of the local-error analysis.</summary>
    public Solver[] LocalSolvers { get; init; } = [Solver.Euler, Solver.Heun];
    /// <summary>The comparison floor in units of the float32 resolution of the data (2^-23 times its RMS).</summary>
    public double FloorFactor { get; init; } = 100;

    /// <summary>Seeds of the batch.</summary>
    public ulong[] SampleSeeds() => Enumerable.Range(0, Batch).Select(b => (Seed << 32) + (ulong)b).ToArray();

    /// <summary>The dataset of a name.</summary>
    public AnalyticDataset Dataset(string name) => AnalyticDataset.Create(AnalyticDataset.Parse(name), Dim, Count, Seed);

    /// <summary>
    /// The sampler settings of one global-error point (stochastic samplers at their deterministic
    /// limit). Each solver gets only the settings it takes (<see cref="SamplerSettings.Validate"/> refuses the others).
    /// </summary>
    public SamplerSettings Global(Solver solver, Discretization d, int steps) => new()
    {
        Solver = solver,
        Discretization = d,
        Steps = steps,
        Rho = Rho,
        SigmaMin = SigmaMin,
        SigmaMax = SigmaMax,
        Eta = solver == Solver.EulerAncestral ? 0 : 1,   // euler_ancestral at eta = 0: its deterministic limit
    };

    /// <summary>The settings of the local-error grid for one rho (edm discretization).</summary>
    public SamplerSettings Local(Solver solver, double rho) => new()
    {
        Solver = solver,
        Discretization = Discretization.Edm,
        Steps = LocalSteps,
        Rho = rho,
        SigmaMin = SigmaMin,
        SigmaMax = SigmaMax,
    };

    /// <summary>What the reference curves depend on, besides the lists of curves.</summary>
    public string Signature() => string.Create(CultureInfo.InvariantCulture,
        $"dim={Dim};count={Count};batch={Batch};seed={Seed};sigma_min={SigmaMin:R};sigma_max={SigmaMax:R};local_steps={LocalSteps}");

    /// <summary>Checks the settings; messages name the allowed range.</summary>
    public void Validate()
    {
        foreach (var d in Datasets) AnalyticDataset.Parse(d);
        if (Datasets.Length == 0) throw new ArgumentException("no dataset given; allowed: gaussian, mixture, points");
        if (Dim < 1) throw new ArgumentException($"--dim {Dim} is invalid; allowed: dim >= 1");
        if (Count < 1) throw new ArgumentException($"--count {Count} is invalid; allowed: count >= 1");
        if (Batch < 1) throw new ArgumentException($"--batch {Batch} is invalid; allowed: batch >= 1");
        if ((long)Dim * Batch > int.MaxValue / 16 || (long)Dim * Count > int.MaxValue / 4 || (long)Batch * Count > int.MaxValue / 4)
            throw new ArgumentException($"dim {Dim} x batch {Batch} x count {Count} does not fit in memory (32-bit tensor indexing); allowed: dim * batch <= {int.MaxValue / 16}, dim * count and batch * count <= {int.MaxValue / 4}");
        if (Steps.Length == 0 || Steps.Any(n => n < 1)) throw new ArgumentException($"--steps {string.Join(",", Steps)} is invalid; allowed: a list of N >= 1");
        TimeSteps.Validate(1, SigmaMin, SigmaMax, Rho);
        foreach (double r in LocalRhos) TimeSteps.Validate(1, SigmaMin, SigmaMax, r);
        if (LocalSteps < 1) throw new ArgumentException($"--local-steps {LocalSteps} is invalid; allowed: N >= 1");
        if (LocalSolvers.Any(s => !s.IsRungeKutta()))
            throw new ArgumentException("local-error solvers must be one of: euler, heun, midpoint, ralston");
        if (!(FloorFactor >= 1)) throw new ArgumentException($"--floor-factor {FloorFactor} is invalid; allowed: >= 1");
    }

    /// <summary>Host memory the reference data take, in bytes (rough: trajectories and points in double).</summary>
    public long EstimatedHostBytes() => 8L * ((long)Batch * Dim * (LocalSteps + 8) + (long)Count * Dim);
}

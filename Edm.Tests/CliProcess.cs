using System.Diagnostics;

namespace Edm.Tests;

// Runs the CLI (Edm.Bench) as its own process, as a user does: the tests reference no executable.
// `dotnet test` on EdmKernels.sln builds Edm.Bench with the tests; the dll is found next to this
// assembly's build folder (same configuration and target framework).
internal static class CliProcess
{
    static readonly Lazy<string> Dll = new(Locate);

    static string Locate()
    {
        var here = new DirectoryInfo(AppContext.BaseDirectory.TrimEnd(Path.DirectorySeparatorChar));
        string tfm = here.Name, config = here.Parent?.Name ?? "Release";
        for (var d = here; d is not null; d = d.Parent)
        {
            string candidate = Path.Combine(d.FullName, "Edm.Bench", "bin", config, tfm, "Edm.Bench.dll");
            if (File.Exists(candidate)) return candidate;
        }
        throw new InvalidOperationException($"Edm.Bench.dll ({config}, {tfm}) not found above {here.FullName}: " +
            $"run `dotnet test -c {config}` on EdmKernels.sln (it builds the CLI), or `dotnet build Edm.Bench -c {config}` first");
    }

    /// <summary>Runs `Edm.Bench args` and returns its exit code, standard output and standard error.</summary>
    public static (int Code, string Out, string Err) Run(params string[] args)
    {
        var psi = new ProcessStartInfo("dotnet") { RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
        psi.ArgumentList.Add(Dll.Value);
        foreach (var a in args) psi.ArgumentList.Add(a);
        using var p = Process.Start(psi)!;
        var stdout = p.StandardOutput.ReadToEndAsync();
        var stderr = p.StandardError.ReadToEndAsync();
        if (!p.WaitForExit(TimeSpan.FromMinutes(10)))
        {
            p.Kill(entireProcessTree: true);
            throw new TimeoutException($"Edm.Bench {string.Join(' ', args)} ran for more than 10 minutes");
        }
        return (p.ExitCode, stdout.Result, stderr.Result);
    }

    /// <summary>The exit code of `Edm.Bench args`.</summary>
    public static int Code(params string[] args) => Run(args).Code;
}

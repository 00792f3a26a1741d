using System.Diagnostics;

namespace Edm.Tests;

// Runs the CLI (Edm.Bench) as its own process, as a user does: the tests reference no executable.
// The first use builds Edm.Bench (same configuration as the tests; incremental, so a few seconds
// when it is up to date), so the tests never run a stale CLI whichever way they were started.
internal static class CliProcess
{
    static readonly Lazy<string> Dll = new(BuildAndLocate);

    static string BuildAndLocate()
    {
        var here = new DirectoryInfo(AppContext.BaseDirectory.TrimEnd(Path.DirectorySeparatorChar));
        string tfm = here.Name, config = here.Parent?.Name ?? "Release";
        var root = here;
        while (root is not null && !File.Exists(Path.Combine(root.FullName, "EdmKernels.sln"))) root = root.Parent;
        if (root is null) throw new InvalidOperationException($"EdmKernels.sln not found above {here.FullName}");
        string project = Path.Combine(root.FullName, "Edm.Bench", "Edm.Bench.csproj");
        var psi = new ProcessStartInfo("dotnet") { RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
        foreach (var a in new[] { "build", project, "-c", config, "--nologo", "-v", "q" }) psi.ArgumentList.Add(a);
        using (var p = Process.Start(psi)!)
        {
            var output = p.StandardOutput.ReadToEndAsync();
            var error = p.StandardError.ReadToEndAsync();
            p.WaitForExit();
            if (p.ExitCode != 0) throw new InvalidOperationException($"building {project} failed:\n{output.Result}{error.Result}");
        }
        string dll = Path.Combine(root.FullName, "Edm.Bench", "bin", config, tfm, "Edm.Bench.dll");
        return File.Exists(dll) ? dll : throw new InvalidOperationException($"{dll} not found after building {project}");
    }

    /// <summary>Runs `Edm.Bench args` and returns its exit code, standard output and standard error.</summary>
    public static (int Code, string Out, string Err) Run(params string[] args) => Run(null, args);

    /// <summary>Runs `Edm.Bench args` with extra environment variables.</summary>
    public static (int Code, string Out, string Err) Run(IReadOnlyDictionary<string, string>? env, params string[] args)
    {
        var psi = new ProcessStartInfo("dotnet") { RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
        if (env is not null) foreach (var (k, v) in env) psi.Environment[k] = v;
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

    /// <summary>Starts `Edm.Bench args` without waiting (standard output and error redirected).</summary>
    public static Process Start(params string[] args)
    {
        var psi = new ProcessStartInfo("dotnet") { RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
        psi.ArgumentList.Add(Dll.Value);
        foreach (var a in args) psi.ArgumentList.Add(a);
        return Process.Start(psi)!;
    }

    /// <summary>The exit code of `Edm.Bench args`.</summary>
    public static int Code(params string[] args) => Run(args).Code;
}

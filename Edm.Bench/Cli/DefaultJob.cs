// What `dotnet run --project Edm.Bench -c Release` does with no arguments. Until the
// truncation-error suite lands it runs `verify` on the default device, then a quick `kernels` pass.
namespace Edm.Bench.Cli;

/// <summary>The default job.</summary>
public static class DefaultJob
{
    /// <summary>Runs the default job; returns the exit code.</summary>
    public static int Run()
    {
        int rc = VerifyCommand.Run(null, null);
        Console.WriteLine();
        int rk = KernelsCommand.Run(null, null, quick: true, jsonPath: null, reps: 5);
        return rc != 0 ? rc : rk;
    }
}

// What `dotnet run --project Edm.Bench -c Release` does with no arguments: the truncation-error
// suite (sampling issue) on the default device, with its default datasets and outputs.
namespace Edm.Bench.Cli;

/// <summary>The default job.</summary>
public static class DefaultJob
{
    /// <summary>Runs the default job; returns the exit code.</summary>
    public static int Run() => TruncationCommand.RunDefault([]);
}

// Each Edm.Bench subcommand lives in its own file under Edm.Bench/Cli/ and implements
// IBenchCommand; Program discovers them by reflection, so adding a command touches no other file.
using System.CommandLine;

namespace Edm.Bench.Cli;

/// <summary>A subcommand of Edm.Bench.</summary>
public interface IBenchCommand
{
    /// <summary>Builds the System.CommandLine command with its options and action.</summary>
    Command Build();
}

/// <summary>A user mistake: printed as one line "error: ..." and exit code 2, no stack trace.</summary>
public sealed class UsageException(string message) : Exception(message);

// Edm.Bench: the command-line program. Subcommands are discovered from IBenchCommand types
// (Edm.Bench/Cli/). With no arguments it runs the default job (see DefaultJob).
using System.CommandLine;
using System.Reflection;
using Edm.Bench.Cli;

namespace Edm.Bench;

/// <summary>Entry point.</summary>
public static class Program
{
    /// <summary>Runs the CLI and returns the exit code (0 ok, 1 failed check, 2 usage error).</summary>
    public static int Main(string[] args)
    {
        if (args.Length == 0) return CliErrors.Guard(DefaultJob.Run);
        var root = BuildRoot();
        var parsed = root.Parse(args);
        if (parsed.Errors.Count > 0)
        {
            // The most specific message first: "Required command was not provided" is noise next to
            // "Unrecognized command or argument 'x'".
            var messages = parsed.Errors.Select(e => Friendly(e.Message)).ToList();
            if (messages.Count > 1) messages.RemoveAll(m => m.StartsWith("Required command was not provided"));
            foreach (var m in messages) Console.Error.WriteLine($"error: {m}");
            Console.Error.WriteLine("run with --help for the commands and options");
            return 2;
        }
        return CliErrors.Guard(() => parsed.Invoke());
    }

    /// <summary>
    /// A parse error in the user's words: System.CommandLine names .NET types ("as expected type
    /// 'System.Nullable`1[System.UInt64]'"); this says what kind of value the option takes.
    /// </summary>
    public static string Friendly(string message)
    {
        var m = System.Text.RegularExpressions.Regex.Match(message, @"^Cannot parse argument '(.*)' for option '([^']+)' as expected type '([^']+)'");
        if (!m.Success) return message;
        string type = m.Groups[3].Value;
        string kind = type.Contains("UInt") ? "a non-negative integer"
            : type.Contains("Int") ? "an integer"
            : type.Contains("Double") || type.Contains("Single") ? "a number (e.g. 0.5 or 1e-3)"
            : type.Contains("Boolean") ? "true or false"
            : "a valid value";
        return $"{m.Groups[2].Value} '{m.Groups[1].Value}' is not {kind}";
    }

    /// <summary>The root command with every discovered subcommand.</summary>
    public static RootCommand BuildRoot()
    {
        var root = new RootCommand("EdmKernels bench: verify and time our kernels, measure sampler truncation error, train and generate.");
        var commands = typeof(Program).Assembly.GetTypes()
            .Where(t => typeof(IBenchCommand).IsAssignableFrom(t) && t is { IsAbstract: false, IsInterface: false })
            .Select(t => ((IBenchCommand)Activator.CreateInstance(t)!).Build())
            .OrderBy(c => c.Name);
        foreach (var c in commands) root.Subcommands.Add(c);
        return root;
    }
}

namespace Edm.Model;

/// <summary>
/// An option of a training or generation run has a value that is not allowed. <see cref="Option"/>
/// is the library's name for it (a <see cref="Training.TrainingOptions"/> property or a parameter name), so a
/// front end can name it in its own terms (the CLI maps "Batch" to "--batch").
/// </summary>
public sealed class InvalidOptionException(string option, string problem) : ArgumentException($"{option} {problem}")
{
    /// <summary>The option's library name, e.g. "Batch" or "fixedClass".</summary>
    public string Option { get; } = option;

    /// <summary>What is wrong with the value and what is allowed, e.g. "0 must be >= 1".</summary>
    public string Problem { get; } = problem;
}

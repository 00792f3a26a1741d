// Seed lists for `generate --seeds`, as NVlabs/edm writes them: comma-separated non-negative
// integers and inclusive ranges A-B, e.g. "0-63" or "1,5,9-12". Order is kept and duplicates are
// allowed (each seed gives one image). Mistakes ("5-2", "-3", "x", "1,,2") are FormatExceptions
// that name the list (the caller's name for it: the CLI passes its option, "--seeds") and quote the
// offending part.
namespace Edm.Sampling;

/// <summary>Parses seed lists.</summary>
public static class SeedList
{
    /// <summary>Most seeds one list may expand to (a guard against "0-99999999999").</summary>
    public const int MaxSeeds = 10_000_000;

    /// <summary>Parses "A-B" ranges and comma lists into the seeds in order.</summary>
    public static ulong[] Parse(string? text, string option = "seeds")
    {
        if (string.IsNullOrWhiteSpace(text)) throw new FormatException($"{option} is empty; give seeds like 0-63 or 1,5,9-12");
        var seeds = new List<ulong>();
        foreach (var raw in text.Split(','))
        {
            string part = raw.Trim();
            if (part.Length == 0) throw new FormatException($"{option} '{text}' has an empty item; give seeds like 0-63 or 1,5,9-12");
            if (part.StartsWith('-')) throw new FormatException($"{option}: '{part}' is negative; seeds are integers >= 0");
            int dash = part.IndexOf('-');
            ulong lo = Number(dash < 0 ? part : part[..dash], part, option);
            ulong hi = dash < 0 ? lo : Number(part[(dash + 1)..], part, option);
            if (hi < lo) throw new FormatException($"{option}: range '{part}' ends before it starts; write it as {hi}-{lo}");
            if (hi - lo >= (ulong)(MaxSeeds - seeds.Count)) throw new FormatException($"{option} '{text}' has more than {MaxSeeds} seeds");
            for (ulong s = lo; ; s++)
            {
                seeds.Add(s);
                if (s == hi) break;
            }
        }
        return seeds.ToArray();
    }

    static ulong Number(string s, string part, string option)
    {
        s = s.Trim();
        if (s.StartsWith('-')) throw new FormatException($"{option}: '{part}' has a negative number; seeds are integers >= 0");
        if (s.Length == 0 || !s.All(char.IsAsciiDigit) || !ulong.TryParse(s, out ulong v))
            throw new FormatException($"{option}: '{part}' is not a seed or range; give non-negative integers and ranges A-B, e.g. 0-63 or 1,5,9-12");
        return v;
    }
}

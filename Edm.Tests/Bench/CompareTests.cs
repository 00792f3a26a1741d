using Xunit;

namespace Edm.Tests.Bench;

// `compare A.json B.json`: the join, the ratio B/A, and bad files as exit code 2.
public sealed class CompareTests : IDisposable
{
    readonly string _dir = Directory.CreateTempSubdirectory("edm-compare-").FullName;

    public void Dispose() => Directory.Delete(_dir, recursive: true);

    string Write(string name, string text)
    {
        var path = Path.Combine(_dir, name);
        File.WriteAllText(path, text);
        return path;
    }

    static string Rows(params (string Op, string Shape, double Ms)[] rows) =>
        "[" + string.Join(",", rows.Select(r =>
            $"{{\"op\":\"{r.Op}\",\"shape\":\"{r.Shape}\",\"device\":\"cpu\",\"median_ms\":{r.Ms.ToString(System.Globalization.CultureInfo.InvariantCulture)}," +
            "\"gbps\":1,\"gflops\":1,\"baseline\":\"x\",\"baseline_ms\":1,\"ratio\":1}")) + "]";

    [Fact]
    public void Rows_are_joined_on_op_and_shape_with_ratio_B_over_A()
    {
        var a = Write("a.json", Rows(("softmax", "(4, 8)", 2.0), ("groupnorm", "(1, 2)", 1.0), ("only_a", "(1)", 1.0)));
        var b = Write("b.json", Rows(("groupnorm", "(1, 2)", 3.0), ("softmax", "(4, 8)", 1.0), ("softmax", "(4, 9)", 5.0)));
        var (code, output, err) = CliProcess.Run("compare", a, b);
        Assert.True(code == 0, err);
        var lines = output.Split('\n');
        Assert.Contains(lines, l => l.StartsWith("softmax") && l.Contains("(4, 8)") && l.TrimEnd().EndsWith("0.50"));
        Assert.Contains(lines, l => l.StartsWith("groupnorm") && l.TrimEnd().EndsWith("3.00"));
        Assert.Contains(lines, l => l.StartsWith("only in A: only_a"));
        Assert.Contains(lines, l => l.StartsWith("only in B: softmax (4, 9)"));
        Assert.Contains(lines, l => l.StartsWith("geometric mean of B/A over 2 rows: 1.22"));
    }

    [Theory]
    [InlineData("missing", "cannot read")]
    [InlineData("{\"op\":1}", "expected an array")]
    [InlineData("[{\"op\":\"a\"", "not valid JSON")]
    [InlineData("[{\"op\":\"a\",\"shape\":\"b\"}]", "median_ms")]
    [InlineData("[]", "no rows")]
    [InlineData("[{\"op\":\"a\",\"shape\":\"b\",\"median_ms\":-3}]", "positive finite")]
    public void Bad_files_are_exit_2_with_one_line(string content, string expected)
    {
        var good = Write("good.json", Rows(("softmax", "(4, 8)", 2.0)));
        var bad = content == "missing" ? Path.Combine(_dir, "absent.json") : Write("bad.json", content);
        var (code, err) = Run("compare", good, bad);
        Assert.Equal(2, code);
        Assert.Contains(expected, err);
        Assert.DoesNotContain("   at ", err);
    }

    [Fact]
    public void Files_without_common_rows_are_exit_2()
    {
        var a = Write("a.json", Rows(("softmax", "(4, 8)", 2.0)));
        var b = Write("b.json", Rows(("softmax", "(4, 9)", 2.0)));
        var (code, err) = Run("compare", a, b);
        Assert.Equal(2, code);
        Assert.Contains("no (op, shape) in common", err);
    }

    static (int Code, string Err) Run(params string[] args)
    {
        var (code, _, err) = CliProcess.Run(args);
        return (code, err);
    }
}

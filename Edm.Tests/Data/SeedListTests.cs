using Edm.Sampling;
using Xunit;

namespace Edm.Tests.Data;

public sealed class SeedListTests
{
    [Fact]
    public void Parses_ranges_and_lists_in_order()
    {
        Assert.Equal(Enumerable.Range(0, 64).Select(i => (ulong)i), SeedList.Parse("0-63"));
        Assert.Equal(new ulong[] { 1, 5, 9, 10, 11, 12 }, SeedList.Parse("1,5,9-12"));
        Assert.Equal(new ulong[] { 7 }, SeedList.Parse(" 7 "));
        Assert.Equal(new ulong[] { 3, 3, 2 }, SeedList.Parse("3-3, 3,2"));
        Assert.Equal(new ulong[] { 4294967295, 4294967296 }, SeedList.Parse("4294967295-4294967296"));
    }

    [Theory]
    [InlineData("5-2", "ends before it starts")]
    [InlineData("-3", "negative")]
    [InlineData("1,-3", "negative")]
    [InlineData("2--5", "negative")]
    [InlineData("abc", "not a seed")]
    [InlineData("1.5", "not a seed")]
    [InlineData("1-2-3", "not a seed")]
    [InlineData("1,,2", "empty item")]
    [InlineData("", "empty")]
    [InlineData("0-99999999999", "more than")]
    [InlineData("99999999999999999999", "not a seed")]
    public void Rejects_bad_lists_naming_the_part(string text, string expected)
    {
        var e = Assert.Throws<FormatException>(() => SeedList.Parse(text, "--seeds"));
        Assert.Contains(expected, e.Message);
        Assert.Contains("--seeds", e.Message);
    }
}

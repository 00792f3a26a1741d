using Edm.Model.IO;
using Xunit;

namespace Edm.Tests.Data;

public sealed class AtomicFileTests : IDisposable
{
    readonly TempDir _dir = new();

    public void Dispose() => _dir.Dispose();

    string[] Leftovers() => Directory.GetFiles(_dir.Path).Select(Path.GetFileName).Where(n => n!.Contains(".tmp-")).ToArray()!;

    [Fact]
    public void Writes_new_file_and_replaces_existing_one()
    {
        var path = _dir["sub/ckpt.bin"];
        AtomicFile.WriteAllBytes(path, [1, 2, 3]);
        Assert.Equal(new byte[] { 1, 2, 3 }, File.ReadAllBytes(path));
        AtomicFile.WriteAllText(path, "new contents");
        Assert.Equal("new contents", File.ReadAllText(path));
        Assert.DoesNotContain(Directory.GetFiles(_dir["sub"]), f => f.Contains(".tmp-"));
    }

    [Fact]
    public void Failure_mid_write_leaves_old_file_intact_and_no_temp_file()
    {
        var path = _dir["model.safetensors"];
        File.WriteAllText(path, "old checkpoint");
        var e = Assert.Throws<IOException>(() => AtomicFile.Write(path, s =>
        {
            s.Write(new byte[10_000]); // half a checkpoint, then the disk "fails"
            throw new IOException("simulated disk failure");
        }));
        Assert.Equal("simulated disk failure", e.Message);
        Assert.Equal("old checkpoint", File.ReadAllText(path));
        Assert.Empty(Leftovers());
    }

    [Fact]
    public void Uncommitted_writer_keeps_old_file_and_cleans_up()
    {
        var path = _dir["a.txt"];
        File.WriteAllText(path, "old");
        using (var w = AtomicFile.Begin(path))
        {
            w.Stream.Write("partial"u8);
            Assert.Equal("old", File.ReadAllText(path)); // nothing visible before Commit
        }
        Assert.Equal("old", File.ReadAllText(path));
        Assert.Empty(Leftovers());
    }

    [Fact]
    public void Target_that_is_a_directory_is_an_error()
    {
        Directory.CreateDirectory(_dir["d"]);
        Assert.Throws<IOException>(() => AtomicFile.WriteAllText(_dir["d"], "x"));
    }
}

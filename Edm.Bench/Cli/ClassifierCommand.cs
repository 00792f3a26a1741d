// `classifier train|eval`: the small image classifier (Edm.Model/Metrics/MnistClassifier.cs) whose
// 128 penultimate features are the feature network of `fid ... --features classifier:PATH`.
// --holdout images spread evenly over the dataset are held out: never trained on, used for the accuracy.
using System.CommandLine;
using System.Diagnostics;
using Edm.Model.Data;
using Edm.Model.Metrics;

namespace Edm.Bench.Cli;

/// <summary>The classifier command.</summary>
public sealed class ClassifierCommand : IBenchCommand
{
    /// <inheritdoc/>
    public Command Build()
    {
        var cmd = new Command("classifier", "Train or evaluate the feature classifier used by fid --features classifier:PATH");
        cmd.Subcommands.Add(BuildTrain());
        cmd.Subcommands.Add(BuildEval());
        return cmd;
    }

    static Option<int> Holdout() => new("--holdout") { Description = "Images held out for the accuracy, spread evenly over the dataset (never trained on)", DefaultValueFactory = _ => 1000 };

    static Command BuildTrain()
    {
        var device = CommonOptions.Device();
        var data = new Option<string>("--data") { Description = "Labelled dataset folder or zip", Required = true };
        var output = new Option<string>("--out") { Description = "Classifier file to write (.safetensors)", Required = true };
        var kimg = new Option<double>("--kimg") { Description = "Training length in thousands of images", DefaultValueFactory = _ => 30 };
        var batch = new Option<int>("--batch") { Description = "Images per step", DefaultValueFactory = _ => 64 };
        var lr = new Option<double>("--lr") { Description = "Adam learning rate", DefaultValueFactory = _ => 2e-3 };
        var seed = new Option<ulong>("--seed") { Description = "Seed of the weights and the data order", DefaultValueFactory = _ => 0UL };
        var holdout = Holdout();
        var cmd = new Command("train", "Train the classifier with the engine's tape and report its held-out accuracy");
        foreach (var o in new Option[] { device, data, output, kimg, batch, lr, seed, holdout }) cmd.Options.Add(o);
        cmd.SetAction(p => CliErrors.Guard(() =>
        {
            string outPath = p.GetValue(output)!;
            if (!outPath.EndsWith(".safetensors", StringComparison.OrdinalIgnoreCase))
                throw new UsageException($"--out '{outPath}' must end in .safetensors");
            CommonOptions.RequireWritable(outPath, "--out");
            double k = p.GetValue(kimg);
            if (!(k > 0) || k > 1e5) throw new UsageException($"--kimg {k} is out of range; allowed: > 0 and <= 100000");
            using var ds = ImageDataset.Open(p.GetValue(data)!, preload: true);
            var (train, test) = ClassifierTraining.Split(ds, p.GetValue(holdout));
            using var dev = CommonOptions.OpenDevice(p.GetValue(device));
            Console.WriteLine($"training the classifier on {train.Length} of {ds} ({test.Length} held out) on {dev}");
            var clock = Stopwatch.StartNew();
            using var net = ClassifierTraining.Train(dev, ds, train, (long)Math.Ceiling(k * 1000), p.GetValue(batch), p.GetValue(lr), p.GetValue(seed), Console.WriteLine);
            double acc = ClassifierTraining.Accuracy(net, ds, test);
            net.Save(outPath);
            Console.WriteLine($"held-out accuracy {acc:P2} on {test.Length} images; wrote {outPath} ({clock.Elapsed.TotalSeconds:F0} s)");
            return 0;
        }));
        return cmd;
    }

    static Command BuildEval()
    {
        var device = CommonOptions.Device();
        var network = new Option<string>("--network") { Description = "Classifier file (.safetensors from classifier train)", Required = true };
        var data = new Option<string>("--data") { Description = "Labelled dataset folder or zip", Required = true };
        var holdout = Holdout();
        var cmd = new Command("eval", "Accuracy of a classifier on the held-out end of a labelled dataset");
        foreach (var o in new Option[] { device, network, data, holdout }) cmd.Options.Add(o);
        cmd.SetAction(p => CliErrors.Guard(() =>
        {
            using var ds = ImageDataset.Open(p.GetValue(data)!, preload: true);
            var (_, test) = ClassifierTraining.Split(ds, p.GetValue(holdout));
            using var dev = CommonOptions.OpenDevice(p.GetValue(device));
            using var net = FidCommand.LoadClassifier(dev, p.GetValue(network)!);
            FidCommand.RequireMatch(net, ds);
            Console.WriteLine($"held-out accuracy {ClassifierTraining.Accuracy(net, ds, test):P2} on {test.Length} images");
            return 0;
        }));
        return cmd;
    }
}

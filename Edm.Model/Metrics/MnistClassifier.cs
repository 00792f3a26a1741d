// A small image classifier whose penultimate layer serves as a feature network for the Frechet
// distance on datasets that Inception-v3 does not fit (MNIST: grayscale digits at 32x32). Built
// from the engine's own layers and trained on its tape:
//   x (B, C, R, R) -> conv 3x3 C->16, SiLU -> conv 3x3 16->32 with 2x FIR down, SiLU (R/2)
//   -> conv 3x3 32->64 down, SiLU (R/4) -> conv 3x3 64->64 down, SiLU (R/8)
//   -> flatten (B, 64 (R/8)^2) -> linear -> 128, SiLU   = the features (B, 128)
//   -> linear 128 -> classes = the logits
// Loss: cross-entropy, -mean_b log softmax(logits)_b[label_b]. Adam, constant learning rate.
using System.Globalization;
using Edm.Autograd;
using Edm.Kernels;
using Edm.Model.Data;
using Edm.Model.IO;
using Edm.Model.Modules;

namespace Edm.Model.Metrics;

/// <summary>The classifier (see the file header).</summary>
public sealed class MnistClassifier : Module, IFeatureNetwork
{
    /// <summary>Width of the feature layer.</summary>
    public const int FeatureDim = 128;
    /// <summary>Metadata "format" of a saved classifier.</summary>
    public const string Format = "edm-kernels-classifier/1";

    readonly Conv2d _c1, _c2, _c3, _c4;
    readonly Linear _f1, _f2;

    /// <summary>Image channels.</summary>
    public int Channels { get; }
    /// <summary>Image resolution (a multiple of 8).</summary>
    public int Resolution { get; }
    /// <summary>Number of classes.</summary>
    public int Classes { get; }

    /// <summary>Builds the network with weights drawn from <paramref name="ctx"/>.</summary>
    public MnistClassifier(InitContext ctx, int channels, int resolution, int classes) : base(ctx.Device)
    {
        if (channels is < 1 or > 4) throw new InvalidOptionException("Channels", $"{channels} is out of range; allowed: 1..4");
        if (resolution < 8 || resolution % 8 != 0) throw new InvalidOptionException("Resolution", $"{resolution} must be a multiple of 8 (three 2x downsamplings)");
        if (classes < 2) throw new InvalidOptionException("Classes", $"{classes} must be >= 2 (a labelled dataset)");
        Channels = channels; Resolution = resolution; Classes = classes;
        _c1 = RegisterModule("conv1", new Conv2d(ctx, channels, 16, 3));
        _c2 = RegisterModule("conv2", new Conv2d(ctx, 16, 32, 3, down: true));
        _c3 = RegisterModule("conv3", new Conv2d(ctx, 32, 64, 3, down: true));
        _c4 = RegisterModule("conv4", new Conv2d(ctx, 64, 64, 3, down: true));
        int flat = 64 * (resolution / 8) * (resolution / 8);
        _f1 = RegisterModule("fc1", new Linear(ctx, flat, FeatureDim));
        _f2 = RegisterModule("fc2", new Linear(ctx, FeatureDim, classes));
    }

    /// <summary>The features (B, 128) of images (B, C, R, R) in [-1, 1].</summary>
    public Variable Features(Variable x)
    {
        if (x.Value.Rank != 4 || x.Value.Shape[1] != Channels || x.Value.Shape[2] != Resolution || x.Value.Shape[3] != Resolution)
            throw new ArgumentException($"MnistClassifier: images have shape {x.Value.ShapeString}, expected (B, {Channels}, {Resolution}, {Resolution})");
        var h = Fn.Silu(_c1.Forward(x));
        h = Fn.Silu(_c2.Forward(h));
        h = Fn.Silu(_c3.Forward(h));
        h = Fn.Silu(_c4.Forward(h));
        h = Fn.Reshape(h, x.Value.Shape[0], -1);
        return Fn.Silu(_f1.Forward(h));
    }

    /// <inheritdoc/>
    public string Description => "the classifier";

    int IFeatureNetwork.FeatureDim => FeatureDim;

    /// <inheritdoc/>
    public string? Refuses(int channels, int resolution) =>
        channels == Channels && resolution == Resolution ? null
            : $"the classifier takes {Channels}x{Resolution}x{Resolution} images, not {channels}x{resolution}x{resolution}";

    /// <inheritdoc/>
    public float[] Features(float[] images, int count, int channels, int resolution, Action<int>? progress = null)
    {
        if (Refuses(channels, resolution) is { } why) throw new ArgumentException($"MnistClassifier: {why}");
        return ClassifierTraining.Features(this, images, count, progress: progress);
    }

    /// <summary>The logits (B, classes).</summary>
    public Variable Logits(Variable x) => _f2.Forward(Features(x));

    /// <summary>Mean cross-entropy of logits (B, K) against one-hot labels (B, K).</summary>
    public static Variable CrossEntropy(Variable logits, Variable oneHot)
    {
        var logp = Fn.Log(Fn.AddScalar(Fn.Softmax(logits), 1e-12f));
        return Fn.Scale(Fn.Sum(Fn.Mul(logp, oneHot)), -1f / logits.Value.Shape[0]);
    }

    /// <summary>Saves the weights with the metadata that rebuilds the network.</summary>
    public void Save(string path) => Weights.Save(this, path, new Dictionary<string, string>
    {
        ["format"] = Format,
        ["channels"] = Channels.ToString(CultureInfo.InvariantCulture),
        ["resolution"] = Resolution.ToString(CultureInfo.InvariantCulture),
        ["classes"] = Classes.ToString(CultureInfo.InvariantCulture),
    });

    /// <summary>Loads a saved classifier; another kind of file is an <see cref="InvalidDataException"/>.</summary>
    public static MnistClassifier Load(EdmDevice device, string path)
    {
        var file = SafeTensors.Read(path);
        var m = file.Metadata;
        if (!m.TryGetValue("format", out var f) || f != Format)
            throw new InvalidDataException($"'{path}' is not a classifier written by `classifier train` (format '{(m.TryGetValue("format", out var g) ? g : "none")}', expected '{Format}')");
        int Int(string key) => m.TryGetValue(key, out var v) && int.TryParse(v, NumberStyles.Integer, CultureInfo.InvariantCulture, out int i) ? i
            : throw new InvalidDataException($"'{path}': metadata '{key}' is missing or not an integer");
        var net = new MnistClassifier(new InitContext(device), Int("channels"), Int("resolution"), Int("classes"));
        try { Weights.Load(net, file.Tensors, path); }
        catch { net.Dispose(); throw; }
        net.Train(false);
        return net;
    }
}

/// <summary>Training and evaluation of <see cref="MnistClassifier"/> on an image dataset.</summary>
public static class ClassifierTraining
{
    /// <summary>
    /// The held-out images: <paramref name="holdout"/> indices spread evenly over the dataset (image
    /// floor(i N / holdout) for i = 0.., so a dataset stored class by class is held out in every
    /// class); the rest train.
    /// </summary>
    public static (int[] Train, int[] Test) Split(ImageDataset data, int holdout)
    {
        if (holdout < 1 || holdout >= data.Count) throw new InvalidOptionException("Holdout", $"{holdout} is out of range; allowed: 1..{data.Count - 1} for {data.Count} images");
        var test = Enumerable.Range(0, holdout).Select(i => (int)((long)i * data.Count / holdout)).ToArray();
        var held = test.ToHashSet();
        return (Enumerable.Range(0, data.Count).Where(i => !held.Contains(i)).ToArray(), test);
    }

    /// <summary>
    /// Trains for <paramref name="images"/> training images (batches of <paramref name="batch"/>, a
    /// seeded permutation per epoch); <paramref name="log"/> gets the mean loss every 64 steps.
    /// </summary>
    public static MnistClassifier Train(EdmDevice device, ImageDataset data, int[] train, long images, int batch, double lr, ulong seed, Action<string>? log = null)
    {
        if (data.LabelDim < 2) throw new InvalidOptionException("Data", $"'{data.Path}' has {data.LabelDim} classes; a classifier needs a labelled dataset (dataset.json)");
        if (batch < 1 || batch > train.Length) throw new InvalidOptionException("Batch", $"{batch} is out of range; allowed: 1..{train.Length}");
        if (!(lr > 0) || double.IsInfinity(lr)) throw new InvalidOptionException("Lr", $"{lr} must be > 0");
        var net = new MnistClassifier(new InitContext(device, seed), data.Channels, data.Resolution, data.LabelDim);
        using var set = ParameterSet.Pack(net.Parameters());
        using var adam = new Adam(set);
        var order = new DataOrderSampler(train.Length, seed);
        int c = data.Channels, r = data.Resolution;
        double lossSum = 0;
        int stepsInLog = 0;
        long steps = (images + batch - 1) / batch;
        for (long step = 1; step <= steps; step++)
        {
            using var scope = new TensorScope();
            var idx = order.Next(batch).Select(i => train[i]).ToArray();
            var x = new Variable(Tensor.FromArray(device, data.ReadImages(idx), batch, c, r, r));
            var y = new Variable(data.LabelBatch(device, idx)!);
            adam.ZeroGrad();
            var loss = MnistClassifier.CrossEntropy(net.Logits(x), y);
            lossSum += loss.Value.Item();
            stepsInLog++;
            loss.Backward();
            adam.Step((float)lr);
            if (step % 64 == 0 || step == steps)
            {
                log?.Invoke(string.Create(CultureInfo.InvariantCulture, $"step {step}/{steps}  images {step * batch}  loss {lossSum / stepsInLog:F4}"));
                lossSum = 0;
                stepsInLog = 0;
            }
        }
        net.Train(false);
        return net;
    }

    /// <summary>The fraction of <paramref name="indices"/> whose predicted class is the label.</summary>
    public static double Accuracy(MnistClassifier net, ImageDataset data, int[] indices, int batch = 256)
    {
        int correct = 0, c = data.Channels, r = data.Resolution;
        using var noGrad = Tape.NoGrad();
        for (int start = 0; start < indices.Length; start += batch)
        {
            using var scope = new TensorScope();
            var idx = indices[start..Math.Min(indices.Length, start + batch)];
            var logits = net.Logits(new Variable(Tensor.FromArray(net.Device, data.ReadImages(idx), idx.Length, c, r, r))).Value.ToArray();
            var onehot = new float[data.LabelDim];
            for (int b = 0; b < idx.Length; b++)
            {
                data.GetOneHot(idx[b], onehot);
                int best = 0;
                for (int k = 1; k < data.LabelDim; k++) if (logits[b * data.LabelDim + k] > logits[b * data.LabelDim + best]) best = k;
                if (onehot[best] == 1f) correct++;
            }
        }
        return (double)correct / indices.Length;
    }

    /// <summary>Features (N, 128) of images (N, C, R, R), <paramref name="batch"/> at a time; <paramref name="progress"/> sees images done.</summary>
    public static float[] Features(MnistClassifier net, float[] images, int count, int batch = 256, Action<int>? progress = null)
    {
        int size = net.Channels * net.Resolution * net.Resolution;
        if (images.Length != (long)count * size) throw new ArgumentException($"Features: {images.Length} floats for {count} images of {size}");
        var features = new float[(long)count * MnistClassifier.FeatureDim];
        using var noGrad = Tape.NoGrad();
        for (int start = 0; start < count; start += batch)
        {
            using var scope = new TensorScope();
            int n = Math.Min(batch, count - start);
            var x = Tensor.FromArray(net.Device, images.AsSpan(start * size, n * size).ToArray(), n, net.Channels, net.Resolution, net.Resolution);
            net.Features(new Variable(x)).Value.ToArray().CopyTo(features.AsSpan(start * MnistClassifier.FeatureDim));
            progress?.Invoke(start + n);
        }
        return features;
    }
}

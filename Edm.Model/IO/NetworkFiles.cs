// Loads a preconditioned network from a file, whatever wrote it, choosing the format by content:
//
//   - our own network snapshot (.safetensors written by `train`; its metadata rebuilds the network);
//   - an NVlabs/edm network snapshot (.pkl from its train.py, as its generate.py loads it): the
//     'ema' object's class (EDMPrecond, VPPrecond, VEPrecond, iDDPMPrecond) and _init_kwargs
//     (img_resolution, img_channels, label_dim, model_type = SongUNet | DhariwalUNet and the
//     network's keyword arguments) rebuild the same network here, and its state dict is loaded
//     under the names edm gives it ("model.enc.16x16_down.conv0.weight", ...);
//   - a PyTorch file (.pth/.pt, zip or legacy) that holds such a network object (torch.save(net)).
// A file that holds weights only (a state dict) carries no architecture: build the network and use
// Weights.Load(network, path). Every option this engine cannot honour is refused by name, never
// dropped; use_fp16 is accepted (we compute in float32, so results differ from a float16 run at
// float16 precision).
using System.Globalization;
using Edm.Kernels;
using Edm.Model.Modules;
using Edm.Model.Networks;
using Edm.Model.Training;

namespace Edm.Model.IO;

/// <summary>Loads networks from our snapshots, NVlabs/edm .pkl snapshots and PyTorch files (see the file header).</summary>
public static class NetworkFiles
{
    /// <summary>The preconditioner classes of NVlabs/edm's training/networks.py this engine builds.</summary>
    public static readonly string[] EdmPrecondClasses = ["EDMPrecond", "VPPrecond", "VEPrecond", "iDDPMPrecond"];

    /// <summary>Whether the file starts like a safetensors file (an 8-byte header length, then a JSON object).</summary>
    public static bool IsSafeTensors(string path)
    {
        using var fs = File.OpenRead(path);
        var head = new byte[9];
        return fs.ReadAtLeast(head, 9, throwOnEndOfStream: false) == 9 && head[8] == (byte)'{'
               && BitConverter.ToUInt64(head, 0) is > 1 and < (ulong)SafeTensors.MaxHeaderBytes;
    }

    /// <summary>
    /// Loads the network in <paramref name="path"/> wrapped in its preconditioning. Problems are
    /// <see cref="CheckpointException"/>s naming the file and what is wrong.
    /// </summary>
    public static Precond Load(EdmDevice device, string path)
    {
        if (!File.Exists(path))
            throw new CheckpointException(Directory.Exists(path) ? $"network '{path}' is a folder; give the path of a network file" : $"network '{path}' does not exist");
        if (IsSafeTensors(path))
        {
            var (n, spec, _) = Checkpoints.LoadSnapshot(device, path);
            return new Precond(n, spec.Precond, spec.SigmaData);
        }
        TorchFile f;
        try { f = TorchFile.Read(path); }
        catch (PickleException e) { throw new CheckpointException(e.Message, e); }
        var obj = f.FindNetwork() ?? throw new CheckpointException(
            $"{path}: a {f.Format} file with weights but no network description (a state dict); build the network and load them " +
            "with Weights.Load(network, path), or give an NVlabs/edm snapshot (.pkl) or one of our .safetensors snapshots");
        try { return FromEdm(device, obj, path); }
        catch (PickleException e) { throw new CheckpointException(e.Message, e); }
        catch (SafeTensorsException e) { throw new CheckpointException(e.Message, e); }
    }

    /// <summary>Builds and loads the network of an NVlabs/edm preconditioner object.</summary>
    public static Precond FromEdm(EdmDevice device, PersistentObject precond, string path)
    {
        var kind = precond.ClassName switch
        {
            "EDMPrecond" => PrecondKind.Edm,
            "VPPrecond" => PrecondKind.Vp,
            "VEPrecond" => PrecondKind.Ve,
            "iDDPMPrecond" => PrecondKind.Iddpm,
            _ => throw new CheckpointException($"{path}: the network is an object of class '{precond.ClassName}'; supported: " +
                                               $"{string.Join(", ", EdmPrecondClasses)} (NVlabs/edm's preconditioners, wrapping SongUNet or DhariwalUNet)"),
        };
        if (precond.InitArgs.Length > 0)
            throw new CheckpointException($"{path}: {precond.ClassName} was built with {precond.InitArgs.Length} positional arguments; NVlabs/edm builds it with keyword arguments only");
        var kw = new Kwargs(precond.InitKwargs, $"{path}: {precond.ClassName}");
        int res = kw.Int("img_resolution", null), channels = kw.Int("img_channels", null), labelDim = kw.Int("label_dim", 0);
        kw.Bool("use_fp16", false);                                   // accepted: computed in float32 here
        string modelType = kw.Str("model_type", kind is PrecondKind.Vp or PrecondKind.Ve ? "SongUNet" : "DhariwalUNet");
        double sigmaData = 0.5;
        // Table 1's parameters: the defaults are what this engine's Precond implements.
        switch (kind)
        {
            case PrecondKind.Edm:
                kw.Require("sigma_min", 0.0); kw.Require("sigma_max", double.PositiveInfinity);
                sigmaData = kw.Double("sigma_data", 0.5);
                if (!(sigmaData > 0) || double.IsInfinity(sigmaData)) throw new CheckpointException($"{path}: sigma_data = {sigmaData}; it must be > 0 and finite");
                break;
            case PrecondKind.Vp:
                kw.Require("beta_d", Precond.BetaD); kw.Require("beta_min", Precond.BetaMin); kw.Require("M", Precond.M); kw.Require("epsilon_t", Precond.EpsilonT);
                break;
            case PrecondKind.Ve:
                kw.Require("sigma_min", 0.02); kw.Require("sigma_max", 100.0);
                break;
            case PrecondKind.Iddpm:
                kw.Require("C_1", Sampling.TimeSteps.IddpmC1); kw.Require("C_2", Sampling.TimeSteps.IddpmC2); kw.Require("M", Precond.M);
                break;
        }
        int outChannels = kind == PrecondKind.Iddpm ? 2 * channels : channels;
        object options = modelType switch
        {
            "SongUNet" => SongOptions(kw, res, channels, outChannels, labelDim),
            "DhariwalUNet" => DhariwalOptions(kw, res, channels, outChannels, labelDim),
            _ => throw new CheckpointException($"{path}: model_type '{modelType}' is not supported; allowed: SongUNet, DhariwalUNet"),
        };
        kw.RejectUnused();
        var ctx = new InitContext(device);
        INetwork net;
        try { net = options is SongUNetOptions so ? new SongUNet(ctx, so) : new DhariwalUNet(ctx, (DhariwalUNetOptions)options); }
        catch (ArgumentException e) { throw new CheckpointException($"{path}: {modelType} with these options cannot be built here: {e.Message}", e); }
        try
        {
            var tensors = new OrderedDictionary<string, HostTensor>();
            foreach (var (name, t) in TorchFile.StateDict(precond, "")) tensors.Add(name, t.ToHost(name));
            if (kind == PrecondKind.Iddpm) CheckIddpmTable(tensors, path);
            Weights.Load(net.Module, tensors, path, "model.");
            var extra = tensors.Keys.FirstOrDefault(k => !k.StartsWith("model.", StringComparison.Ordinal) && !(kind == PrecondKind.Iddpm && k == "u"));
            if (extra is not null) throw new CheckpointException($"{path}: unexpected tensor '{extra}' outside the network; {precond.ClassName} has none");
            return new Precond(net, kind, sigmaData);
        }
        catch
        {
            net.Dispose();
            throw;
        }
    }

    // iDDPMPrecond keeps its noise levels u_0..u_M as the buffer 'u'; they must be the ones our
    // preconditioner rounds sigma to (edm computes them in float32; the tolerance covers that).
    static void CheckIddpmTable(IReadOnlyDictionary<string, HostTensor> tensors, string path)
    {
        if (!tensors.TryGetValue("u", out var u)) throw new CheckpointException($"{path}: iDDPMPrecond without its 'u' buffer (the table of noise levels)");
        var ours = Sampling.TimeSteps.IddpmU(Precond.M);
        if (u.Data.Length != ours.Length) throw new CheckpointException($"{path}: iDDPMPrecond's 'u' has {u.Data.Length} entries, {ours.Length} expected (M = {Precond.M})");
        for (int j = 0; j < ours.Length; j++)
            if (Math.Abs(u.Data[j] - ours[j]) > 1e-5 * Math.Max(1, Math.Abs(ours[j])))
                throw new CheckpointException($"{path}: iDDPMPrecond's u[{j}] = {u.Data[j]}, but C_1, C_2 and M give {ours[j]:G9}; the file was made with other settings");
    }

    static SongUNetOptions SongOptions(Kwargs kw, int res, int cin, int cout, int labelDim)
    {
        var d = new SongUNetOptions();
        return d with
        {
            ImgResolution = res, InChannels = cin, OutChannels = cout, LabelDim = labelDim,
            AugmentDim = kw.Int("augment_dim", d.AugmentDim),
            ModelChannels = kw.Int("model_channels", d.ModelChannels),
            ChannelMult = kw.Ints("channel_mult", d.ChannelMult),
            ChannelMultEmb = kw.Int("channel_mult_emb", d.ChannelMultEmb),
            NumBlocks = kw.Int("num_blocks", d.NumBlocks),
            AttnResolutions = kw.Ints("attn_resolutions", d.AttnResolutions),
            Dropout = kw.Double("dropout", d.Dropout),
            LabelDropout = kw.Double("label_dropout", d.LabelDropout),
            EmbeddingType = kw.Choice("embedding_type", "positional", ["positional", "fourier"]) == "fourier" ? EmbeddingType.Fourier : EmbeddingType.Positional,
            ChannelMultNoise = kw.Int("channel_mult_noise", d.ChannelMultNoise),
            EncoderType = kw.Choice("encoder_type", "standard", ["standard", "skip", "residual"]) switch
            {
                "skip" => EncoderType.Skip, "residual" => EncoderType.Residual, _ => EncoderType.Standard,
            },
            DecoderType = kw.Choice("decoder_type", "standard", ["standard", "skip"]) == "skip" ? DecoderType.Skip : DecoderType.Standard,
            ResampleFilter = kw.Ints("resample_filter", [1, 1]).Select(v => (float)v).ToArray(),
        };
    }

    static DhariwalUNetOptions DhariwalOptions(Kwargs kw, int res, int cin, int cout, int labelDim)
    {
        var d = new DhariwalUNetOptions();
        return d with
        {
            ImgResolution = res, InChannels = cin, OutChannels = cout, LabelDim = labelDim,
            AugmentDim = kw.Int("augment_dim", d.AugmentDim),
            ModelChannels = kw.Int("model_channels", d.ModelChannels),
            ChannelMult = kw.Ints("channel_mult", d.ChannelMult),
            ChannelMultEmb = kw.Int("channel_mult_emb", d.ChannelMultEmb),
            NumBlocks = kw.Int("num_blocks", d.NumBlocks),
            AttnResolutions = kw.Ints("attn_resolutions", d.AttnResolutions),
            Dropout = kw.Double("dropout", d.Dropout),
            LabelDropout = kw.Double("label_dropout", d.LabelDropout),
            ChannelsPerHead = 64,                                      // fixed in edm's DhariwalUNet
        };
    }

    /// <summary>Reads constructor keyword arguments, remembering which were used so that the rest can be refused by name.</summary>
    sealed class Kwargs(PyDict d, string where)
    {
        readonly HashSet<string> _used = new(StringComparer.Ordinal);

        object? Get(string key, out bool present)
        {
            _used.Add(key);
            present = d.TryGet(key, out var v);
            return v;
        }

        CheckpointException Bad(string key, object? v, string want) =>
            new($"{where}: {key} = {Unpickler.Describe(v)}{(v is long or double or string or bool ? $" ({Convert.ToString(v, CultureInfo.InvariantCulture)})" : "")}; expected {want}");

        public int Int(string key, int? def)
        {
            var v = Get(key, out bool present);
            if (!present) return def ?? throw new CheckpointException($"{where}: the keyword argument {key} is missing");
            return v is long l && l is >= int.MinValue and <= int.MaxValue ? (int)l : throw Bad(key, v, "an integer");
        }

        public double Double(string key, double def)
        {
            var v = Get(key, out bool present);
            if (!present) return def;
            return v switch { double x => x, long l => l, _ => throw Bad(key, v, "a number") };
        }

        public bool Bool(string key, bool def)
        {
            var v = Get(key, out bool present);
            return !present ? def : v is bool b ? b : throw Bad(key, v, "True or False");
        }

        public string Str(string key, string def)
        {
            var v = Get(key, out bool present);
            return !present ? def : v as string ?? throw Bad(key, v, "a string");
        }

        public string Choice(string key, string def, string[] allowed)
        {
            var s = Str(key, def);
            return allowed.Contains(s) ? s : throw new CheckpointException($"{where}: {key} = '{s}' is not supported; allowed: {string.Join(", ", allowed)}");
        }

        public int[] Ints(string key, int[] def)
        {
            var v = Get(key, out bool present);
            if (!present) return def;
            IEnumerable<object?> items = v switch { List<object?> l => l, object?[] t => t, _ => throw Bad(key, v, "a list of integers") };
            return items.Select(x => x is long l && l is >= int.MinValue and <= int.MaxValue ? (int)l : throw Bad(key, v, "a list of integers")).ToArray();
        }

        /// <summary>A setting this engine supports only at its default: refused with the value found when it differs.</summary>
        public void Require(string key, double expected)
        {
            double got = Double(key, expected);
            if (!(got == expected || Math.Abs(got - expected) <= 1e-12 * Math.Abs(expected)))
                throw new CheckpointException($"{where}: {key} = {got.ToString("R", CultureInfo.InvariantCulture)} is not supported; this engine implements " +
                                              $"{key} = {expected.ToString("R", CultureInfo.InvariantCulture)} (NVlabs/edm's default)");
        }

        public void RejectUnused()
        {
            var unused = d.StringKeys.Where(k => !_used.Contains(k)).ToList();
            if (unused.Count > 0)
                throw new CheckpointException($"{where}: unsupported keyword argument{(unused.Count > 1 ? "s" : "")} {string.Join(", ", unused)}; " +
                                              $"supported: {string.Join(", ", _used.Order(StringComparer.Ordinal))}");
        }
    }
}

// `model --preset NAME`: builds a preset network and prints its layer table and parameter count.
using System.CommandLine;
using Edm.Model.Networks;
using Edm.Model.Modules;

namespace Edm.Bench.Cli;

/// <summary>The model command.</summary>
public sealed class ModelCommand : IBenchCommand
{
    /// <inheritdoc/>
    public Command Build()
    {
        var device = CommonOptions.Device();
        var preset = new Option<string>("--preset") { Description = $"Network preset: {Presets.Names}", Required = true };
        var labels = new Option<int>("--label-dim") { Description = "Number of classes (default 0: unconditional)", DefaultValueFactory = _ => 0 };
        var augment = new Option<int>("--augment-dim") { Description = "Augment label dimension (0 or 9; 9 adds a bias-free Linear(9, noise channels))", DefaultValueFactory = _ => 0 };
        var res = new Option<int?>("--resolution") { Description = "Image resolution (default: the preset's)" };
        var channels = new Option<int?>("--channels") { Description = "Image channels (default: the preset's)" };
        var layers = new Option<bool>("--layers") { Description = "Print every parameter tensor, not only the per-module summary" };
        var cmd = new Command("model", "Print a preset network's layer table and parameter count");
        foreach (var o in new Option[] { device, preset, labels, augment, res, channels, layers }) cmd.Options.Add(o);
        cmd.SetAction(p => CliErrors.Guard(() =>
        {
            using var dev = CommonOptions.OpenDevice(p.GetValue(device));
            using var net = Presets.Create(p.GetValue(preset)!, new InitContext(dev), p.GetValue(res), p.GetValue(channels),
                p.GetValue(labels), p.GetValue(augment));
            var m = net.Module;
            Console.WriteLine($"{p.GetValue(preset)}: {m.GetType().Name}, {net.ImgResolution}x{net.ImgResolution}x{net.InChannels}, " +
                              $"label_dim {net.LabelDim}, augment_dim {net.AugmentDim}");
            Console.WriteLine($"{"module / parameter",-48} {"type / shape",-28} {"parameters",12}");
            foreach (var (name, mod) in m.NamedModules())
            {
                if (mod is ModuleDict) continue;
                long own = mod.NamedParameters().Sum(x => (long)x.Param.Value.Length);
                bool leaf = !mod.NamedModules().Any();
                if (!p.GetValue(layers) && !(mod is UNetBlock || (leaf && !name.Contains("block") && !name.Contains("_up") && !name.Contains("_down") && !name.Contains("_in"))))
                    continue;
                Console.WriteLine($"{name,-48} {mod.GetType().Name,-28} {own,12:N0}");
                if (p.GetValue(layers) && leaf)
                    foreach (var (pn, pv) in mod.NamedParameters(name + "."))
                        Console.WriteLine($"  {pn,-46} {Edm.Kernels.Shapes.Format(pv.Shape),-28} {pv.Value.Length,12:N0}");
            }
            long total = m.ParameterCount();
            Console.WriteLine($"total parameters: {total} ({total / 1e6:F2}M)");
            return 0;
        }));
        return cmd;
    }
}

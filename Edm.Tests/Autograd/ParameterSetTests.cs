// ParameterSet (Edm.Autograd/ParameterSet.cs): packing keeps the values and makes views, and a
// training step over the flat buffers (one launch per update) is bitwise the step over the tensors.
using Edm.Autograd;
using Edm.Kernels;
using Edm.Model;
using Edm.Model.Modules;
using Edm.Model.Networks;
using Edm.Verification;
using Xunit;

namespace Edm.Tests.Autograd;

[Collection("cpu-device")]
public sealed class ParameterSetTests(CpuDevice fx) : IClassFixture<CpuDevice>
{
    readonly EdmDevice _device = fx.Device;

    [Fact]
    public void Packing_keeps_the_values_and_turns_values_and_gradients_into_views()
    {
        int[][] shapes = [[5], [2, 3], [4, 4, 1], [17]];
        var ps = shapes.Select((s, i) => Variable.Parameter(Tensor.FromArray(_device, Compare.Random((int)Shapes.Count(s), 30 + i), s))).ToArray();
        try
        {
            var before = ps.Select(p => p.Value.ToArray()).ToArray();
            for (int i = 0; i < ps.Length; i++) ps[i].Grad.CopyFrom(Compare.Random(ps[i].Value.Length, 60 + i));
            var gradsBefore = ps.Select(p => p.Grad.ToArray()).ToArray();
            using var set = ParameterSet.Pack(ps);

            // Offsets 0, 16, 32, 48: each start aligned to 16 floats; 48 + 17 elements in all.
            Assert.Equal([0, 16, 32, 48], Enumerable.Range(0, ps.Length).Select(set.Offset));
            Assert.Equal(65, set.FlatLength);
            var flat = set.Values.ToArray();
            var flatGrad = set.Grads.ToArray();
            for (int i = 0; i < ps.Length; i++)
            {
                Assert.Equal(before[i], ps[i].Value.ToArray());
                Assert.Equal(before[i], flat.AsSpan(set.Offset(i), before[i].Length).ToArray());
                Assert.Equal(gradsBefore[i], flatGrad.AsSpan(set.Offset(i), before[i].Length).ToArray());
                Assert.Equal(shapes[i], ps[i].Shape);
            }
            Assert.All(flat.AsSpan(5, 11).ToArray(), x => Assert.Equal(0f, x));  // the gap after parameter 0

            // Views: a write to the flat buffer is seen by the parameter, and the reverse.
            using (var plus = Ops.AddScalar(set.Values, 1f)) Ops.CopyInto(plus, set.Values);
            Assert.Equal(before[1].Select(x => x + 1f), ps[1].Value.ToArray());
            ps[3].Grad.CopyFrom(Enumerable.Repeat(2f, 17).ToArray());
            Assert.Equal(2f, set.Grads.ToArray()[48 + 16]);
            set.ZeroGrad();
            Assert.All(ps, p => Assert.All(p.Grad.ToArray(), g => Assert.Equal(0f, g)));
        }
        finally
        {
            foreach (var p in ps) p.Dispose();
        }
    }

    [Fact]
    public void Packing_refuses_what_it_cannot_pack()
    {
        using var a = Variable.Parameter(Tensor.Zeros(_device, 3), "a");
        using var frozen = new Variable(Tensor.Zeros(_device, 3), name: "frozen");
        var ex = Assert.Throws<ArgumentException>(() => ParameterSet.Pack([]));
        Assert.Contains("no parameters", ex.Message);
        ex = Assert.Throws<ArgumentException>(() => ParameterSet.Pack([a, a]));
        Assert.Contains("'a' (3) appears twice", ex.Message);
        ex = Assert.Throws<ArgumentException>(() => ParameterSet.Pack([a, frozen]));
        Assert.Contains("'frozen' (3) is not a trainable leaf", ex.Message);
    }

    // Three training steps of the tiny DDPM++ (8x8, batch 2): loss, backward, nan_to_num, Adam,
    // EMA. Once over the parameter tensors (one launch each) and once over a packed set (one
    // launch in all): parameters, moments and EMA must agree bit for bit.
    // On the CPU fast paths (the network's kernel path takes minutes on the CPU accelerator; the
    // kernel-path updates are checked over random gradients below).
    [Fact]
    public void A_training_step_over_the_flat_buffers_equals_the_step_over_the_tensors()
    {
        var (perTensor, m1, e1) = Train(packed: false);
        var (packed, m2, e2) = Train(packed: true);
        Assert.Equal(perTensor.Length, packed.Length);
        for (int i = 0; i < perTensor.Length; i++)
        {
            Assert.Equal(perTensor[i], packed[i]);
            Assert.Equal(m1[i], m2[i]);
            Assert.Equal(e1[i], e2[i]);
        }
    }

    // The kernel path's update launches over the flat buffers (gaps included) against per tensor:
    // random gradients with non-finite entries, three nan_to_num + Adam steps.
    [Fact]
    public void Kernel_path_updates_over_the_flat_buffers_equal_the_updates_per_tensor()
    {
        int[][] shapes = [[3], [5, 7], [33]];
        float[][] Run(bool packed)
        {
            var ps = shapes.Select((s, i) => Variable.Parameter(Tensor.FromArray(_device, Compare.Random((int)Shapes.Count(s), 40 + i), s))).ToArray();
            try
            {
                using var set = packed ? ParameterSet.Pack(ps) : null;
                using var adam = set is null ? new Adam(ps) : new Adam(set);
                for (int step = 0; step < 3; step++)
                {
                    for (int i = 0; i < ps.Length; i++)
                    {
                        var g = Compare.Random(ps[i].Value.Length, 100 * step + i, -2, 2);
                        g[0] = step == 1 ? float.NaN : float.NegativeInfinity;
                        ps[i].Grad.CopyFrom(g);
                    }
                    if (set is null) Edm.Autograd.Training.NanToNumGrads(ps);
                    else Edm.Autograd.Training.NanToNumGrads(set);
                    adam.Step(1e-2f);
                }
                return ps.Select(p => p.Value.ToArray()).Concat(adam.FirstMoments.Select(m => m.ToArray())).ToArray();
            }
            finally
            {
                foreach (var p in ps) p.Dispose();
            }
        }
        try
        {
            _device.CpuFastPaths = false;
            var a = Run(false);
            var b = Run(true);
            for (int i = 0; i < a.Length; i++) Assert.Equal(a[i], b[i]);
            Assert.NotEqual(Compare.Random(3, 40), a[0]);  // the parameters moved
        }
        finally
        {
            _device.CpuFastPaths = true;
        }
    }

    (float[][] Params, float[][] Moments, float[][] Ema) Train(bool packed)
    {
        var net = Presets.Create("ddpmpp-tiny", new InitContext(_device, 0), 8, channels: 1, labelDim: 0);
        using var precond = new Precond(net, PrecondKind.Edm);
        net.Module.Train();
        var ps = net.Module.Parameters().ToArray();
        var initial = ps.Select(p => p.Value.ToArray()).ToArray();
        using var set = packed ? ParameterSet.Pack(ps) : null;
        using var adam = set is null ? new Adam(ps) : new Adam(set);
        // EMA as Trainer keeps it: a flat copy updated in one launch, or one copy per tensor.
        using var emaFlat = set?.CopyOfValues();
        var ema = emaFlat?.Views.ToArray() ?? ps.Select(p => Ops.Copy(p.Value)).ToArray();
        using var y = new Variable(Tensor.FromArray(_device, Compare.Random(2 * 64, 5), 2, 1, 8, 8));
        try
        {
            for (int step = 0; step < 3; step++)
            {
                adam.ZeroGrad();
                using (new TensorScope())
                    Losses.Compute(precond, y, null, null, new LossSettings(), seed: 3, stream: (ulong)step).Backward();
                if (set is null) Edm.Autograd.Training.NanToNumGrads(ps);
                else Edm.Autograd.Training.NanToNumGrads(set);
                adam.Step(1e-3f);
                if (set is null) Ops.EmaUpdate(ema, ps.Select(p => p.Value).ToArray(), 0.9f);
                else Ops.EmaUpdate([emaFlat!.Flat], [set.Values], 0.9f);
            }
            // The step moved the parameters (a no-op update would pass the comparison).
            Assert.NotEqual(initial[0], ps[0].Value.ToArray());
            return (ps.Select(p => p.Value.ToArray()).ToArray(), adam.SecondMoments.Select(m => m.ToArray()).ToArray(),
                ema.Select(e => e.ToArray()).ToArray());
        }
        finally
        {
            if (emaFlat is null) foreach (var e in ema) e.Dispose();
        }
    }
}

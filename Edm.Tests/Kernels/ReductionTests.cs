using Edm.Verification;
using Edm.Kernels;
using Xunit;

namespace Edm.Tests.Kernels;

// The reductions (sum, mean, max, sum of squares over any axis set) against float64 references (the same checks `verify` runs), over more shapes, on both
// the CPU fast path and the ILGPU kernels (CpuFastPaths = false).
[Collection("cpu-device")]
public sealed class ReductionTests(CpuDevice cpu) : BothPathsTests(cpu), IClassFixture<CpuDevice>
{
    public static TheoryData<int[], int[]> ReduceCases => new()
    {
        { [1], [] },
        { [1], [0] },
        { [7], [0] },
        { [3, 5], [0] },
        { [3, 5], [1] },
        { [3, 5], [0, 1] },
        { [2, 3, 4, 5], [0, 2, 3] }, // per-channel (bias gradient layout)
        { [2, 3, 4, 5], [1] },
        { [2, 3, 4, 5], [-1] },
        { [2, 3, 4, 5], [1, 3] },
        { [3, 1, 17, 2, 1, 3], [0, 2, 5] },
        { [100003], [] },
    };

    [Theory, MemberData(nameof(ReduceCases))]
    public void Reductions_over_any_axis_set_match_float64(int[] shape, int[] axes) => BothPaths(d =>
    {
        foreach (var k in ElementwiseVerify.ReduceKinds) Pass(ElementwiseVerify.Reduce(d, k, shape, axes));
    });

    [Fact]
    public void A_gpu_sized_grid_reduces_through_the_middle_pass()
    {
        // With a GPU's grid (more than 1,024 lanes per output) pass 1's partials are combined down
        // to 1,024 lanes before the final pass; on the CPU accelerator's kernels at 4,096 threads.
        int keep = _d.GridThreads;
        _d.CpuFastPaths = false;
        _d.GridThreads = 4096;
        try
        {
            foreach (var k in ElementwiseVerify.ReduceKinds)
            {
                Pass(ElementwiseVerify.Reduce(_d, k, [20011], []));
                Pass(ElementwiseVerify.Reduce(_d, k, [2, 9001], [1]));
            }
        }
        finally
        {
            _d.GridThreads = keep;
            _d.CpuFastPaths = true;
        }
    }

    [Fact]
    public void Reduction_keepdims_and_sumto_shapes()
    {
        using var scope = new TensorScope();
        var x = Tensor.FromArray(_d, Compare.Random(2 * 3 * 4, 1), 2, 3, 4);
        Assert.Equal([1, 3, 1], Ops.Sum(x, [0, 2], keepDims: true).Shape);
        Assert.Equal([3], Ops.Sum(x, [0, 2]).Shape);
        Assert.Equal([1], Ops.Sum(x).Shape);
        var st = Ops.SumTo(x, [3, 1]);
        Assert.Equal([3, 1], st.Shape);
        var expect = Ops.Sum(x, [0, 2]).ToArray();
        Assert.Equal(expect, st.ToArray());
        Assert.Throws<ArgumentException>(() => Ops.SumTo(x, [5]));
        Assert.Throws<ArgumentException>(() => Ops.Sum(x, [3]));
        Assert.Throws<ArgumentException>(() => Ops.Sum(x, [1, 1]));
    }
}

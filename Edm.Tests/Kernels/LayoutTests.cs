using Edm.Verification;
using Edm.Kernels;
using Xunit;

namespace Edm.Tests.Kernels;

// The layout kernels (concat, slice, permute) against float64 references (the same checks `verify` runs), over more shapes, on both
// the CPU fast path and the ILGPU kernels (CpuFastPaths = false).
[Collection("cpu-device")]
public sealed class LayoutTests(CpuDevice cpu) : BothPathsTests(cpu), IClassFixture<CpuDevice>
{
    [Fact]
    public void Concat_slice_roundtrip_match_reference() => BothPaths(d =>
    {
        Pass(ElementwiseVerify.Concat(d, 0, [1, 3], [2, 3]));
        Pass(ElementwiseVerify.Concat(d, 1, [2, 3, 5], [2, 4, 5]));
        Pass(ElementwiseVerify.Concat(d, 2, [2, 3, 1], [2, 3, 7]));
        Pass(ElementwiseVerify.Slice(d, 0, [5, 2], 1, 3));
        Pass(ElementwiseVerify.Slice(d, 2, [3, 4, 11, 2], 3, 5));
        Pass(ElementwiseVerify.Slice(d, 3, [3, 4, 11, 2], 1, 1));
    });

    [Fact]
    public void Permute_matches_reference() => BothPaths(d =>
    {
        Pass(ElementwiseVerify.Permute(d, [2, 3, 5, 7], [0, 3, 1, 2]));
        Pass(ElementwiseVerify.Permute(d, [3, 4], [1, 0]));
        // The tiled-transpose CPU path (last two output axes transpose the unit-stride axis): the
        // attention block's two permutes, with sides that are not multiples of the 8 x 8 tile.
        Pass(ElementwiseVerify.Permute(d, [6, 10, 3, 20], [2, 0, 3, 1]));
        Pass(ElementwiseVerify.Permute(d, [5, 20, 12], [0, 2, 1]));
        Pass(ElementwiseVerify.Permute(d, [1, 2, 1, 3, 2, 2], [5, 4, 3, 2, 1, 0]));
        Assert.Throws<ArgumentException>(() => Ops.Permute(Tensor.Zeros(d, 2, 3), 0, 0));
    });
}

using Edm.Verification;
using Edm.Kernels;
using Xunit;

namespace Edm.Tests.Kernels;

// The elementwise kernels (broadcasting binary ops, unary ops and activations, where, axpy) against float64 references (the same checks `verify` runs), over more shapes, on both
// the CPU fast path and the ILGPU kernels (CpuFastPaths = false).
[Collection("cpu-device")]
public sealed class ElementwiseTests(CpuDevice cpu) : BothPathsTests(cpu), IClassFixture<CpuDevice>
{
    public static TheoryData<int[], int[]> BroadcastShapes => new()
    {
        { [1], [1] },
        { [7], [7] },
        { [3, 5, 7], [3, 5, 7] },
        { [2, 3, 17, 9], [3, 1, 1] },
        { [4, 1], [1, 6] },
        { [1, 1, 1, 5], [3, 2, 4, 1] },
        { [5], [2, 3, 5] },
        { [2, 1, 3, 1, 2, 3], [1, 4, 3, 1, 1, 3] },
        // Long runs (the CPU fast path's run-by-run broadcast): embedding, bias, per-sample factors.
        { [4, 6, 8, 8], [4, 6, 1, 1] },
        { [3, 5, 9, 11], [1, 5, 1, 1] },
        { [6, 2, 5, 4], [6, 1, 1, 1] },
        { [2, 3, 40], [1, 3, 40] },
        { [2, 1, 16], [1, 3, 1] },
    };

    [Theory, MemberData(nameof(BroadcastShapes))]
    public void Binary_ops_broadcast_like_numpy(int[] sa, int[] sb) => BothPaths(d =>
    {
        foreach (var op in ElementwiseVerify.BinaryOps)
        {
            Pass(ElementwiseVerify.Binary(d, op, sa, sb));
            Pass(ElementwiseVerify.Binary(d, op, sb, sa));
        }
    });

    [Theory]
    [InlineData(1)]
    [InlineData(31)]
    [InlineData(4099)]
    public void Unary_ops_and_activations_match_float64(int n) => BothPaths(d =>
    {
        foreach (var op in ElementwiseVerify.UnaryOps) Pass(ElementwiseVerify.Unary(d, op, [n]));
        foreach (var op in ElementwiseVerify.GradOps) Pass(ElementwiseVerify.Grad(d, op, [n, 2]));
    });

    [Fact]
    public void Where_and_axpy_match_float64() => BothPaths(d =>
    {
        Pass(ElementwiseVerify.Where(d, [4, 1, 9], [4, 7, 9], [7, 1]));
        Pass(ElementwiseVerify.Where(d, [1], [3, 2], [2]));
        Pass(ElementwiseVerify.Axpy(d, [1]));
        Pass(ElementwiseVerify.Axpy(d, [3, 333]));
    });
}

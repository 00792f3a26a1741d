// TEMPORARY until main's Ops land: same-shape CPU-only stand-ins. Deleted on merge.
namespace Edm.Kernels;
public static partial class Ops
{
    public static Tensor Add(Tensor a, Tensor b)
    {
        var y = Tensor.Empty(a.Device, a.Shape);
        var ys = y.CpuSpan(); var xa = a.CpuSpan(); var xb = b.CpuSpan();
        for (int i = 0; i < ys.Length; i++) ys[i] = xa[i] + xb[i];
        return y;
    }
    public static void Axpy(float a, Tensor x, Tensor y)
    {
        var ys = y.CpuSpan(); var xs = x.CpuSpan();
        for (int i = 0; i < ys.Length; i++) ys[i] += a * xs[i];
    }
}

// Index arithmetic shared by kernels and their CPU fast paths: a tensor of rank <= 6 seen
// through arbitrary element strides (0 for a broadcast dimension), and a parallel-chunk helper.
using System.Runtime.CompilerServices;

namespace Edm.Kernels;

/// <summary>
/// Dimensions D0..D5 (outermost first, padded on the left with 1) with element strides S0..S5.
/// <see cref="Offset"/> maps a linear row-major index over the dimensions to an element offset.
/// A readonly struct so kernels take it by value (ILGPU: no arrays in kernel parameters).
/// </summary>
public readonly struct StridedIndex
{
    /// <summary>Maximum supported rank.</summary>
    public const int MaxRank = 6;
    /// <summary>Dimensions, outermost first.</summary>
    public readonly int D0, D1, D2, D3, D4, D5;
    /// <summary>Element strides of the dimensions (0 for a broadcast dimension).</summary>
    public readonly int S0, S1, S2, S3, S4, S5;

    /// <summary>An index over dimensions d0..d5 with element strides s0..s5.</summary>
    public StridedIndex(int d0, int d1, int d2, int d3, int d4, int d5, int s0, int s1, int s2, int s3, int s4, int s5)
    {
        D0 = d0; D1 = d1; D2 = d2; D3 = d3; D4 = d4; D5 = d5;
        S0 = s0; S1 = s1; S2 = s2; S3 = s3; S4 = s4; S5 = s5;
    }

    /// <summary>Builds from dims and strides of equal length (at most 6), right-aligned.</summary>
    public static StridedIndex Create(string op, ReadOnlySpan<int> dims, ReadOnlySpan<int> strides)
    {
        if (dims.Length > MaxRank)
            throw new ArgumentException($"{op}: rank {dims.Length} is not supported; at most {MaxRank} dimensions");
        Span<int> d = stackalloc int[MaxRank];
        Span<int> s = stackalloc int[MaxRank];
        d.Fill(1); s.Clear();
        int pad = MaxRank - dims.Length;
        for (int i = 0; i < dims.Length; i++) { d[pad + i] = dims[i]; s[pad + i] = strides[i]; }
        return new StridedIndex(d[0], d[1], d[2], d[3], d[4], d[5], s[0], s[1], s[2], s[3], s[4], s[5]);
    }

    /// <summary>
    /// Strides that read an input of shape <paramref name="input"/> broadcast to <paramref name="output"/>
    /// (stride 0 along broadcast dimensions).
    /// </summary>
    public static StridedIndex Broadcast(string op, ReadOnlySpan<int> output, ReadOnlySpan<int> input)
    {
        var inStrides = Shapes.ContiguousStrides(input);
        var s = new int[output.Length];
        int pad = output.Length - input.Length;
        for (int i = 0; i < output.Length; i++)
        {
            int k = i - pad;
            s[i] = k < 0 || input[k] == 1 ? 0 : inStrides[k];
        }
        return Create(op, output, s);
    }

    /// <summary>Element offset of the linear index <paramref name="i"/>.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public int Offset(int i)
    {
        int q5 = i / D5; int c5 = i - q5 * D5;
        int q4 = q5 / D4; int c4 = q5 - q4 * D4;
        int q3 = q4 / D3; int c3 = q4 - q3 * D3;
        int q2 = q3 / D2; int c2 = q3 - q2 * D2;
        int q1 = q2 / D1; int c1 = q2 - q1 * D1;
        int c0 = q1 - (q1 / D0) * D0;
        return c0 * S0 + c1 * S1 + c2 * S2 + c3 * S3 + c4 * S4 + c5 * S5;
    }

    /// <summary>Product of the dimensions.</summary>
    public int Count => D0 * D1 * D2 * D3 * D4 * D5;
}

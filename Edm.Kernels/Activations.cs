// Activations and their derivatives, elementwise over contiguous tensors.
//   GELU (erf form):  y = x Phi(x) = 0.5 x (1 + erf(x / sqrt 2));   y' = Phi(x) + x phi(x)
//   GELU (tanh form): y = 0.5 x (1 + tanh(u)), u = sqrt(2/pi) (x + 0.044715 x^3)
//                     y' = 0.5 (1 + t) + 0.5 x (1 - t^2) sqrt(2/pi) (1 + 3 * 0.044715 x^2)
//   SiLU:             y = x sigma(x);  y' = sigma(x) (1 + x (1 - sigma(x)))
// The backward ops take (x, dy) and return dy * f'(x).
// Variants: v1 grid-stride kernels through Ops.Map / Ops.Zip; v2 CPU fast path (plain C# loop of
// the same operator struct over a few parallel chunks); v3 the operators' SIMD forms
// (System.Numerics.Vector; exp by VecMath.Exp, float32 arithmetic) in the CPU fast path.
using System.Numerics;
using System.Runtime.CompilerServices;

namespace Edm.Kernels;

/// <summary>Scalar math usable inside kernels and on the host.</summary>
public static class KMath
{
    /// <summary>GELU (erf form): x Phi(x) = x (1 + erf(x / sqrt 2)) / 2.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static float Gelu(float x) => 0.5f * x * (1f + Erf(x * InvSqrt2));

    /// <summary>
    /// erf(x) by Abramowitz and Stegun 7.1.26 (|error| &lt;= 1.5e-7, below float32 resolution
    /// of the results it feeds), odd extension for x &lt; 0.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static float Erf(float x)
    {
        float ax = MathF.Abs(x);
        float t = 1f / (1f + 0.3275911f * ax);
        float poly = t * (0.254829592f + t * (-0.284496736f + t * (1.421413741f + t * (-1.453152027f + t * 1.061405429f))));
        float r = 1f - poly * MathF.Exp(-ax * ax);
        return x < 0 ? -r : r;
    }

    /// <summary>erf on a SIMD vector: the same A&amp;S 7.1.26 formula as <see cref="Erf(float)"/>.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector<float> Erf(Vector<float> x)
    {
        var ax = Vector.Abs(x);
        var t = Vector<float>.One / (Vector<float>.One + new Vector<float>(0.3275911f) * ax);
        var poly = t * (new Vector<float>(0.254829592f) + t * (new Vector<float>(-0.284496736f) + t * (new Vector<float>(1.421413741f)
                   + t * (new Vector<float>(-1.453152027f) + t * new Vector<float>(1.061405429f)))));
        var r = Vector<float>.One - poly * VecMath.Exp(-(ax * ax));
        return Vector.ConditionalSelect(Vector.LessThan(x, Vector<float>.Zero), -r, r);
    }

    /// <summary>Logistic sigmoid on a SIMD vector.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector<float> Sigmoid(Vector<float> x) => Vector<float>.One / (Vector<float>.One + VecMath.Exp(-x));

    /// <summary>tanh on a SIMD vector via exp, as <see cref="Tanh(float)"/>.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector<float> Tanh(Vector<float> x)
    {
        var e = VecMath.Exp(new Vector<float>(-2f) * Vector.Abs(x));
        var r = (Vector<float>.One - e) / (Vector<float>.One + e);
        return Vector.ConditionalSelect(Vector.LessThan(x, Vector<float>.Zero), -r, r);
    }

    /// <summary>Logistic sigmoid.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static float Sigmoid(float x) => 1f / (1f + MathF.Exp(-x));

    /// <summary>tanh via exp (stable for large |x|).</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static float Tanh(float x)
    {
        float e = MathF.Exp(-2f * MathF.Abs(x));
        float r = (1f - e) / (1f + e);
        return x < 0 ? -r : r;
    }

    /// <summary>1 / sqrt(2).</summary>
    public const float InvSqrt2 = 0.70710678118654752f;
    /// <summary>1 / sqrt(2 pi).</summary>
    public const float InvSqrt2Pi = 0.39894228040143268f;
    /// <summary>sqrt(2 / pi).</summary>
    public const float Sqrt2OverPi = 0.79788456080286536f;
}

#pragma warning disable CS1591 // operator structs: the name says it all
public readonly struct GeluOp : IUnaryOp, IVectorUnaryOp
{
    public float Apply(float x) => KMath.Gelu(x);
    public Vector<float> Apply(Vector<float> x) => new Vector<float>(0.5f) * x * (Vector<float>.One + KMath.Erf(x * new Vector<float>(KMath.InvSqrt2)));
}
public readonly struct GeluGradOp : IBinaryOp, IVectorBinaryOp
{
    // (x, dy) -> dy * (Phi(x) + x phi(x))
    public float Apply(float x, float dy) =>
        dy * (0.5f * (1f + KMath.Erf(x * KMath.InvSqrt2)) + x * KMath.InvSqrt2Pi * MathF.Exp(-0.5f * x * x));
    public Vector<float> Apply(Vector<float> x, Vector<float> dy) =>
        dy * (new Vector<float>(0.5f) * (Vector<float>.One + KMath.Erf(x * new Vector<float>(KMath.InvSqrt2)))
              + x * new Vector<float>(KMath.InvSqrt2Pi) * VecMath.Exp(new Vector<float>(-0.5f) * x * x));
}
public readonly struct GeluTanhOp : IUnaryOp, IVectorUnaryOp
{
    public float Apply(float x) => 0.5f * x * (1f + KMath.Tanh(KMath.Sqrt2OverPi * (x + 0.044715f * x * x * x)));
    public Vector<float> Apply(Vector<float> x) =>
        new Vector<float>(0.5f) * x * (Vector<float>.One + KMath.Tanh(new Vector<float>(KMath.Sqrt2OverPi) * (x + new Vector<float>(0.044715f) * x * x * x)));
}
public readonly struct GeluTanhGradOp : IBinaryOp
{
    public float Apply(float x, float dy)
    {
        float t = KMath.Tanh(KMath.Sqrt2OverPi * (x + 0.044715f * x * x * x));
        return dy * (0.5f * (1f + t) + 0.5f * x * (1f - t * t) * KMath.Sqrt2OverPi * (1f + 3f * 0.044715f * x * x));
    }
}
public readonly struct SiluOp : IUnaryOp, IVectorUnaryOp
{
    public float Apply(float x) => x * KMath.Sigmoid(x);
    public Vector<float> Apply(Vector<float> x) => x * KMath.Sigmoid(x);
}
public readonly struct SiluGradOp : IBinaryOp, IVectorBinaryOp
{
    public float Apply(float x, float dy)
    {
        float s = KMath.Sigmoid(x);
        return dy * s * (1f + x * (1f - s));
    }
    public Vector<float> Apply(Vector<float> x, Vector<float> dy)
    {
        var s = KMath.Sigmoid(x);
        return dy * s * (Vector<float>.One + x * (Vector<float>.One - s));
    }
}
public readonly struct ReluOp : IUnaryOp, IVectorUnaryOp
{
    public float Apply(float x) => x > 0f ? x : 0f;
    public Vector<float> Apply(Vector<float> x) => Vector.Max(x, Vector<float>.Zero);
}
/// <summary>dy where x &gt; 0, else 0 (PyTorch's threshold_backward at 0: the gradient at x = 0 is 0).</summary>
public readonly struct ReluGradOp : IBinaryOp, IVectorBinaryOp
{
    public float Apply(float x, float dy) => x > 0f ? dy : 0f;
    public Vector<float> Apply(Vector<float> x, Vector<float> dy) => Vector.ConditionalSelect(Vector.GreaterThan(x, Vector<float>.Zero), dy, Vector<float>.Zero);
}
#pragma warning restore CS1591

public static partial class Ops
{
    /// <summary>ReLU: max(x, 0).</summary>
    public static Tensor Relu(Tensor x) => Map(x, new ReluOp(), "Relu");
    /// <summary>dy where x &gt; 0, else 0.</summary>
    public static Tensor ReluBackward(Tensor x, Tensor dy) => SameShapeZip(x, dy, new ReluGradOp(), "ReluBackward");
    /// <summary>GELU, erf form.</summary>
    public static Tensor Gelu(Tensor x) => Map(x, new GeluOp(), "Gelu");
    /// <summary>GELU, tanh approximation.</summary>
    public static Tensor GeluTanh(Tensor x) => Map(x, new GeluTanhOp(), "GeluTanh");
    /// <summary>SiLU (swish): x sigmoid(x).</summary>
    public static Tensor Silu(Tensor x) => Map(x, new SiluOp(), "Silu");
    /// <summary>dy * GELU'(x).</summary>
    public static Tensor GeluBackward(Tensor x, Tensor dy) => SameShapeZip(x, dy, new GeluGradOp(), "GeluBackward");
    /// <summary>dy * GELU_tanh'(x).</summary>
    public static Tensor GeluTanhBackward(Tensor x, Tensor dy) => SameShapeZip(x, dy, new GeluTanhGradOp(), "GeluTanhBackward");
    /// <summary>dy * SiLU'(x).</summary>
    public static Tensor SiluBackward(Tensor x, Tensor dy) => SameShapeZip(x, dy, new SiluGradOp(), "SiluBackward");

    static Tensor SameShapeZip<TOp>(Tensor x, Tensor dy, TOp op, string name) where TOp : struct, IBinaryOp
    {
        Shapes.RequireEqual(name, "dy", x.Shape, dy.Shape);
        return Zip(x, dy, op, name);
    }
}

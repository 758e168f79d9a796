#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// The expert's element-wise non-linearity φ.
public enum Activation: String, NamedOption {
  /// max(0, x)
  case relu
  /// x · Φ(x) with the exact error function.
  case gelu
  /// 0.5 · x · (1 + tanh(√(2/π) · (x + 0.044715 · x³))).
  case geluTanh = "gelu_tanh"
  /// x · σ(x)
  case silu

  @inlinable public func apply(_ x: Float) -> Float {
    switch self {
    case .relu: return x > 0 ? x : (x.isNaN ? x : 0)
    case .gelu: return 0.5 * x * (1 + erff(x * 0.70710678118654752))
    case .geluTanh:
      return 0.5 * x * (1 + tanhf(0.79788456080286536 * (x + 0.044715 * x * x * x)))
    case .silu: return x / (1 + expf(-x))
    }
  }
}

/// Plain: y = W2 · φ(W1 · x + b1) + b2 (the paper's Eq. 1).
/// Gated: y = W2 · (φ(W1 · x + b1) ⊙ (W3 · x + b3)) + b2 (Mixtral, Qwen, DeepSeek).
public enum ExpertForm: String, NamedOption {
  case plain, gated
}

import MoECore

/// One expert tensor of a layer, in the canonical (FlashMoE) naming: w1/w3 [D, H], w2 [H, D] and
/// their biases b1/b3 [D], b2 [H].
public enum ExpertTensor: String, CaseIterable, Sendable {
  case w1, w2, w3, b1, b2, b3

  /// The matrix this tensor belongs to (w1 for b1, ...).
  public var matrix: ExpertTensor {
    switch self {
    case .w1, .b1: return .w1
    case .w2, .b2: return .w2
    case .w3, .b3: return .w3
    }
  }

  public var isBias: Bool { self == .b1 || self == .b2 || self == .b3 }
}

/// How a checkpoint names an MoE layer's tensors. A prefix such as `model.layers.3.` is put in
/// front of every name.
///
/// | preset | gate | expert e, w1 / w2 / w3 |
/// | --- | --- | --- |
/// | canonical | `gate.weight` | `experts.{e}.w1.weight` / `w2` / `w3` |
/// | mixtral | `block_sparse_moe.gate.weight` | `block_sparse_moe.experts.{e}.w1.weight` / `w2` / `w3` |
/// | qwen | `mlp.gate.weight` | `mlp.experts.{e}.gate_proj.weight` / `down_proj` / `up_proj` |
///
/// Biases replace `.weight` by `.bias`.
public enum NamePreset: String, NamedOption {
  case canonical, mixtral, qwen

  /// The module path of the layer, before `gate.` and `experts.`.
  private var module: String {
    switch self {
    case .canonical: return ""
    case .mixtral: return "block_sparse_moe."
    case .qwen: return "mlp."
    }
  }

  /// The gate (router) weight [E, H].
  public func gateName(prefix: String = "") -> String { prefix + module + "gate.weight" }

  /// The names of every expert's tensors begin with this, followed by the expert index and a dot.
  public func expertsPrefix(prefix: String = "") -> String { prefix + module + "experts." }

  /// The name of `tensor` of expert `expert`.
  public func name(_ tensor: ExpertTensor, expert: Int, prefix: String = "") -> String {
    let linear: String
    switch (self, tensor.matrix) {
    case (.qwen, .w1): linear = "gate_proj"
    case (.qwen, .w2): linear = "down_proj"
    case (.qwen, .w3): linear = "up_proj"
    default: linear = tensor.matrix.rawValue
    }
    return expertsPrefix(prefix: prefix) + "\(expert).\(linear)." + (tensor.isBias ? "bias" : "weight")
  }
}

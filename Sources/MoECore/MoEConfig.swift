/// How many (token, expert) pairs an expert accepts from one source GPU.
public enum Capacity: Hashable, Codable, Sendable, CustomStringConvertible {
  /// C = ceil(factor · k · S / E) slots per expert and source GPU; later pairs are dropped.
  case factor(Double)
  /// Every pair is kept.
  case dropless

  public var description: String {
    switch self {
    case .factor(let f): return "capacity factor \(f)"
    case .dropless: return "dropless"
    }
  }

  /// JSON: the factor as a number, or the string "dropless".
  public init(from decoder: any Decoder) throws {
    let container = try decoder.singleValueContainer()
    if let factor = try? container.decode(Double.self) {
      self = .factor(factor)
    } else if try container.decode(String.self) == "dropless" {
      self = .dropless
    } else {
      throw DecodingError.dataCorruptedError(in: container, debugDescription: "capacity: expected a number or \"dropless\"")
    }
  }

  public func encode(to encoder: any Encoder) throws {
    var container = encoder.singleValueContainer()
    switch self {
    case .factor(let f): try container.encode(f)
    case .dropless: try container.encode("dropless")
    }
  }
}

/// The shape and semantics of one MoE layer (docs/SEMANTICS.md defines what each field means).
public struct MoEConfig: Hashable, Codable, Sendable {
  /// S: tokens per GPU.
  public var tokens: Int
  /// H: the token embedding width.
  public var hidden: Int
  /// D: the expert FFN's intermediate width.
  public var ffn: Int
  /// E: experts in the layer (over all GPUs).
  public var experts: Int
  /// k: experts each token is routed to.
  public var topK: Int
  public var capacity: Capacity
  public var activation: Activation
  public var expertForm: ExpertForm
  /// Whether the expert linears carry biases (b1, b2 and, gated, b3).
  public var biases: Bool
  /// Renormalise the k picked probabilities to sum to one (Eq. 2–3), or use them raw.
  public var renormalize: Bool
  public var dtype: DType
  public var math: Math

  public init(
    tokens: Int, hidden: Int, ffn: Int, experts: Int, topK: Int,
    capacity: Capacity = .factor(1.0), activation: Activation = .gelu,
    expertForm: ExpertForm = .plain, biases: Bool = true, renormalize: Bool = true,
    dtype: DType = .fp32, math: Math = .fp32
  ) {
    self.tokens = tokens
    self.hidden = hidden
    self.ffn = ffn
    self.experts = experts
    self.topK = topK
    self.capacity = capacity
    self.activation = activation
    self.expertForm = expertForm
    self.biases = biases
    self.renormalize = renormalize
    self.dtype = dtype
    self.math = math
  }

  /// Largest accepted value of any size, so that products of sizes stay far from Int overflow.
  public static let maxDimension = 1 << 24

  /// Rejects every invalid value or combination, naming the field.
  public func validate() throws(ConfigError) {
    for (field, value) in [("tokens", tokens), ("hidden", hidden), ("ffn", ffn), ("experts", experts)] {
      guard value >= 1, value <= Self.maxDimension else {
        throw ConfigError(field: field, value: value, expected: "an integer in 1...\(Self.maxDimension)")
      }
    }
    guard topK >= 1, topK <= experts else {
      throw ConfigError(field: "topk", value: topK, expected: "an integer in 1...\(experts) (1 ≤ k ≤ experts)")
    }
    if case .factor(let f) = capacity {
      guard f.isFinite, f > 0 else {
        throw ConfigError(field: "capacity-factor", value: f, expected: "a finite number > 0 (or dropless)")
      }
      guard f * Double(topK) * Double(tokens) / Double(experts) <= Double(Self.maxDimension) else {
        throw ConfigError(field: "capacity-factor", value: f, expected: "a factor giving at most \(Self.maxDimension) slots per expert")
      }
    }
    if math == .tf32 && dtype != .fp32 {
      throw ConfigError(field: "math", value: "tf32", expected: "fp32 with dtype \(dtype.rawValue) (tf32 applies to fp32 storage only)")
    }
    // Elements of the largest tensor (the experts' W1) must be addressable with room to spare.
    let weightElements = experts.multipliedReportingOverflow(by: ffn).partialValue
      .multipliedReportingOverflow(by: hidden)
    guard !weightElements.overflow, weightElements.partialValue <= 1 << 40 else {
      throw ConfigError(field: "experts × ffn × hidden", value: "\(experts) × \(ffn) × \(hidden)", expected: "at most 2^40 weight elements")
    }
  }

  /// C for `tokens` tokens per source GPU, or nil when dropless.
  public var expertCapacity: Int? { expertCapacity(tokens: tokens) }

  /// C for another token count per source GPU (a GPU layer runs any S up to its maximum), or nil
  /// when dropless.
  public func expertCapacity(tokens: Int) -> Int? {
    guard case .factor(let f) = capacity else { return nil }
    return Self.capacity(factor: f, topK: topK, tokens: tokens, experts: experts)
  }

  /// C = ceil(factor · k · S / E), computed so that exact products (1.0 · 2 · 4096 / 8) are exact.
  public static func capacity(factor: Double, topK: Int, tokens: Int, experts: Int) -> Int {
    let exact = factor * Double(topK * tokens) / Double(experts)
    let c = Int(exact.rounded(.up))
    // Guard against 1024.0000000001 from an inexact factor such as 1.1: allow a relative slack of 1e-12.
    if Double(c - 1) >= exact * (1 - 1e-12) { return max(c - 1, 0) }
    return c
  }

  /// FLOPs of one forward pass on the routed pairs (2 per multiply-add), gate included.
  public func flops(routedPairs: Int) -> Double {
    let gate = 2.0 * Double(tokens) * Double(hidden) * Double(experts)
    let matrices = expertForm == .gated ? 3.0 : 2.0
    return gate + 2.0 * matrices * Double(routedPairs) * Double(hidden) * Double(ffn)
  }
}

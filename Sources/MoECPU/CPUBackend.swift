import MoECore

/// Why the CPU backend cannot run here.
public struct CPUBackendError: Error, CustomStringConvertible, Sendable {
  public let description: String
}

/// The pure-Swift backend: the default on machines without a GPU and the oracle that every GPU result
/// is checked against. It computes docs/SEMANTICS.md exactly, grouping tokens per expert and running
/// each expert's two GEMMs as cache-blocked SIMD GEMMs on all cores.
public struct CPUBackend: Sendable {
  public let threads: Int

  public init(threads: Int = CPUFeatures.activeCores) throws(CPUBackendError) {
    guard CPUFeatures.hasAVX2FMA else {
      throw CPUBackendError(description: "the CPU backend needs an x86-64 CPU with AVX2 and FMA (not found in /proc/cpuinfo)")
    }
    self.threads = max(1, threads)
  }

  /// What one forward pass produced.
  public struct Result: Sendable {
    /// [tokens, hidden], values of the storage dtype.
    public var output: [Float]
    public var routing: Routing
    /// The gate's logits [tokens, E] (fp32), for near-tie analysis when comparing backends.
    public var logits: [Float]
  }

  /// Runs the layer on `input` ([groups · S, H], values of the storage dtype).
  ///
  /// - Parameter groups: source GPUs the tokens are spread over (capacity is counted per group);
  ///   1 for a single GPU.
  public func forward(config: MoEConfig, weights: MoEWeights, input: [Float], groups: Int = 1) throws -> Result {
    try config.validate()
    try weights.check(against: config)
    guard groups >= 1 else { throw ConfigError(field: "gpus", value: groups, expected: "at least 1") }
    let tokens = config.tokens * groups
    guard input.count == tokens * config.hidden else {
      throw ConfigError(field: "input", value: "\(input.count) values", expected: "\(tokens) × \(config.hidden) = \(tokens * config.hidden) values")
    }
    let logits = gateLogits(input: input, tokens: tokens, weights: weights)
    let routing = Router.route(
      logits: logits, tokens: tokens, experts: config.experts, topK: config.topK,
      renormalize: config.renormalize, capacity: config.expertCapacity, groups: groups)
    let output = experts(config: config, weights: weights, input: input, routing: routing)
    return Result(output: output, routing: routing, logits: logits)
  }

  /// The gate's logits alone (for counting routed pairs in GPU benchmarks).
  public func gateLogitsForCounting(input: [Float], tokens: Int, weights: MoEWeights) -> [Float] {
    gateLogits(input: input, tokens: tokens, weights: weights)
  }

  /// ℓ = x · Wgᵀ in fp32.
  func gateLogits(input: [Float], tokens: Int, weights: MoEWeights) -> [Float] {
    var logits = [Float](repeating: 0, count: tokens * weights.experts)
    input.withUnsafeBufferPointer { x in
      weights.gate.withUnsafeBufferPointer { wg in
        logits.withUnsafeMutableBufferPointer { l in
          let problem = GEMMProblem(
            m: tokens, n: weights.experts, k: weights.hidden,
            a: x.baseAddress!, lda: weights.hidden, b: wg.baseAddress!, ldb: weights.hidden,
            c: l.baseAddress!, ldc: weights.experts)
          gemmNT([problem], threads: threads)
        }
      }
    }
    return logits
  }
}

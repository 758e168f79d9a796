import MoECPU
import MoECUDA

/// One MoE layer: a configuration, its weights and the backend that runs it.
///
/// The layer is immutable and `Sendable`, safe to call from many tasks: concurrent calls to
/// `forward` on the CPU backend run independently (each call has its own workspaces); on the CUDA
/// backend they are serialised (one engine, one set of device buffers, one stream; a caller that
/// wants forwards to overlap makes one layer per stream or GPU).
public final class MoELayer: Sendable {
  public let config: MoEConfig
  public let weights: MoEWeights
  /// The backend that runs this layer (`auto` resolved).
  public let backend: BackendChoice
  private let cpu: CPUBackend
  /// The GPU engine when the backend is CUDA.
  public let cuda: CUDAMoE?

  /// - Throws: `ConfigError` for an invalid configuration or weights that do not fit it,
  ///   `BackendUnavailable` when the chosen backend cannot run here.
  /// - Parameters:
  ///   - maxTokens: the most tokens a forward may pass on the GPU (default: `config.tokens`); any
  ///     count up to it runs without recompiling.
  ///   - gpu: the GPU index for the CUDA backend.
  public init(
    config: MoEConfig, weights: MoEWeights, backend: BackendChoice = .auto, threads: Int? = nil,
    maxTokens: Int? = nil, gpu: Int = 0
  ) throws {
    try config.validate()
    try weights.checkShapes()
    try weights.check(against: config)
    if config.biases != weights.hasBiases {
      throw ConfigError(
        field: "biases", value: config.biases ? "on" : "off",
        expected: "\(weights.hasBiases ? "on" : "off") as in the weights")
    }
    self.backend = try Backends.resolve(backend)
    self.cpu = try CPUBackend(threads: threads ?? CPUFeatures.activeCores)
    self.config = config
    var weights = weights
    weights.round(to: config.dtype)
    self.weights = weights
    if self.backend == .cuda {
      try CUDAMoE.checkSupported(config)
      self.cuda = try CUDAMoE(config: config, weights: weights, maxTokens: maxTokens, deviceIndex: gpu)
    } else {
      self.cuda = nil
    }
  }

  /// What one forward pass produced.
  public struct Output: Sendable {
    /// [S·groups, H] in the storage dtype's values.
    public var values: [Float]
    public var routing: Routing
    /// The gate's logits [tokens, E] (CPU backend only; empty on the GPU).
    public var logits: [Float] = []
    /// Wall time of the forward pass.
    public var seconds: Double
  }

  /// Runs the forward pass on `input` ([S·groups, H] row-major). Values are first rounded to the
  /// layer's dtype (as storing them in that dtype would).
  public func forward(_ input: [Float], groups: Int = 1) throws -> Output {
    var x = input
    x.round(to: config.dtype)
    let clock = ContinuousClock()
    let start = clock.now
    if let cuda {
      guard groups == 1 else { throw ConfigError(field: "gpus", value: groups, expected: "1 for the single-GPU CUDA backend") }
      let tokens = x.count / config.hidden
      guard tokens * config.hidden == x.count else {
        throw ConfigError(field: "input", value: "\(x.count) values", expected: "a multiple of hidden = \(config.hidden)")
      }
      let values = try cuda.forward(x, tokens: tokens)
      let elapsed = clock.now - start
      let routing = try cuda.lastRouting(tokens: tokens)
      return Output(values: values, routing: Routing(gpuExperts: routing.expert, rows: routing.row, tokens: tokens, config: config), logits: [], seconds: elapsed.seconds)
    }
    let result = try cpu.forward(config: config, weights: weights, input: x, groups: groups)
    let elapsed = clock.now - start
    return Output(values: result.output, routing: result.routing, logits: result.logits, seconds: elapsed.seconds)
  }
}


extension Routing {
  /// The GPU's routing in the CPU's terms: experts and kept flags (weights and slots are not read
  /// back; slots are marked 0 for kept pairs).
  public init(gpuExperts: [Int32], rows: [Int32], tokens: Int, config: MoEConfig) {
    self.init(
      tokens: tokens, experts: config.experts, topK: config.topK, expert: gpuExperts,
      weight: [Float](repeating: .nan, count: gpuExperts.count), slot: rows.map { $0 >= 0 ? 0 : -1 })
  }
}

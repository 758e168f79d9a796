import MoECPU

/// One MoE layer: a configuration, its weights and the backend that runs it.
///
/// The layer is immutable and `Sendable`; concurrent calls to `forward` on the CPU backend run
/// independently (each call has its own workspaces).
public final class MoELayer: Sendable {
  public let config: MoEConfig
  public let weights: MoEWeights
  /// The backend that runs this layer (`auto` resolved).
  public let backend: BackendChoice
  private let cpu: CPUBackend

  /// - Throws: `ConfigError` for an invalid configuration or weights that do not fit it,
  ///   `BackendUnavailable` when the chosen backend cannot run here.
  public init(config: MoEConfig, weights: MoEWeights, backend: BackendChoice = .auto, threads: Int? = nil) throws {
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
  }

  /// What one forward pass produced.
  public struct Output: Sendable {
    /// [S·groups, H] in the storage dtype's values.
    public var values: [Float]
    public var routing: Routing
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
    let result = try cpu.forward(config: config, weights: weights, input: x, groups: groups)
    let elapsed = clock.now - start
    return Output(values: result.output, routing: result.routing, seconds: elapsed.seconds)
  }
}

extension Duration {
  /// The duration in seconds as a Double.
  public var seconds: Double {
    let (s, attoseconds) = components
    return Double(s) + Double(attoseconds) * 1e-18
  }
}

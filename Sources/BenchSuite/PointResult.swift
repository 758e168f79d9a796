/// Everything measured at one point, and what follows from it.
public struct PointResult: Codable, Equatable, Sendable {
  public var point: SuitePoint
  public var sweeps: [Sweep]
  /// The device FlashMoE ran on (one GPU's name; P GPUs of it for P > 1), or the CPU.
  public var card: String?
  public var flashmoe: Timing?
  /// Why FlashMoE has no timing here (the suite goes on with the next point).
  public var flashmoeError: String?
  public var baseline: BaselineTiming?
  /// Why the baseline has no timing here; nil with `baseline` nil means it was not asked for.
  public var baselineMissing: String?
  /// Tokens per second over all GPUs, T · N / median latency (the paper's Figure 10).
  public var tokensPerSecond: Double?
  public var baselineTokensPerSecond: Double?
  /// Baseline median / FlashMoE median.
  public var speedup: Double?
  /// Weak-scaling efficiency T(1) / T(N) on the GPU sweep, and the paper's T(2) / T(N).
  public var efficiency: Double?
  public var efficiencyVs2: Double?
  public var baselineEfficiency: Double?
  public var baselineEfficiencyVs2: Double?

  public init(
    point: SuitePoint, sweeps: [Sweep], card: String?, flashmoe: Timing?, flashmoeError: String? = nil,
    baseline: BaselineOutcome?
  ) {
    self.point = point
    self.sweeps = sweeps
    self.card = card
    self.flashmoe = flashmoe
    self.flashmoeError = flashmoeError
    switch baseline {
    case .measured(let timing): self.baseline = timing
    case .missing(let reason): baselineMissing = reason
    case nil: break
    }
    let tokens = Double(point.tokensPerGPU * point.gpus)
    tokensPerSecond = flashmoe.map { tokens / ($0.medianMs / 1e3) }
    baselineTokensPerSecond = self.baseline.map { tokens / ($0.medianMs / 1e3) }
    if let ours = flashmoe, let theirs = self.baseline { speedup = theirs.medianMs / ours.medianMs }
  }

  /// The baseline's median, if it ran here.
  public var baselineMs: Double? { baseline?.medianMs }
}

import MoECore

/// A whole suite run: how it was measured and every point's results (the JSON file's contents).
public struct SuiteReport: Codable, Equatable, Sendable {
  /// Bumped when a field changes meaning, so that scripts reading old files can tell.
  public var version = 1
  public var grid: SuiteGrid
  /// `cuda` or `cpu`.
  public var backend: String
  /// The device name (the first point's): charts and tables name it.
  public var card: String
  public var gpusAvailable: Int
  /// The layer's semantics besides its sizes (activation, expert form, capacity…).
  public var layer: String
  /// GEMM math of the fp32 points (`fp32` or `tf32`); other dtypes use tensor cores as they are.
  public var fp32Math: String
  public var warmup: Int
  public var runs: Int
  /// The baseline command (python and script) when one was asked for.
  public var baseline: String?
  public var notes: [String]
  public var results: [PointResult]

  public init(
    plan: SuitePlan, backend: String, gpusAvailable: Int, layer: String, fp32Math: String, warmup: Int, runs: Int,
    baseline: String?, results: [PointResult], notes: [String] = []
  ) {
    grid = plan.grid
    self.backend = backend
    card = results.lazy.compactMap(\.card).first ?? backend
    self.gpusAvailable = gpusAvailable
    self.layer = layer
    self.fp32Math = fp32Math
    self.warmup = warmup
    self.runs = runs
    self.baseline = baseline
    self.notes = plan.notes + notes
    var annotated = results
    WeakScaling.annotate(&annotated)
    self.results = annotated
  }

  /// The dtypes in the order they were run.
  public var dtypes: [DType] {
    results.map(\.point.dtype).reduce(into: []) { if !$0.contains($1) { $0.append($1) } }
  }

  /// `dtype`'s points of `sweep`, in the sweep's x order.
  public func results(_ sweep: Sweep, dtype: DType) -> [PointResult] {
    results.filter { $0.point.dtype == dtype && $0.sweeps.contains(sweep) }.sorted { a, b in
      switch sweep {
      case .tokens: return a.point.tokensPerGPU < b.point.tokensPerGPU
      case .experts: return a.point.experts < b.point.experts
      case .gpus: return a.point.gpus < b.point.gpus
      }
    }
  }

  /// "bf16", or "fp32 (tf32 math)" where the fp32 points ran on tf32.
  public func dtypeLabel(_ dtype: DType) -> String {
    dtype == .fp32 && fp32Math != "fp32" ? "fp32 (\(fp32Math) math)" : dtype.rawValue
  }
}

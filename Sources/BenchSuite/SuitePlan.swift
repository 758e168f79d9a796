import MoECore

/// A point to measure and the sweeps (figures) it appears in.
public struct PlannedPoint: Codable, Equatable, Sendable {
  public var point: SuitePoint
  public var sweeps: [Sweep]

  public init(point: SuitePoint, sweeps: [Sweep]) {
    self.point = point
    self.sweeps = sweeps
  }
}

/// Which points a suite measures on a machine with a given number of GPUs.
///
/// A point shared by two sweeps (16K tokens at the base expert count is in Figures 8 and 12) is
/// measured once. Expert parallelism puts E / P experts on each GPU, so a GPU count that does not
/// divide E is left out, and said so in `notes`.
public struct SuitePlan: Equatable, Sendable {
  public let grid: SuiteGrid
  public let dtypes: [DType]
  /// The GPU sweep's counts: 1 … `gpusAvailable`, those that divide the base expert count.
  public let gpuCounts: [Int]
  /// The GPU count of the tokens and experts sweeps: the most GPUs the base experts divide over.
  public let fullGPUs: Int
  /// Grouped by dtype (in the order given), then by layer, tokens ascending: consecutive points
  /// share one compiled layer wherever they can.
  public let points: [PlannedPoint]
  public let notes: [String]

  public init(grid: SuiteGrid, dtypes: [DType], gpusAvailable: Int) throws(ConfigError) {
    guard !dtypes.isEmpty else { throw ConfigError(field: "dtypes", value: "''", expected: "one or more of \(DType.allowedNames)") }
    guard Set(dtypes).count == dtypes.count else {
      throw ConfigError(field: "dtypes", value: "'\(dtypes.map(\.rawValue).joined(separator: ","))'", expected: "each dtype once")
    }
    guard gpusAvailable >= 1 else { throw ConfigError(field: "gpus", value: gpusAvailable, expected: "≥ 1") }
    var notes: [String] = []
    let base = grid.baseExperts
    let counts = (1...gpusAvailable).filter { base % $0 == 0 }
    let skippedCounts = (1...gpusAvailable).filter { base % $0 != 0 }
    if !skippedCounts.isEmpty {
      let list = skippedCounts.map(String.init).joined(separator: ", ")
      notes.append("GPU counts \(list) left out: E = \(base) experts do not divide over them")
    }
    let full = counts.max()!
    let experts = grid.experts.filter { $0 % full == 0 && $0 >= grid.topK }
    let skippedExperts = grid.experts.filter { !experts.contains($0) }
    if !skippedExperts.isEmpty {
      let list = skippedExperts.map(String.init).joined(separator: ", ")
      notes.append("experts \(list) left out: they do not divide over \(full) GPUs or are fewer than k = \(grid.topK)")
    }
    if !grid.isPaper {
      notes.append("reduced grid '\(grid.name)' (H = \(grid.hidden), D = \(grid.ffn)): not the paper's sizes")
    }

    var points: [PlannedPoint] = []
    for dtype in dtypes {
      var sweeps: [SuitePoint: Set<Sweep>] = [:]
      for t in grid.tokens {
        sweeps[SuitePoint(dtype: dtype, gpus: full, tokensPerGPU: t, experts: base), default: []].insert(.tokens)
      }
      for e in experts {
        sweeps[SuitePoint(dtype: dtype, gpus: full, tokensPerGPU: grid.expertsTokens, experts: e), default: []].insert(.experts)
      }
      for p in counts {
        sweeps[SuitePoint(dtype: dtype, gpus: p, tokensPerGPU: grid.scalingTokens, experts: base), default: []].insert(.gpus)
      }
      let ordered = sweeps.keys.sorted { a, b in (a.gpus, a.experts, a.tokensPerGPU) < (b.gpus, b.experts, b.tokensPerGPU) }
      points += ordered.map { PlannedPoint(point: $0, sweeps: sweeps[$0]!.sorted()) }
    }
    self.grid = grid
    self.dtypes = dtypes
    self.gpuCounts = counts
    self.fullGPUs = full
    self.points = points
    self.notes = notes
  }

  /// The most tokens per GPU any point of `layer` runs: the size its engine is built for.
  public func maxTokens(for layer: LayerKey) -> Int {
    points.filter { $0.point.layer == layer }.map(\.point.tokensPerGPU).max() ?? 0
  }
}

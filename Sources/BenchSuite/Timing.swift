/// Statistics of one point's timed runs, in milliseconds.
public struct Timing: Codable, Equatable, Sendable {
  /// The middle run; with an even count, the mean of the two middle runs.
  public var medianMs: Double
  public var meanMs: Double
  public var minMs: Double
  public var runs: Int

  public init(medianMs: Double, meanMs: Double, minMs: Double, runs: Int) {
    self.medianMs = medianMs
    self.meanMs = meanMs
    self.minMs = minMs
    self.runs = runs
  }

  /// nil when there are no runs or a time is not a positive finite number (nothing to report).
  public init?(milliseconds times: [Double]) {
    guard !times.isEmpty, times.allSatisfy({ $0.isFinite && $0 > 0 }) else { return nil }
    let sorted = times.sorted()
    let n = sorted.count
    medianMs = n % 2 == 1 ? sorted[n / 2] : (sorted[n / 2 - 1] + sorted[n / 2]) / 2
    meanMs = sorted.reduce(0, +) / Double(n)
    minMs = sorted[0]
    runs = n
  }
}

/// The PyTorch baseline's best implementation at a point (the script times each of its impls).
public struct BaselineTiming: Codable, Equatable, Sendable {
  public var medianMs: Double
  /// `loop` or `grouped` (the script's names).
  public var impl: String

  public init(medianMs: Double, impl: String) {
    self.medianMs = medianMs
    self.impl = impl
  }
}

/// What running the baseline at a point gave.
public enum BaselineOutcome: Equatable, Sendable {
  case measured(BaselineTiming)
  /// The reason, shown in the table's notes and kept in the JSON.
  case missing(String)
}

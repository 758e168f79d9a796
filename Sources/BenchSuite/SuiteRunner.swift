/// FlashMoE's timings at one point, from whatever engine the caller runs.
public struct Measurement: Sendable {
  public var milliseconds: [Double]
  public var card: String

  public init(milliseconds: [Double], card: String) {
    self.milliseconds = milliseconds
    self.card = card
  }
}

/// Walks a plan: times FlashMoE at every point, then (once FlashMoE's engines are released, so
/// that the two never share a GPU's memory or time) runs the baseline at every point.
///
/// A failure at one point (an engine that cannot be built, a baseline that crashes) is recorded
/// in that point's result and the walk goes on: one bad size must not cost a long run's results.
public struct SuiteRunner {
  public enum Event {
    case measuring(index: Int, of: Int, SuitePoint)
    /// FlashMoE's result at a point (its baseline fields not filled yet).
    case measured(index: Int, of: Int, PointResult)
    case baseline(index: Int, of: Int, SuitePoint)
    case baselineDone(index: Int, of: Int, SuitePoint, BaselineOutcome)
  }

  public var plan: SuitePlan
  /// Times FlashMoE at a point; `maxTokens` is the most tokens per GPU its layer will be asked for.
  public var measure: (SuitePoint, _ maxTokens: Int) throws -> Measurement
  /// Called after the last FlashMoE point, before the first baseline run: free the GPUs.
  public var release: () -> Void
  public var baseline: ((SuitePoint) -> BaselineOutcome)?
  public var report: (Event) -> Void

  public init(
    plan: SuitePlan, measure: @escaping (SuitePoint, Int) throws -> Measurement, release: @escaping () -> Void = {},
    baseline: ((SuitePoint) -> BaselineOutcome)?, report: @escaping (Event) -> Void = { _ in }
  ) {
    self.plan = plan
    self.measure = measure
    self.release = release
    self.baseline = baseline
    self.report = report
  }

  public func run() -> [PointResult] {
    let count = plan.points.count
    var results: [PointResult] = []
    for (i, planned) in plan.points.enumerated() {
      let point = planned.point
      report(.measuring(index: i + 1, of: count, point))
      var timing: Timing?, card: String?, failure: String?
      do {
        let m = try measure(point, plan.maxTokens(for: point.layer))
        card = m.card
        timing = Timing(milliseconds: m.milliseconds)
        if timing == nil { failure = "no usable times (\(m.milliseconds.count) runs, each must be > 0 ms)" }
      } catch {
        failure = "\(error)"
      }
      let result = PointResult(point: point, sweeps: planned.sweeps, card: card, flashmoe: timing, flashmoeError: failure, baseline: nil)
      report(.measured(index: i + 1, of: count, result))
      results.append(result)
    }
    release()
    guard let baseline else { return results }
    return results.enumerated().map { i, r in
      report(.baseline(index: i + 1, of: count, r.point))
      let outcome = baseline(r.point)
      report(.baselineDone(index: i + 1, of: count, r.point, outcome))
      return PointResult(point: r.point, sweeps: r.sweeps, card: r.card, flashmoe: r.flashmoe, flashmoeError: r.flashmoeError, baseline: outcome)
    }
  }
}

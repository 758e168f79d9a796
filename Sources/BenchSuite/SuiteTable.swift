/// The report as rows for a plain-text table, and the notes under it.
public enum SuiteTable {
  /// Per dtype, each sweep's points in its x order, as the figures show them (a point in two sweeps
  /// is listed under both).
  public static func rows(_ report: SuiteReport) -> [[String]] {
    var rows = [[
      "dtype", "sweep", "GPUs", "tokens/GPU", "experts", "median ms", "mean ms", "PyTorch ms", "speedup",
      "MTokens/s", "eff. T1/TN",
    ]]
    for dtype in report.dtypes {
      for sweep in Sweep.allCases {
        rows += report.results(sweep, dtype: dtype).map { row($0, sweep: sweep, report: report) }
      }
    }
    return rows
  }

  static func row(_ r: PointResult, sweep: Sweep, report: SuiteReport) -> [String] {
    let ours = r.flashmoe.map { [NumberText.fixed($0.medianMs, 3), NumberText.fixed($0.meanMs, 3)] } ?? ["failed", ""]
    let theirs = r.baseline.map { "\(NumberText.fixed($0.medianMs, 3)) (\($0.impl))" }
      ?? (r.baselineMissing == nil ? "-" : "missing")
    let efficiency = sweep == .gpus ? r.efficiency.map { NumberText.fixed($0, 2) } ?? "-" : ""
    return [report.dtypeLabel(r.point.dtype), sweep.rawValue, "\(r.point.gpus)", "\(r.point.tokensPerGPU)", "\(r.point.experts)"]
      + ours
      + [theirs, r.speedup.map { NumberText.fixed($0, 2) + "×" } ?? "-",
         r.tokensPerSecond.map { NumberText.fixed($0 / 1e6, 2) } ?? "-", efficiency]
  }

  /// The plan's notes, then each distinct failure once with the points it hit.
  public static func notes(_ report: SuiteReport) -> [String] {
    var lines = report.notes
    func grouped(_ label: String, _ reason: (PointResult) -> String?) {
      var order: [String] = []
      var points: [String: [String]] = [:]
      for r in report.results {
        guard let why = reason(r) else { continue }
        if points[why] == nil { order.append(why) }
        points[why, default: []].append(r.point.description)
      }
      for why in order { lines.append("\(label) at \(points[why]!.joined(separator: "; ")): \(why)") }
    }
    grouped("FlashMoE failed", \.flashmoeError)
    grouped("PyTorch baseline missing", \.baselineMissing)
    return lines
  }
}

import MoECore

/// A chart to write: its file name and SVG text.
public struct FigureFile: Sendable {
  public var name: String
  public var svg: String
}

/// The paper's §4 figures drawn from a report, one SVG per figure per dtype, FlashMoE against the
/// PyTorch baseline wherever it ran:
/// Figure 8 (latency vs tokens per GPU), 10 (throughput vs GPUs), 11 (latency and weak-scaling
/// efficiency vs GPUs) and 12 (latency vs experts).
public enum SuiteFigures {
  static let flashmoeStyle = (name: "FlashMoE", color: "#d62728")
  static let baselineStyle = (name: "PyTorch (torch_moe.py, best impl)", color: "#1f77b4")

  public static func all(_ report: SuiteReport) -> [FigureFile] {
    report.dtypes.flatMap { dtype in
      [
        FigureFile(name: "fig08-latency-vs-tokens-\(dtype.rawValue).svg", svg: latencyVsTokens(report, dtype).render()),
        FigureFile(name: "fig10-throughput-vs-gpus-\(dtype.rawValue).svg", svg: throughputVsGPUs(report, dtype).render()),
        FigureFile(name: "fig11-weak-scaling-\(dtype.rawValue).svg", svg: weakScaling(report, dtype).render()),
        FigureFile(name: "fig12-latency-vs-experts-\(dtype.rawValue).svg", svg: latencyVsExperts(report, dtype).render()),
      ]
    }
  }

  static func latencyVsTokens(_ report: SuiteReport, _ dtype: DType) -> SVGFigure {
    let rows = report.results(.tokens, dtype: dtype)
    let gpus = rows.first?.point.gpus ?? 1
    return SVGFigure(
      title: "Forward latency vs tokens per GPU (the paper's Figure 8)",
      subtitle: subtitle(report, dtype, gpus: gpus, sizes: "E = \(report.grid.baseExperts)"),
      panels: [
        panel(
          "Latency, \(device(report, gpus))", rows, x: { Double($0.point.tokensPerGPU) }, scale: .log2,
          tick: { NumberText.tokens($0.point.tokensPerGPU) }, xLabel: "Tokens per GPU", yLabel: "Forward latency (ms)",
          ours: { $0.flashmoe?.medianMs }, theirs: \.baselineMs, unit: "ms")
      ])
  }

  static func latencyVsExperts(_ report: SuiteReport, _ dtype: DType) -> SVGFigure {
    let rows = report.results(.experts, dtype: dtype)
    let gpus = rows.first?.point.gpus ?? 1
    return SVGFigure(
      title: "Forward latency vs experts (the paper's Figure 12)",
      subtitle: subtitle(report, dtype, gpus: gpus, sizes: "T = \(NumberText.tokens(report.grid.expertsTokens)) per GPU"),
      panels: [
        panel(
          "Latency, \(device(report, gpus))", rows, x: { Double($0.point.experts) }, scale: .log2,
          tick: { "\($0.point.experts)" }, xLabel: "Experts (total over all GPUs)", yLabel: "Forward latency (ms)",
          ours: { $0.flashmoe?.medianMs }, theirs: \.baselineMs, unit: "ms")
      ])
  }

  static func throughputVsGPUs(_ report: SuiteReport, _ dtype: DType) -> SVGFigure {
    let rows = report.results(.gpus, dtype: dtype)
    return SVGFigure(
      title: "Throughput vs GPUs, T·N / latency (the paper's Figure 10)",
      subtitle: subtitle(report, dtype, gpus: nil, sizes: scalingSizes(report)),
      panels: [
        panel(
          "Throughput, \(report.card)", rows, x: { Double($0.point.gpus) }, scale: .linear,
          tick: { "\($0.point.gpus)" }, xLabel: "GPUs", yLabel: "Throughput (MTokens/s)",
          ours: { $0.tokensPerSecond.map { $0 / 1e6 } }, theirs: { $0.baselineTokensPerSecond.map { $0 / 1e6 } },
          unit: "MTokens/s")
      ])
  }

  static func weakScaling(_ report: SuiteReport, _ dtype: DType) -> SVGFigure {
    let rows = report.results(.gpus, dtype: dtype)
    let gpusTick: (PointResult) -> String = { "\($0.point.gpus)" }
    var efficiency = panel(
      "(b) Weak-scaling efficiency T(1) / T(N)", rows, x: { Double($0.point.gpus) }, scale: .linear, tick: gpusTick,
      xLabel: "GPUs", yLabel: "Efficiency", ours: \.efficiency, theirs: \.baselineEfficiency, unit: "")
    efficiency.reference = (1, "ideal")
    if rows.count > 0, !rows.contains(where: { $0.point.gpus == 1 }) {
      efficiency.note = "no 1-GPU point: efficiency needs T(1)"
    }
    return SVGFigure(
      title: "Weak scaling across GPUs (the paper's Figure 11)",
      subtitle: subtitle(report, dtype, gpus: nil, sizes: scalingSizes(report)),
      panels: [
        panel(
          "(a) Latency as the number of GPUs increases", rows, x: { Double($0.point.gpus) }, scale: .linear,
          tick: gpusTick, xLabel: "GPUs", yLabel: "Forward latency (ms)", ours: { $0.flashmoe?.medianMs },
          theirs: \.baselineMs, unit: "ms"),
        efficiency,
      ])
  }

  /// A panel with FlashMoE's series and the baseline's, each holding the points that have a value;
  /// a series with no value at all is left out and the note says why.
  static func panel(
    _ title: String, _ rows: [PointResult], x: (PointResult) -> Double, scale: ChartPanel.Scale,
    tick: (PointResult) -> String, xLabel: String, yLabel: String, ours: (PointResult) -> Double?,
    theirs: (PointResult) -> Double?, unit: String
  ) -> ChartPanel {
    func series(_ style: (name: String, color: String), _ marker: ChartSeries.Marker, _ value: (PointResult) -> Double?)
      -> ChartSeries?
    {
      let kept = rows.compactMap { r in value(r).map { (r, $0) } }
      guard !kept.isEmpty else { return nil }
      return ChartSeries(
        name: style.name, color: style.color, marker: marker, points: kept.map { (x($0.0), $0.1) },
        labels: kept.map { "\(tick($0.0)): \(NumberText.fixed($0.1, 3))\(unit.isEmpty ? "" : " " + unit)" })
    }
    let lines = [series(flashmoeStyle, .circle, ours), series(baselineStyle, .square, theirs)].compactMap { $0 }
    var notes: [String] = []
    let oursMissing = rows.filter { ours($0) == nil }.count
    if oursMissing > 0 { notes.append("FlashMoE failed at \(oursMissing) of \(rows.count) points") }
    let asked = rows.filter { $0.baseline != nil || $0.baselineMissing != nil }
    let theirsMissing = asked.filter { theirs($0) == nil }.count
    if rows.isEmpty {
      notes.append("no points in this sweep")
    } else if asked.isEmpty {
      notes.append("PyTorch baseline not run (it needs a GPU: bench --suite --baseline PATH/torch_moe.py)")
    } else if theirsMissing > 0 {
      notes.append("PyTorch baseline missing at \(theirsMissing) of \(asked.count) points (reasons in results.json)")
    }
    return ChartPanel(
      title: title, xLabel: xLabel, yLabel: yLabel, xScale: scale, xTicks: rows.map { (x($0), tick($0)) }, series: lines,
      note: notes.isEmpty ? nil : notes.joined(separator: "; "))
  }

  static func device(_ report: SuiteReport, _ gpus: Int) -> String {
    report.backend == "cuda" ? "\(gpus) × \(report.card)" : report.card
  }

  static func scalingSizes(_ report: SuiteReport) -> String {
    "T = \(NumberText.tokens(report.grid.scalingTokens)) per GPU, E = \(report.grid.baseExperts)"
  }

  /// Card, dtype and sizes; then the protocol, the layer's semantics and the grid's name when it
  /// is not the paper's.
  static func subtitle(_ report: SuiteReport, _ dtype: DType, gpus: Int?, sizes: String) -> [String] {
    let g = report.grid
    let first = [
      gpus.map { device(report, $0) } ?? report.card, report.dtypeLabel(dtype),
      "H = \(g.hidden), D = \(g.ffn), \(sizes), top-\(g.topK)",
    ]
    var second = ["median of \(report.runs) runs after \(report.warmup) warm-up", "FlashMoE: \(report.layer)"]
    // torch_moe.py keeps every pair: with a capacity factor FlashMoE may compute fewer.
    if report.baseline != nil { second.append("PyTorch: dropless") }
    var lines = [first.joined(separator: " · "), second.joined(separator: " · ")]
    if !g.isPaper { lines.append("reduced grid '\(g.name)': not the paper's sizes") }
    return lines
  }
}

#if canImport(Glibc)
import Glibc
#endif

/// One line of a chart: a name in the legend, a colour, a marker, and its points in x order.
public struct ChartSeries: Sendable {
  public enum Marker: Equatable, Sendable { case circle, square }

  public var name: String
  public var color: String
  public var marker: Marker
  public var points: [(x: Double, y: Double)]
  /// Hover text per point (an SVG `<title>`), same count as `points`.
  public var labels: [String]

  public init(name: String, color: String, marker: Marker, points: [(x: Double, y: Double)], labels: [String]) {
    self.name = name
    self.color = color
    self.marker = marker
    self.points = points
    self.labels = labels
  }
}

/// One plot: axes with ticks and labels, a grid and the series (the figure draws the legend). The
/// y-axis starts at 0 (latencies and rates compare by ratio); the x-axis is linear or log2, ticks
/// at the data's x.
public struct ChartPanel: Sendable {
  public enum Scale: Equatable, Sendable { case linear, log2 }

  public var title: String
  public var xLabel: String
  public var yLabel: String
  public var xScale: Scale
  /// Tick positions and their labels (the sweep's values: 4K, 8K, 16K…).
  public var xTicks: [(value: Double, label: String)]
  public var series: [ChartSeries]
  /// A dashed horizontal reference line (efficiency 1 = ideal weak scaling).
  public var reference: (y: Double, label: String)?
  /// A line under the plot (what is missing and why).
  public var note: String?

  public init(
    title: String, xLabel: String, yLabel: String, xScale: Scale, xTicks: [(value: Double, label: String)],
    series: [ChartSeries], reference: (y: Double, label: String)? = nil, note: String? = nil
  ) {
    self.title = title
    self.xLabel = xLabel
    self.yLabel = yLabel
    self.xScale = xScale
    self.xTicks = xTicks
    self.series = series
    self.reference = reference
    self.note = note
  }

  static let height = 400.0
  static let left = 76.0, right = 20.0, top = 40.0, bottom = 78.0

  /// The panel's SVG elements, drawn `width` wide with its top-left corner at (`x0`, `y0`).
  func render(x0: Double, y0: Double, width: Double) -> [String] {
    let plotLeft = x0 + Self.left, plotRight = x0 + width - Self.right
    let plotTop = y0 + Self.top, plotBottom = y0 + Self.height - Self.bottom
    // Headroom above the highest point, so that it does not sit on the frame.
    let ys = series.flatMap { $0.points.map(\.y) } + [reference?.y ?? 0]
    let yTicks = Self.niceTicks(max: (ys.max() ?? 0) * 1.08)
    let yMax = yTicks.last!
    func py(_ y: Double) -> Double { plotBottom - (y / yMax) * (plotBottom - plotTop) }
    let us = (xTicks.map(\.value) + series.flatMap { $0.points.map(\.x) }).map(scaled)
    var uMin = us.min() ?? 0, uMax = us.max() ?? 1
    // A margin so the first and last points do not sit on the axes.
    let pad = uMax > uMin ? (uMax - uMin) * 0.08 : 0.5
    uMin -= pad
    uMax += pad
    func px(_ x: Double) -> Double { plotLeft + (scaled(x) - uMin) / (uMax - uMin) * (plotRight - plotLeft) }

    var out: [String] = []
    out.append(SVG.text(title, x: x0 + width / 2, y: y0 + 22, size: 14, anchor: "middle", weight: "bold"))
    // Grid and y-axis ticks.
    let digits = Self.digits(for: yTicks.count > 1 ? yTicks[1] - yTicks[0] : yMax)
    for t in yTicks {
      let y = py(t)
      out.append(SVG.line(plotLeft, y, plotRight, y, stroke: "#dddddd"))
      out.append(SVG.line(plotLeft - 5, y, plotLeft, y, stroke: "#000000"))
      out.append(SVG.text(NumberText.fixed(t, digits), x: plotLeft - 8, y: y + 4, size: 11, anchor: "end"))
    }
    for t in xTicks {
      let x = px(t.value)
      out.append(SVG.line(x, plotBottom, x, plotBottom + 5, stroke: "#000000"))
      out.append(SVG.text(t.label, x: x, y: plotBottom + 19, size: 11, anchor: "middle"))
    }
    // Axes and their labels.
    out.append(SVG.line(plotLeft, plotTop, plotLeft, plotBottom, stroke: "#000000"))
    out.append(SVG.line(plotLeft, plotBottom, plotRight, plotBottom, stroke: "#000000"))
    out.append(SVG.text(xLabel, x: (plotLeft + plotRight) / 2, y: plotBottom + 40, size: 12, anchor: "middle"))
    let yMid = (plotTop + plotBottom) / 2
    out.append(SVG.text(
      yLabel, x: x0 + 18, y: yMid, size: 12, anchor: "middle",
      transform: "rotate(-90 \(SVG.number(x0 + 18)) \(SVG.number(yMid)))"))
    if let reference {
      let y = py(reference.y)
      out.append(SVG.line(plotLeft, y, plotRight, y, stroke: "#888888", dash: "6 4"))
      out.append(SVG.text(reference.label, x: plotRight - 4, y: y - 5, size: 10, anchor: "end", fill: "#666666"))
    }
    for s in series {
      let coords = s.points.map { (px($0.x), py($0.y)) }
      out.append(SVG.polyline(coords, stroke: s.color, name: s.name))
      for (i, c) in coords.enumerated() {
        out.append(SVG.marker(s.marker, at: c, fill: s.color, title: i < s.labels.count ? s.labels[i] : nil))
      }
    }
    if let note {
      out.append(SVG.text(note, x: x0 + 10, y: y0 + Self.height - 10, size: 10, anchor: "start", fill: "#aa0000"))
    }
    return out
  }

  func scaled(_ x: Double) -> Double { xScale == .log2 ? Glibc.log2(Swift.max(x, 1e-300)) : x }

  /// 0 and multiples of a 1-2-5 step up to at least `max`, about five intervals.
  static func niceTicks(max: Double) -> [Double] {
    guard max > 0, max.isFinite else { return [0, 1] }
    let rough = max / 5
    let power = pow(10, (log10(rough)).rounded(.down))
    let step = [1.0, 2, 5, 10].map { $0 * power }.first { $0 >= rough }!
    let count = Int((max / step).rounded(.up))
    return (0...Swift.max(count, 1)).map { Double($0) * step }
  }

  /// Digits after the point that show a tick step exactly (0.25 → 2; 5 → 0).
  static func digits(for step: Double) -> Int {
    guard step > 0, step.isFinite else { return 0 }
    var digits = 0, scaled = step
    while digits < 6 && (scaled - scaled.rounded()).magnitude > 1e-9 * Swift.max(scaled, 1) {
      digits += 1
      scaled *= 10
    }
    return digits
  }
}

/// A whole figure: a title, subtitle lines (card, dtype, sizes, protocol), one legend for the
/// series of all panels, and the panels side by side.
public struct SVGFigure: Sendable {
  public var title: String
  public var subtitle: [String]
  public var panels: [ChartPanel]

  public init(title: String, subtitle: [String], panels: [ChartPanel]) {
    self.title = title
    self.subtitle = subtitle
    self.panels = panels
  }

  /// Panels are at least this wide, and a figure at least `minimumWidth` and as wide as its
  /// subtitle.
  static let panelWidth = 520.0, minimumWidth = 760.0

  var header: Double { 62 + 16 * Double(subtitle.count) }

  public func render() -> String {
    let count = Double(max(panels.count, 1))
    // Helvetica at 12 px averages about 6.4 px per character.
    let textWidth = Double(subtitle.map(\.count).max() ?? 0) * 6.4 + 40
    let panelWidth = max(Self.panelWidth, max(Self.minimumWidth, textWidth) / count)
    let width = panelWidth * count, height = header + ChartPanel.height
    let w = SVG.number(width), h = SVG.number(height)
    var out = [
      "<?xml version=\"1.0\" encoding=\"UTF-8\"?>",
      "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"\(w)\" height=\"\(h)\" viewBox=\"0 0 \(w) \(h)\""
        + " font-family=\"Helvetica, Arial, sans-serif\">",
      "<title>\(SVG.escape(title))</title>",
      SVG.rect(x: 0, y: 0, width: width, height: height, fill: "#ffffff", stroke: nil),
      SVG.text(title, x: width / 2, y: 22, size: 16, anchor: "middle", weight: "bold"),
    ]
    for (i, line) in subtitle.enumerated() {
      out.append(SVG.text(line, x: width / 2, y: 42 + 16 * Double(i), size: 12, anchor: "middle", fill: "#444444"))
    }
    out += legend(width: width, y: header - 14)
    for (i, panel) in panels.enumerated() {
      out.append("<g>")
      out += panel.render(x0: panelWidth * Double(i), y0: header, width: panelWidth)
      out.append("</g>")
    }
    out.append("</svg>")
    return out.joined(separator: "\n") + "\n"
  }

  /// Each series name once (first panel first), centred in a row under the subtitle.
  func legend(width: Double, y: Double) -> [String] {
    var entries: [ChartSeries] = []
    for s in panels.flatMap(\.series) where !entries.contains(where: { $0.name == s.name }) { entries.append(s) }
    // Helvetica at 12 px averages about 6.6 px per character.
    let widths = entries.map { 34 + Double($0.name.count) * 6.6 }
    let gap = 24.0
    var x = (width - widths.reduce(0, +) - gap * Double(max(entries.count - 1, 0))) / 2
    var out: [String] = []
    for (s, w) in zip(entries, widths) {
      out.append(SVG.line(x, y, x + 24, y, stroke: s.color, width: 2))
      out.append(SVG.marker(s.marker, at: (x + 12, y), fill: s.color, title: nil))
      out.append(SVG.text(s.name, x: x + 30, y: y + 4, size: 12, anchor: "start"))
      x += w + gap
    }
    return out
  }
}

/// SVG elements as text, every attribute value escaped.
enum SVG {
  /// Coordinates with two decimals at most: enough for a screen, short in the file.
  static func number(_ value: Double) -> String { NumberText.trimmed(value, 2) }

  static func escape(_ text: String) -> String {
    var out = ""
    for c in text {
      switch c {
      case "&": out += "&amp;"
      case "<": out += "&lt;"
      case ">": out += "&gt;"
      case "\"": out += "&quot;"
      default: out.append(c)
      }
    }
    return out
  }

  static func text(
    _ content: String, x: Double, y: Double, size: Double, anchor: String, weight: String? = nil, fill: String? = nil,
    transform: String? = nil
  ) -> String {
    var attributes = "x=\"\(number(x))\" y=\"\(number(y))\" font-size=\"\(number(size))\" text-anchor=\"\(anchor)\""
    if let weight { attributes += " font-weight=\"\(weight)\"" }
    if let fill { attributes += " fill=\"\(escape(fill))\"" }
    if let transform { attributes += " transform=\"\(escape(transform))\"" }
    return "<text \(attributes)>\(escape(content))</text>"
  }

  static func line(
    _ x1: Double, _ y1: Double, _ x2: Double, _ y2: Double, stroke: String, width: Double = 1, dash: String? = nil
  ) -> String {
    "<line x1=\"\(number(x1))\" y1=\"\(number(y1))\" x2=\"\(number(x2))\" y2=\"\(number(y2))\""
      + " stroke=\"\(escape(stroke))\" stroke-width=\"\(number(width))\""
      + (dash.map { " stroke-dasharray=\"\($0)\"" } ?? "") + "/>"
  }

  static func rect(x: Double, y: Double, width: Double, height: Double, fill: String, stroke: String?) -> String {
    "<rect x=\"\(number(x))\" y=\"\(number(y))\" width=\"\(number(width))\" height=\"\(number(height))\" fill=\"\(escape(fill))\""
      + (stroke.map { " stroke=\"\(escape($0))\"" } ?? "") + "/>"
  }

  /// A series' line; `data-series` names it for scripts and tests.
  static func polyline(_ points: [(Double, Double)], stroke: String, name: String) -> String {
    let coords = points.map { "\(number($0.0)),\(number($0.1))" }.joined(separator: " ")
    return "<polyline data-series=\"\(escape(name))\" points=\"\(coords)\" fill=\"none\" stroke=\"\(escape(stroke))\" stroke-width=\"2\"/>"
  }

  static func marker(_ kind: ChartSeries.Marker, at point: (Double, Double), fill: String, title: String?) -> String {
    let (x, y) = point
    let shape: String
    switch kind {
    case .circle: shape = "circle cx=\"\(number(x))\" cy=\"\(number(y))\" r=\"4\""
    case .square: shape = "rect x=\"\(number(x - 4))\" y=\"\(number(y - 4))\" width=\"8\" height=\"8\""
    }
    let tag = kind == .circle ? "circle" : "rect"
    guard let title else { return "<\(shape) fill=\"\(escape(fill))\"/>" }
    return "<\(shape) fill=\"\(escape(fill))\"><title>\(escape(title))</title></\(tag)>"
  }
}

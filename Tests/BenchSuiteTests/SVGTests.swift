import BenchSuite
import MoECore
import Testing

/// What a test needs to know about an SVG file, read with a small scanner of its own.
struct SVGFile {
  let text: String

  /// Every opening tag closed in order, self-closing tags alone, `&` only as an entity, no stray `<`.
  var isWellFormed: Bool {
    var stack: [String] = []
    var rest = Substring(text)
    while let open = rest.firstIndex(of: "<") {
      let before = rest[..<open]
      if before.contains(">") { return false }
      guard let close = rest[open...].firstIndex(of: ">") else { return false }
      let tag = rest[rest.index(after: open)..<close]
      rest = rest[rest.index(after: close)...]
      if tag.hasPrefix("?") { continue }
      if tag.contains("<") { return false }
      let name = String(tag.split(whereSeparator: { $0 == " " || $0 == "/" }).first ?? "")
      if tag.hasPrefix("/") {
        guard stack.popLast() == String(tag.dropFirst()) else { return false }
      } else if !tag.hasSuffix("/") {
        stack.append(name)
      }
    }
    let entities = ["&amp;", "&lt;", "&gt;", "&quot;"]
    var amp = Substring(text)
    while let i = amp.firstIndex(of: "&") {
      guard entities.contains(where: { amp[i...].hasPrefix($0) }) else { return false }
      amp = amp[amp.index(after: i)...]
    }
    return stack.isEmpty && text.hasPrefix("<?xml") && text.contains("<svg ")
  }

  /// Each polyline's series name and points.
  var polylines: [(series: String, points: [(x: Double, y: Double)])] {
    text.components(separatedBy: "<polyline").dropFirst().map { chunk in
      let series = attribute("data-series", in: chunk)
      let points = attribute("points", in: chunk).split(separator: " ").map { pair -> (Double, Double) in
        let xy = pair.split(separator: ",").map { Double($0)! }
        return (xy[0], xy[1])
      }
      return (series, points)
    }
  }

  func attribute(_ name: String, in chunk: String) -> String {
    guard let start = chunk.range(of: " \(name)=\"") else { return "" }
    return String(chunk[start.upperBound...].prefix { $0 != "\"" })
  }

  /// The contents of every <text> element, entities decoded.
  var texts: [String] {
    text.components(separatedBy: "<text ").dropFirst().map { chunk in
      let body = chunk[chunk.index(after: chunk.firstIndex(of: ">")!)...].prefix { $0 != "<" }
      return body.replacingOccurrences(of: "&quot;", with: "\"").replacingOccurrences(of: "&lt;", with: "<")
        .replacingOccurrences(of: "&gt;", with: ">").replacingOccurrences(of: "&amp;", with: "&")
    }
  }
}

@Suite struct SVGTests {
  static func figures(_ report: SuiteReport) -> [String: SVGFile] {
    Dictionary(uniqueKeysWithValues: SuiteFigures.all(report).map { ($0.name, SVGFile(text: $0.svg)) })
  }

  /// Four figures per dtype, each well-formed, titled with the card and the dtype.
  @Test func oneFilePerFigurePerDtype() throws {
    let plan = try SuitePlan(grid: .paper, dtypes: [.bf16, .fp32], gpusAvailable: 8)
    let figures = Self.figures(fakeReport(plan: plan, card: "NVIDIA H200 <&>"))
    #expect(figures.count == 8)
    for (name, svg) in figures {
      #expect(svg.isWellFormed, "\(name)")
      let dtype = name.contains("bf16") ? "bf16" : "fp32 (tf32 math)"
      #expect(svg.texts.contains { $0.contains("NVIDIA H200 <&>") && $0.contains(dtype) }, "\(name)")
      #expect(svg.texts.contains("FlashMoE") && svg.texts.contains { $0.hasPrefix("PyTorch") }, "legend of \(name)")
    }
  }

  /// Figure 8: one line per series with a point per token count; axis labels and ticks; the x-axis
  /// is log2 (4K, 8K, 16K equally spaced); the baseline, 3× slower, is drawn higher.
  @Test func latencyVsTokens() throws {
    let plan = try SuitePlan(grid: .paper, dtypes: [.bf16], gpusAvailable: 4)
    let svg = try #require(Self.figures(fakeReport(plan: plan))["fig08-latency-vs-tokens-bf16.svg"])
    let lines = svg.polylines
    #expect(lines.map(\.series) == ["FlashMoE", "PyTorch (torch_moe.py, best impl)"])
    #expect(lines.allSatisfy { $0.points.count == 3 })
    for label in ["Tokens per GPU", "Forward latency (ms)", "4K", "8K", "16K", "0"] { #expect(svg.texts.contains(label), "\(label)") }
    #expect(svg.texts.contains { $0.contains("4 × NVIDIA H100 80GB HBM3") })
    let xs = lines[0].points.map(\.x)
    #expect(abs((xs[1] - xs[0]) - (xs[2] - xs[1])) < 0.02)
    #expect(lines[0].points.map(\.x) == lines[1].points.map(\.x))
    for (ours, theirs) in zip(lines[0].points, lines[1].points) { #expect(theirs.y < ours.y) }
    // Latency grows with tokens here, so y (downwards in SVG) shrinks.
    #expect(lines[0].points[2].y < lines[0].points[0].y)
  }

  /// Figure 12 has a point per expert count on a log2 axis.
  @Test func latencyVsExperts() throws {
    let plan = try SuitePlan(grid: .paper, dtypes: [.bf16], gpusAvailable: 8)
    let svg = try #require(Self.figures(fakeReport(plan: plan))["fig12-latency-vs-experts-bf16.svg"])
    #expect(svg.polylines.count == 2 && svg.polylines.allSatisfy { $0.points.count == 5 })
    for label in ["8", "16", "32", "64", "128", "Experts (total over all GPUs)"] { #expect(svg.texts.contains(label)) }
    let xs = svg.polylines[0].points.map(\.x)
    let steps = zip(xs.dropFirst(), xs).map { $0 - $1 }
    #expect(steps.allSatisfy { abs($0 - steps[0]) < 0.02 })
  }

  /// Figures 10 and 11 put GPUs on a linear axis (1, 2, 4, 8: the gaps double); Figure 11 has two
  /// panels, its efficiency panel a reference line at 1.
  @Test func gpuFigures() throws {
    let plan = try SuitePlan(grid: .paper, dtypes: [.bf16], gpusAvailable: 8)
    let figures = Self.figures(fakeReport(plan: plan))
    let throughput = try #require(figures["fig10-throughput-vs-gpus-bf16.svg"])
    #expect(throughput.polylines.count == 2 && throughput.polylines.allSatisfy { $0.points.count == 4 })
    #expect(throughput.texts.contains("Throughput (MTokens/s)") && throughput.texts.contains("GPUs"))
    let xs = throughput.polylines[0].points.map(\.x)
    #expect(abs((xs[2] - xs[1]) - 2 * (xs[1] - xs[0])) < 0.02 && abs((xs[3] - xs[2]) - 4 * (xs[1] - xs[0])) < 0.02)
    let scaling = try #require(figures["fig11-weak-scaling-bf16.svg"])
    #expect(scaling.polylines.count == 4 && scaling.polylines.allSatisfy { $0.points.count == 4 })
    #expect(scaling.texts.contains("ideal") && scaling.texts.contains("Efficiency"))
    #expect(scaling.texts.contains { $0.contains("(a)") } && scaling.texts.contains { $0.contains("(b)") })
  }

  /// Where the baseline is missing, its line has only the points it has, and the chart says so;
  /// without a baseline there is one line and a note how to get the other.
  @Test func missingBaseline() throws {
    let plan = try SuitePlan(grid: .paper, dtypes: [.bf16], gpusAvailable: 1)
    let partial = Self.figures(fakeReport(plan: plan, baselineMissing: { $0.tokensPerGPU == 16384 ? "out of memory" : nil }))
    let tokens = try #require(partial["fig08-latency-vs-tokens-bf16.svg"])
    #expect(tokens.polylines.map(\.points.count) == [3, 2])
    #expect(tokens.texts.contains { $0.contains("PyTorch baseline missing at 1 of 3 points") })
    let none = Self.figures(fakeReport(plan: plan, baseline: false))
    for svg in none.values {
      #expect(svg.isWellFormed)
      #expect(svg.polylines.map(\.series).allSatisfy { $0 == "FlashMoE" })
      #expect(svg.texts.contains { $0.contains("PyTorch baseline not run") })
    }
  }

  /// A reduced grid says so on every chart.
  @Test func smallGridIsLabelled() throws {
    let plan = try SuitePlan(grid: .small, dtypes: [.bf16], gpusAvailable: 1)
    for svg in Self.figures(fakeReport(plan: plan, backend: "cpu", card: "CPU (2 threads)")).values {
      #expect(svg.texts.contains { $0.contains("reduced grid 'small'") })
    }
  }
}

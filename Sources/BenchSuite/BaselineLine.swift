import MoECore

/// One result line of `torch_moe.py`:
/// `torch gpus=2 tokens/gpu=8192 experts=32 H=2048 D=2048 k=2 dtype=bf16 impl=grouped median_ms=3.164 Mtokens/s=5.18`.
///
/// Lines that do not start with `torch ` are someone else's (warnings, NCCL banners) and are
/// skipped; a line that does start so but lacks a field or has a bad value is an error, since it
/// means the script and this parser disagree.
public struct BaselineLine: Equatable, Sendable {
  public var gpus: Int
  public var tokensPerGPU: Int
  public var experts: Int
  public var hidden: Int?
  public var ffn: Int?
  public var topK: Int?
  public var dtype: String
  public var impl: String
  public var medianMs: Double

  public init(
    gpus: Int, tokensPerGPU: Int, experts: Int, hidden: Int? = nil, ffn: Int? = nil, topK: Int? = nil, dtype: String,
    impl: String, medianMs: Double
  ) {
    self.gpus = gpus
    self.tokensPerGPU = tokensPerGPU
    self.experts = experts
    self.hidden = hidden
    self.ffn = ffn
    self.topK = topK
    self.dtype = dtype
    self.impl = impl
    self.medianMs = medianMs
  }

  /// A result line that could not be read: which field and what it held.
  public struct Problem: Error, Equatable, Sendable, CustomStringConvertible {
    public var field: String
    public var value: String?
    public var line: String
    public var description: String {
      "baseline line '\(line)': " + (value.map { "bad \(field) = '\($0)'" } ?? "no \(field)=")
    }
  }

  /// nil for a line that is not a result line.
  public static func parse(_ line: Substring) throws(Problem) -> BaselineLine? {
    let words = line.split(whereSeparator: { $0 == " " || $0 == "\t" || $0 == "\r" })
    guard words.first == "torch" else { return nil }
    var fields: [Substring: Substring] = [:]
    for word in words.dropFirst() {
      guard let eq = word.firstIndex(of: "=") else { continue }
      fields[word[..<eq]] = word[word.index(after: eq)...]
    }
    let text = String(line)
    func value(_ key: String) throws(Problem) -> Substring {
      guard let v = fields[Substring(key)], !v.isEmpty else { throw Problem(field: key, value: nil, line: text) }
      return v
    }
    func count(_ key: String) throws(Problem) -> Int {
      let v = try value(key)
      guard let n = Int(v), n >= 1 else { throw Problem(field: key, value: String(v), line: text) }
      return n
    }
    func optionalCount(_ key: String) throws(Problem) -> Int? {
      fields[Substring(key)] == nil ? nil : try count(key)
    }
    // Fields are checked in the order the script prints them, so the first problem is reported.
    let gpus = try count("gpus"), tokens = try count("tokens/gpu"), experts = try count("experts")
    let hidden = try optionalCount("H"), ffn = try optionalCount("D"), topK = try optionalCount("k")
    let dtype = String(try value("dtype")), impl = String(try value("impl"))
    let ms = try value("median_ms")
    guard let median = Double(ms), median.isFinite, median > 0 else {
      throw Problem(field: "median_ms", value: String(ms), line: text)
    }
    return BaselineLine(
      gpus: gpus, tokensPerGPU: tokens, experts: experts, hidden: hidden, ffn: ffn, topK: topK, dtype: dtype, impl: impl,
      medianMs: median)
  }

  /// Whether this line measured `point` (the sizes the line states must match).
  public func matches(_ point: SuitePoint, grid: SuiteGrid) -> Bool {
    gpus == point.gpus && tokensPerGPU == point.tokensPerGPU && experts == point.experts
      && dtype == point.dtype.rawValue && (hidden ?? grid.hidden) == grid.hidden && (ffn ?? grid.ffn) == grid.ffn
      && (topK ?? grid.topK) == grid.topK
  }

  /// The fastest implementation the script reported for `point`, or why there is none.
  public static func best(in output: String, for point: SuitePoint, grid: SuiteGrid) -> BaselineOutcome {
    var lines: [BaselineLine] = []
    var problems: [String] = []
    for raw in output.split(separator: "\n") {
      do throws(Problem) {
        if let line = try parse(raw) { lines.append(line) }
      } catch {
        problems.append(error.description)
      }
    }
    let matching = lines.filter { $0.matches(point, grid: grid) }
    if let best = matching.min(by: { $0.medianMs < $1.medianMs }) {
      return .measured(BaselineTiming(medianMs: best.medianMs, impl: best.impl))
    }
    if let problem = problems.first { return .missing(problem) }
    if !lines.isEmpty {
      return .missing("the baseline printed \(lines.count) result line(s), none for \(point)")
    }
    return .missing("the baseline printed no result line")
  }
}

import MoECore

#if canImport(Glibc)
import Glibc
#endif

/// The PyTorch baseline (`torch_moe.py`), one subprocess per point, with the suite's protocol.
public struct Baseline: Sendable {
  public var python: String
  public var script: String
  public var grid: SuiteGrid
  public var warmup: Int
  public var runs: Int
  /// Lets fp32 matmuls use tf32, matching `--math tf32` on our side.
  public var tf32: Bool
  public var timeoutSeconds: Double
  /// FlashMoE's GPUs: a P-GPU point ran on the first P of them.
  public var gpuIndices: [Int]

  public init(
    python: String, script: String, grid: SuiteGrid, warmup: Int, runs: Int, tf32: Bool, timeoutSeconds: Double,
    gpuIndices: [Int] = []
  ) {
    self.python = python
    self.script = script
    self.grid = grid
    self.warmup = warmup
    self.runs = runs
    self.tf32 = tf32
    self.timeoutSeconds = timeoutSeconds
    self.gpuIndices = gpuIndices
  }

  /// The command for `point` (every size is passed, none left to the script's defaults).
  public func arguments(for point: SuitePoint) -> [String] {
    [
      python, script, "--gpus", "\(point.gpus)", "--tokens", "\(point.tokensPerGPU)", "--experts", "\(point.experts)",
      "--hidden", "\(grid.hidden)", "--ffn", "\(grid.ffn)", "--topk", "\(grid.topK)", "--dtype", point.dtype.rawValue,
      "--warmup", "\(warmup)", "--iters", "\(runs)",
    ] + (tf32 && point.dtype == .fp32 ? ["--tf32"] : [])
  }

  /// torch_moe.py runs on cuda:0 … cuda:P−1. Where FlashMoE's first P GPUs are others (`--gpus 2,3`),
  /// CUDA_VISIBLE_DEVICES shows the baseline the same ones, mapped through the `inherited` value
  /// (our indices count within it, as CUDA's do).
  public func environment(for point: SuitePoint, inherited: String?) -> [String: String] {
    let mine = Array(gpuIndices.prefix(point.gpus))
    guard mine.count == point.gpus, mine != Array(0..<point.gpus) else { return [:] }
    var visible = mine.map(String.init)
    if let inherited, !inherited.isEmpty {
      let listed = inherited.split(separator: ",").map { String($0.trimmingSpaces) }
      guard mine.allSatisfy({ $0 < listed.count }) else { return [:] }
      visible = mine.map { listed[$0] }
    }
    return ["CUDA_VISIBLE_DEVICES": visible.joined(separator: ",")]
  }

  /// Runs the script at `point`; any failure (no python, no torch, a crash, a timeout, no result
  /// line) becomes `.missing` with the command and the end of its error output.
  public func run(_ point: SuitePoint) -> BaselineOutcome {
    let arguments = arguments(for: point)
    let environment = environment(for: point, inherited: getenv("CUDA_VISIBLE_DEVICES").map { String(cString: $0) })
    let result: ProcessResult
    do {
      result = try Subprocess.run(arguments, environment: environment, timeoutSeconds: timeoutSeconds)
    } catch {
      return .missing(error.description)
    }
    // The command as a shell would take it, so that a failure can be reproduced by hand.
    let command = (environment.sorted { $0.key < $1.key }.map { "\($0.key)=\($0.value)" } + [Subprocess.quoted(arguments)])
      .joined(separator: " ")
    return Self.outcome(of: result, command: command, point: point, grid: grid, timeoutSeconds: timeoutSeconds)
  }

  /// What a finished run of the script means for `point`.
  public static func outcome(of result: ProcessResult, command: String, point: SuitePoint, grid: SuiteGrid, timeoutSeconds: Double)
    -> BaselineOutcome
  {
    if result.timedOut { return .missing("`\(command)` did not finish within \(Int(timeoutSeconds)) s and was killed") }
    guard result.succeeded else {
      let how = result.exitStatus.map { "exit status \($0)" } ?? "signal \(result.signal ?? 0)"
      return .missing("`\(command)` failed (\(how))\(tail(result.standardError))")
    }
    let best = BaselineLine.best(in: result.standardOutput, for: point, grid: grid)
    if case .missing(let why) = best { return .missing("`\(command)`: \(why)\(tail(result.standardError))") }
    return best
  }

  /// The last non-empty lines of a child's error output (a Python traceback ends with its cause).
  static func tail(_ text: String, lines: Int = 3) -> String {
    let last = text.split(separator: "\n").map { $0.trimmingSpaces }.filter { !$0.isEmpty }.suffix(lines)
    return last.isEmpty ? "" : ": " + last.joined(separator: " | ")
  }
}

extension Substring {
  var trimmingSpaces: Substring {
    var s = self
    while s.first?.isWhitespace == true { s.removeFirst() }
    while s.last?.isWhitespace == true { s.removeLast() }
    return s
  }
}

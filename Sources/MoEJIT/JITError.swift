/// Every failure of specialising, compiling, checking or caching a kernel.
public enum JITError: Error, CustomStringConvertible, Sendable, Equatable {
  /// A `KernelSpec` field holds a value the kernel cannot be built for.
  case invalidSpec(field: String, value: String, expected: String)
  /// The kernel sources lack a file the translation unit needs (normally `flashmoe.cuh`).
  case missingSource(name: String, available: [String])
  /// NVRTC rejected the program; `log` is its whole program log (the compiler's diagnostics).
  case compilation(spec: String, message: String, log: String)
  /// NVRTC succeeded but produced no cubin.
  case noCubin(spec: String, log: String)
  /// ptxas reported spills or a stack frame (or no report at all) for the kernel; `ptxasLines`
  /// quotes its report.
  case resources(spec: String, problems: [String], ptxasLines: [String])
  /// The cache directory could not be found or created.
  case cacheDirectory(path: String, problem: String)
  /// A cache file could not be written.
  case cacheWrite(path: String, problem: String)
  /// nvdisasm showed instructions touching wgmma accumulators before their wait (WGMMAHazards) in
  /// every build tried; `hazards` quotes the first few.
  case wgmmaHazards(spec: String, count: Int, hazards: [String])

  public var description: String {
    switch self {
    case let .invalidSpec(field, value, expected):
      return "invalid kernel spec: \(field) = \(value); expected \(expected)"
    case let .missingSource(name, available):
      let list = available.isEmpty ? "none" : available.joined(separator: ", ")
      return "the kernel sources have no \(name) (embedded files: \(list))"
    case let .compilation(spec, message, log):
      let trimmed = log.trimmingTrailingWhitespace()
      return "NVRTC could not compile the kernel for \(spec): \(message)"
        + (trimmed.isEmpty ? " (empty program log)" : "\n\(trimmed)")
    case let .noCubin(spec, log):
      return "NVRTC returned no cubin for \(spec)\n\(log.trimmingTrailingWhitespace())"
    case let .resources(spec, problems, lines):
      var text = "the kernel for \(spec) does not meet its resource limits: " + problems.joined(separator: "; ")
      if !lines.isEmpty { text += "\nptxas reported:\n" + lines.map { "  \($0)" }.joined(separator: "\n") }
      return text
    case let .cacheDirectory(path, problem):
      return "kernel cache directory \(path): \(problem)"
    case let .cacheWrite(path, problem):
      return "kernel cache file \(path): \(problem)"
    case let .wgmmaHazards(spec, count, hazards):
      return "ptxas's code for \(spec) reads or writes wgmma accumulators before waiting for them in \(count) "
        + "place(s), in the first build and in the rebuild with each k tile drained; its results could be wrong, "
        + "so it is not used (FLASHMOE_SASS_CHECK=0 skips this check). First: "
        + hazards.joined(separator: "; ")
    }
  }
}

extension String {
  func trimmingTrailingWhitespace() -> String {
    var s = Substring(self)
    while let last = s.last, last.isWhitespace { s.removeLast() }
    return String(s)
  }
}

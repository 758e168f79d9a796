/// Every failure the CUDA layer reports. Driver and NVRTC calls go through one throwing funnel
/// each (`Driver.check`, `NVRTC.check`), so an error always names the call that failed.
public enum CUDAError: Error, CustomStringConvertible, Sendable, Equatable {
  /// A CUDA driver API call returned something other than CUDA_SUCCESS. `name` and `message`
  /// come from cuGetErrorName / cuGetErrorString.
  case driver(code: Int32, name: String, message: String, call: String)
  /// An NVRTC call failed; `log` is the program log (compiler diagnostics) when there is one.
  case nvrtc(code: Int32, message: String, call: String, log: String)
  /// A library, symbol or header folder could not be found; `searched` lists every place tried,
  /// in order.
  case unavailable(what: String, searched: [String])
  /// The caller asked for something the wrapper refuses before reaching CUDA (a copy past the end
  /// of a buffer, a kernel argument of the wrong size, ...).
  case invalidArgument(call: String, message: String)
  /// An nvJitLink call failed; `message` is the nvJitLinkResult's name, `log` nvJitLink's error log.
  case nvJitLink(code: Int32, message: String, call: String, log: String)
  /// An NVSHMEM host call failed (a non-zero status, or NULL from an allocation); `library` is the
  /// libnvshmem_host it was loaded from.
  case nvshmem(code: Int32, message: String, call: String, library: String)

  public var description: String {
    switch self {
    case let .driver(code, name, message, call):
      return "\(call) failed: \(name) (\(code)): \(message)"
    case let .nvrtc(code, message, call, log):
      let trimmed = log.trimmingTrailingWhitespace()
      return trimmed.isEmpty
        ? "\(call) failed: \(message) (\(code))"
        : "\(call) failed: \(message) (\(code))\n\(trimmed)"
    case let .unavailable(what, searched):
      if searched.isEmpty { return "\(what) not found" }
      return "\(what) not found; searched:\n" + searched.map { "  - \($0)" }.joined(separator: "\n")
    case let .invalidArgument(call, message):
      return "\(call): \(message)"
    case let .nvJitLink(code, message, call, log):
      let trimmed = log.trimmingTrailingWhitespace()
      return "\(call) failed: \(message) (\(code))" + (trimmed.isEmpty ? "" : "\n\(trimmed)")
    case let .nvshmem(code, message, call, library):
      return "\(call) failed: \(message) (\(code)) [\(library)]"
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

/// Cuts a child's output stream into lines, so each can be prefixed with its rank without two
/// ranks' text mixing inside one line.
struct LineSplitter: Sendable {
  /// A "line" longer than this is passed on in pieces: a child printing without newlines cannot
  /// make the launcher hold unbounded memory.
  static let maxLine = 64 << 10

  private var partial: [UInt8] = []

  /// The complete lines in `bytes` (without their "\n"), keeping an unfinished one for later.
  mutating func lines(_ bytes: ArraySlice<UInt8>) -> [[UInt8]] {
    var result: [[UInt8]] = []
    for byte in bytes {
      if byte == UInt8(ascii: "\n") {
        result.append(partial)
        partial.removeAll(keepingCapacity: true)
      } else {
        partial.append(byte)
        if partial.count >= Self.maxLine {
          result.append(partial)
          partial.removeAll(keepingCapacity: true)
        }
      }
    }
    return result
  }

  /// The unfinished last line at end of stream, if any.
  mutating func finish() -> [UInt8]? {
    defer { partial.removeAll() }
    return partial.isEmpty ? nil : partial
  }
}

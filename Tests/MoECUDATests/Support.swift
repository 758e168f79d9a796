import CUDADriver
import TestSupport
import Glibc


/// A `__device__` array's initializer as NVRTC writes it into PTX.
///
/// NVRTC 13 emits `extern "C" __device__ const unsigned long long flashmoe_layout[6] = {…}` as a
/// byte array with its trailing zero bytes left out:
///
///     .global .align 8 .b8 flashmoe_layout[48] = {0, 0, 1, 0, 0, 0, 0, 0, 0, 4, 0, 0, …, 2};
///
/// Other NVVM versions may write `.u64 flashmoe_layout[6] = {65536, 1024, …}`; both are read here:
/// the listed elements are laid out little-endian at their width, zero-filled to the declared
/// count, and regrouped as 64-bit words.
struct PTXArray: CustomStringConvertible {
  /// The declaration, from its state space to the semicolon.
  let declaration: String
  let elementBytes: Int
  let count: Int
  let bytes: [UInt8]

  var description: String { declaration }

  /// The array as little-endian UInt64 words.
  var words: [UInt64] {
    (0..<(bytes.count / 8)).map { u64(bytes, at: 8 * $0) }
  }

  /// Finds the initialised declaration of `name` in `ptx`; nil when there is none or it does not
  /// parse.
  init?(named name: String, in ptx: String) {
    // The declaration: a line holding "<type> name[" and "= {", up to the next ';'.
    var found: Substring? = nil
    var rest = Substring(ptx)
    while let range = rest.firstRange(of: " \(name)[") {
      let lineStart = rest[..<range.lowerBound].lastIndex(of: "\n").map { rest.index(after: $0) } ?? rest.startIndex
      guard let end = rest[range.upperBound...].firstIndex(of: ";") else { return nil }
      let candidate = rest[lineStart...end]
      let head = candidate.drop { $0 == " " || $0 == "\t" }
      if candidate.contains("= {"), [".global", ".const", ".visible", ".extern", ".weak"].contains(where: { head.hasPrefix($0) }) {
        found = candidate
        break
      }
      rest = rest[range.upperBound...]
    }
    guard let declaration = found else { return nil }
    self.declaration = String(declaration)

    let tokens = declaration.split { $0 == " " || $0 == "\t" }
    let widths: [String: Int] = [
      ".b8": 1, ".u8": 1, ".s8": 1, ".b16": 2, ".u16": 2, ".s16": 2,
      ".b32": 4, ".u32": 4, ".s32": 4, ".b64": 8, ".u64": 8, ".s64": 8,
    ]
    guard let width = tokens.lazy.compactMap({ widths[String($0)] }).first else { return nil }
    elementBytes = width

    guard let open = declaration.firstRange(of: "\(name)["),
          let close = declaration[open.upperBound...].firstIndex(of: "]"),
          let count = Int(declaration[open.upperBound..<close]),
          let brace = declaration.firstIndex(of: "{"),
          let endBrace = declaration.lastIndex(of: "}"), brace < endBrace
    else { return nil }
    self.count = count

    var bytes: [UInt8] = []
    for item in declaration[declaration.index(after: brace)..<endBrace].split(separator: ",") {
      let text = item.trimmingCharacters(in: " \t\n")
      let value: UInt64?
      if text.hasPrefix("0x") || text.hasPrefix("0X") {
        value = UInt64(text.dropFirst(2), radix: 16)
      } else {
        value = UInt64(text)
      }
      guard let value else { return nil }
      for i in 0..<width { bytes.append(UInt8(truncatingIfNeeded: value >> (8 * UInt64(i)))) }
    }
    guard bytes.count <= count * width else { return nil }
    bytes += [UInt8](repeating: 0, count: count * width - bytes.count)
    self.bytes = bytes
  }
}

extension Substring {
  func trimmingCharacters(in set: String) -> Substring {
    var s = self
    while let first = s.first, set.contains(first) { s.removeFirst() }
    while let last = s.last, set.contains(last) { s.removeLast() }
    return s
  }
}

/// `bytes[offset..<offset + 8]` as a little-endian UInt64.
func u64(_ bytes: [UInt8], at offset: Int) -> UInt64 {
  (0..<8).reduce(0) { $0 | UInt64(bytes[offset + $1]) << (8 * UInt64($1)) }
}

/// `bytes[offset..<offset + 4]` as a little-endian UInt32.
func u32(_ bytes: [UInt8], at offset: Int) -> UInt32 {
  (0..<4).reduce(0) { $0 | UInt32(bytes[offset + $1]) << (8 * UInt32($1)) }
}

/// The dict literal of a `.npy` header: exactly the keys `descr`, `fortran_order` and `shape`.
struct NPYHeader {
  var dtype: NPYDType
  var fortranOrder: Bool
  var shape: [Int]

  /// `(a, b)`, `(a,)` or `()` as NumPy writes shapes.
  static func tuple(_ shape: [Int]) -> String {
    shape.count == 1 ? "(\(shape[0]),)" : "(" + shape.map(String.init).joined(separator: ", ") + ")"
  }

  private enum Value {
    case string(String)
    case bool(Bool)
    case tuple([Int])

    var text: String {
      switch self {
      case .string(let text): return "'\(text)'"
      case .bool(let value): return value ? "True" : "False"
      case .tuple(let items): return NPYHeader.tuple(items)
      }
    }
  }

  init(bytes: [UInt8], file: String) throws(FileError) {
    func bad(_ problem: String) -> FileError {
      FileError(.malformed, file: file, problem: "the header \(problem)",
                expected: "a dict like {'descr': '<f4', 'fortran_order': False, 'shape': (4096, 1024), }")
    }
    var parser = Parser(bytes: bytes)
    var fields: [String: Value] = [:]
    do throws(Parser.Failure) {
      try parser.dictionary { (key, value) throws(Parser.Failure) in
        guard ["descr", "fortran_order", "shape"].contains(key) else { throw .init(message: "has an unexpected key '\(key)'") }
        guard fields[key] == nil else { throw .init(message: "repeats the key '\(key)'") }
        fields[key] = value
      }
    } catch {
      throw bad(error.message)
    }
    guard case .string(let descr)? = fields["descr"] else { throw bad("has no 'descr' string") }
    guard case .bool(let fortran)? = fields["fortran_order"] else { throw bad("has no 'fortran_order' True/False") }
    guard case .tuple(let shape)? = fields["shape"] else { throw bad("has no 'shape' tuple") }
    guard let dtype = NPYDType(rawValue: descr) else {
      throw FileError(.unsupportedDType, file: file, problem: "unsupported descr '\(descr)'",
                      expected: "'<f4', '<f2' or '<f8' (little-endian float)")
    }
    self.dtype = dtype
    self.fortranOrder = fortran
    self.shape = shape
  }

  /// A parser for the small subset of Python literals NumPy writes in headers.
  private struct Parser {
    struct Failure: Error { var message: String }

    let bytes: [UInt8]
    var index = 0

    var current: UInt8? { index < bytes.count ? bytes[index] : nil }

    mutating func skipWhitespace() {
      while let byte = current, byte == 0x20 || byte == 0x0A || byte == 0x0D || byte == 0x09 { index += 1 }
    }

    mutating func expect(_ char: Character) throws(Failure) {
      skipWhitespace()
      guard current == char.asciiValue! else { throw Failure(message: "lacks '\(char)' at byte \(index)") }
      index += 1
    }

    /// `{key: value, ...}` followed only by whitespace; `field` is called for each entry.
    mutating func dictionary(_ field: (String, Value) throws(Failure) -> Void) throws(Failure) {
      try expect("{")
      while true {
        skipWhitespace()
        if current == UInt8(ascii: "}") { break }
        let key = try string()
        try expect(":")
        try field(key, try value())
        skipWhitespace()
        guard current == UInt8(ascii: ",") else { break }
        index += 1
      }
      try expect("}")
      skipWhitespace()
      guard index == bytes.count else { throw Failure(message: "has text after the dict at byte \(index)") }
    }

    mutating func value() throws(Failure) -> Value {
      skipWhitespace()
      switch current {
      case UInt8(ascii: "'"), UInt8(ascii: "\""): return .string(try string())
      case UInt8(ascii: "("): return .tuple(try tuple())
      case UInt8(ascii: "T"): try word("True"); return .bool(true)
      case UInt8(ascii: "F"): try word("False"); return .bool(false)
      default: throw Failure(message: "has an unexpected value at byte \(index)")
      }
    }

    mutating func word(_ text: String) throws(Failure) {
      for byte in text.utf8 {
        guard current == byte else { throw Failure(message: "has an unexpected value at byte \(index)") }
        index += 1
      }
    }

    /// A quoted string without escapes (NumPy's keys and descrs have none).
    mutating func string() throws(Failure) -> String {
      skipWhitespace()
      guard let quote = current, quote == UInt8(ascii: "'") || quote == UInt8(ascii: "\"") else {
        throw Failure(message: "lacks a quoted string at byte \(index)")
      }
      index += 1
      let start = index
      while let byte = current, byte != quote {
        guard byte != UInt8(ascii: "\\"), byte >= 0x20 else { throw Failure(message: "has an unsupported character in a string") }
        index += 1
      }
      guard current == quote else { throw Failure(message: "has an unterminated string") }
      index += 1
      return String(decoding: bytes[start..<(index - 1)], as: UTF8.self)
    }

    /// `()`, `(n,)`, `(a, b)`, sizes as non-negative decimal integers (a trailing `L` is allowed).
    mutating func tuple() throws(Failure) -> [Int] {
      try expect("(")
      var items: [Int] = []
      while true {
        skipWhitespace()
        if current == UInt8(ascii: ")") { break }
        let start = index
        while let byte = current, byte >= UInt8(ascii: "0"), byte <= UInt8(ascii: "9") { index += 1 }
        guard index > start, items.count < 64, let size = Int(String(decoding: bytes[start..<index], as: UTF8.self)) else {
          throw Failure(message: "has a shape entry that is not a non-negative integer at byte \(start)")
        }
        if current == UInt8(ascii: "L") { index += 1 }
        items.append(size)
        skipWhitespace()
        if current == UInt8(ascii: ",") {
          index += 1
          continue
        }
        guard current == UInt8(ascii: ")") else { throw Failure(message: "lacks ',' or ')' in the shape at byte \(index)") }
      }
      index += 1
      return items
    }
  }
}

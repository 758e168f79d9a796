/// A JSON value as parsed from a file; numbers keep their text so that large integers stay exact.
enum JSONValue: Sendable {
  case null
  case bool(Bool)
  case number(String)
  case string(String)
  case array([JSONValue])
  case object(JSONObject)

  /// The value as an Int ≥ 0 when it is written as a plain decimal integer that fits.
  var nonNegativeInt: Int? {
    guard case .number(let text) = self, text.utf8.allSatisfy({ $0 >= UInt8(ascii: "0") && $0 <= UInt8(ascii: "9") })
    else { return nil }
    return Int(text)
  }

  /// A short description of what kind of value this is, for messages.
  var kindName: String {
    switch self {
    case .null: return "null"
    case .bool: return "a boolean"
    case .number(let text): return "the number \(text)"
    case .string: return "a string"
    case .array: return "an array"
    case .object: return "an object"
    }
  }

  /// Scalars as text (strings unquoted); arrays and objects as compact JSON.
  var plainText: String {
    switch self {
    case .null: return "null"
    case .bool(let value): return value ? "true" : "false"
    case .number(let text): return text
    case .string(let text): return text
    case .array(let items): return "[" + items.map(\.jsonText).joined(separator: ",") + "]"
    case .object: return jsonText
    }
  }

  /// Compact JSON text.
  var jsonText: String {
    switch self {
    case .string(let text): return JSON.quoted(text)
    case .object(let object):
      return "{" + object.keys.map { JSON.quoted($0) + ":" + object.values[$0]!.jsonText }.joined(separator: ",") + "}"
    default: return plainText
    }
  }
}

/// A JSON object with its keys in file order; duplicate keys are rejected while parsing.
struct JSONObject: Sendable {
  var keys: [String] = []
  var values: [String: JSONValue] = [:]

  subscript(key: String) -> JSONValue? { values[key] }
}

/// A parse failure at a byte offset.
struct JSONParseError: Error {
  let message: String
  let offset: Int
  var description: String { "\(message) at byte \(offset)" }
}

/// A strict RFC 8259 parser with a nesting limit, so that hostile input cannot exhaust the stack.
enum JSON {
  static let maxDepth = 64

  static func parse(_ bytes: [UInt8]) throws(JSONParseError) -> JSONValue {
    var parser = Parser(bytes: bytes)
    parser.skipWhitespace()
    let value = try parser.value(depth: 0)
    parser.skipWhitespace()
    guard parser.index == bytes.count else { throw parser.error("unexpected text after the JSON value") }
    return value
  }

  /// `text` as a JSON string literal.
  static func quoted(_ text: String) -> String {
    var out = "\""
    for scalar in text.unicodeScalars {
      switch scalar {
      case "\"": out += "\\\""
      case "\\": out += "\\\\"
      case "\n": out += "\\n"
      case "\r": out += "\\r"
      case "\t": out += "\\t"
      case _ where scalar.value < 0x20:
        let hex = String(scalar.value, radix: 16)
        out += "\\u" + String(repeating: "0", count: 4 - hex.count) + hex
      default: out.unicodeScalars.append(scalar)
      }
    }
    return out + "\""
  }

  private struct Parser {
    let bytes: [UInt8]
    var index = 0

    init(bytes: [UInt8]) { self.bytes = bytes }

    func error(_ message: String) -> JSONParseError { JSONParseError(message: message, offset: index) }

    var current: UInt8? { index < bytes.count ? bytes[index] : nil }

    mutating func skipWhitespace() {
      while let byte = current, byte == 0x20 || byte == 0x0A || byte == 0x0D || byte == 0x09 { index += 1 }
    }

    mutating func expect(_ byte: UInt8, _ what: String) throws(JSONParseError) {
      guard current == byte else { throw error("expected \(what)") }
      index += 1
    }

    mutating func value(depth: Int) throws(JSONParseError) -> JSONValue {
      guard depth < JSON.maxDepth else { throw error("nesting deeper than \(JSON.maxDepth) levels") }
      guard let byte = current else { throw error("unexpected end of the JSON text") }
      switch byte {
      case UInt8(ascii: "{"): return .object(try object(depth: depth))
      case UInt8(ascii: "["): return .array(try array(depth: depth))
      case UInt8(ascii: "\""): return .string(try string())
      case UInt8(ascii: "t"): try literal("true"); return .bool(true)
      case UInt8(ascii: "f"): try literal("false"); return .bool(false)
      case UInt8(ascii: "n"): try literal("null"); return .null
      case UInt8(ascii: "-"), UInt8(ascii: "0")...UInt8(ascii: "9"): return .number(try number())
      default: throw error("unexpected character '\(Unicode.Scalar(byte))'")
      }
    }

    mutating func literal(_ word: String) throws(JSONParseError) {
      for expected in word.utf8 {
        guard current == expected else { throw error("invalid literal (expected '\(word)')") }
        index += 1
      }
    }

    mutating func object(depth: Int) throws(JSONParseError) -> JSONObject {
      index += 1  // {
      var object = JSONObject()
      skipWhitespace()
      if current == UInt8(ascii: "}") {
        index += 1
        return object
      }
      while true {
        skipWhitespace()
        guard current == UInt8(ascii: "\"") else { throw error("expected a string key") }
        let keyOffset = index
        let key = try string()
        guard object.values[key] == nil else {
          throw JSONParseError(message: "duplicate key \(JSON.quoted(key))", offset: keyOffset)
        }
        skipWhitespace()
        try expect(UInt8(ascii: ":"), "':' after a key")
        skipWhitespace()
        object.values[key] = try value(depth: depth + 1)
        object.keys.append(key)
        skipWhitespace()
        if current == UInt8(ascii: ",") {
          index += 1
          continue
        }
        try expect(UInt8(ascii: "}"), "',' or '}' in an object")
        return object
      }
    }

    mutating func array(depth: Int) throws(JSONParseError) -> [JSONValue] {
      index += 1  // [
      var items: [JSONValue] = []
      skipWhitespace()
      if current == UInt8(ascii: "]") {
        index += 1
        return items
      }
      while true {
        skipWhitespace()
        items.append(try value(depth: depth + 1))
        skipWhitespace()
        if current == UInt8(ascii: ",") {
          index += 1
          continue
        }
        try expect(UInt8(ascii: "]"), "',' or ']' in an array")
        return items
      }
    }

    mutating func number() throws(JSONParseError) -> String {
      let start = index
      func digits(_ parser: inout Parser) -> Int {
        var count = 0
        while let byte = parser.current, byte >= UInt8(ascii: "0"), byte <= UInt8(ascii: "9") {
          parser.index += 1
          count += 1
        }
        return count
      }
      if current == UInt8(ascii: "-") { index += 1 }
      if current == UInt8(ascii: "0") {
        index += 1
      } else {
        guard digits(&self) > 0 else { throw error("invalid number") }
      }
      if current == UInt8(ascii: ".") {
        index += 1
        guard digits(&self) > 0 else { throw error("invalid number (no digits after '.')") }
      }
      if current == UInt8(ascii: "e") || current == UInt8(ascii: "E") {
        index += 1
        if current == UInt8(ascii: "+") || current == UInt8(ascii: "-") { index += 1 }
        guard digits(&self) > 0 else { throw error("invalid number (no digits in the exponent)") }
      }
      return String(decoding: bytes[start..<index], as: UTF8.self)
    }

    mutating func string() throws(JSONParseError) -> String {
      let start = index
      index += 1  // "
      var out: [UInt8] = []
      while true {
        guard let byte = current else { throw error("unterminated string") }
        index += 1
        switch byte {
        case UInt8(ascii: "\""):
          guard let text = String(validating: out, as: UTF8.self) else {
            throw JSONParseError(message: "string is not valid UTF-8", offset: start)
          }
          return text
        case UInt8(ascii: "\\"):
          try escape(into: &out)
        case 0..<0x20:
          throw error("control character in a string")
        default:
          out.append(byte)
        }
      }
    }

    mutating func escape(into out: inout [UInt8]) throws(JSONParseError) {
      guard let byte = current else { throw error("unterminated string") }
      index += 1
      switch byte {
      case UInt8(ascii: "\""), UInt8(ascii: "\\"), UInt8(ascii: "/"): out.append(byte)
      case UInt8(ascii: "b"): out.append(0x08)
      case UInt8(ascii: "f"): out.append(0x0C)
      case UInt8(ascii: "n"): out.append(0x0A)
      case UInt8(ascii: "r"): out.append(0x0D)
      case UInt8(ascii: "t"): out.append(0x09)
      case UInt8(ascii: "u"):
        var code = UInt32(try hex4())
        if (0xD800..<0xDC00).contains(code) {
          guard current == UInt8(ascii: "\\") else { throw error("unpaired UTF-16 surrogate") }
          index += 1
          guard current == UInt8(ascii: "u") else { throw error("unpaired UTF-16 surrogate") }
          index += 1
          let low = UInt32(try hex4())
          guard (0xDC00..<0xE000).contains(low) else { throw error("unpaired UTF-16 surrogate") }
          code = 0x10000 + ((code - 0xD800) << 10) + (low - 0xDC00)
        }
        guard let scalar = Unicode.Scalar(code) else { throw error("unpaired UTF-16 surrogate") }
        out.append(contentsOf: Array(String(Character(scalar)).utf8))
      default:
        throw error("invalid escape '\\\(Unicode.Scalar(byte))'")
      }
    }

    mutating func hex4() throws(JSONParseError) -> UInt16 {
      var value: UInt16 = 0
      for _ in 0..<4 {
        guard let byte = current else { throw error("unterminated \\u escape") }
        let digit: UInt8
        switch byte {
        case UInt8(ascii: "0")...UInt8(ascii: "9"): digit = byte - UInt8(ascii: "0")
        case UInt8(ascii: "a")...UInt8(ascii: "f"): digit = byte - UInt8(ascii: "a") + 10
        case UInt8(ascii: "A")...UInt8(ascii: "F"): digit = byte - UInt8(ascii: "A") + 10
        default: throw error("invalid hex digit in a \\u escape")
        }
        value = value << 4 | UInt16(digit)
        index += 1
      }
      return value
    }
  }
}

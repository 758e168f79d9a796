import FlashMoE

#if canImport(Glibc)
import Glibc
#endif

/// Typed environment settings; every key is listed in the README.
enum Setting {
  /// FLASHMOE_BACKEND: auto, cpu or cuda.
  static let backend = Key<BackendChoice>(name: "FLASHMOE_BACKEND") { text throws(ConfigError) in
    try BackendChoice.parse(text, field: "FLASHMOE_BACKEND")
  }
  /// FLASHMOE_THREADS: CPU backend threads.
  static let threads = Key<Int>(name: "FLASHMOE_THREADS") { text throws(ConfigError) in
    guard let n = Int(text), n >= 1, n <= 4096 else {
      throw ConfigError(field: "FLASHMOE_THREADS", value: "'\(text)'", expected: "an integer in 1...4096")
    }
    return n
  }

  struct Key<Value>: Sendable {
    let name: String
    let parse: @Sendable (String) throws(ConfigError) -> Value

    /// The parsed value, nil when the variable is unset or empty.
    func value() throws(ConfigError) -> Value? {
      guard let raw = getenv(name), raw.pointee != 0 else { return nil }
      return try parse(String(cString: raw))
    }
  }
}

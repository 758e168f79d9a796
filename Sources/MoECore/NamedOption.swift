/// An option spelled by a fixed set of names (dtypes, activations, ...), parsed with an error that
/// lists every accepted spelling.
public protocol NamedOption: CaseIterable, RawRepresentable, Hashable, Codable, Sendable
where RawValue == String {}

extension NamedOption {
  public static var allowedNames: String { allCases.map(\.rawValue).joined(separator: ", ") }

  public static func parse(_ text: String, field: String) throws(ConfigError) -> Self {
    guard let value = Self(rawValue: text.lowercased()) else {
      throw ConfigError(field: field, value: "'\(text)'", expected: "one of \(allowedNames)")
    }
    return value
  }
}

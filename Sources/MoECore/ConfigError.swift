/// A value that FlashMoE cannot accept, named by the field it came from.
///
/// Every configuration, weight or input problem that can be found before work starts is reported
/// as one of these, so a user sees which field was wrong, what it held and what would be accepted.
public struct ConfigError: Error, Equatable, Sendable, CustomStringConvertible {
  public let field: String
  public let value: String
  public let expected: String

  public init(field: String, value: String, expected: String) {
    self.field = field
    self.value = value
    self.expected = expected
  }

  public init(field: String, value: some CustomStringConvertible, expected: String) {
    self.init(field: field, value: value.description, expected: expected)
  }

  public var description: String { "invalid \(field) = \(value): expected \(expected)" }
}

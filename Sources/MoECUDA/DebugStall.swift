import CUDADriver
import MoECore

/// Fault injection for the watchdog path (issue #7 §6): `FLASHMOE_DEBUG_STALL=ACTOR[@GPU]` makes one
/// actor of one GPU (its rank in a group; 0 by default) wait for something that never comes, so
/// the forward fails within FLASHMOE_WATCHDOG_MS with an error naming that actor. Off when unset.
public struct DebugStall: Equatable, Sendable {
  public static let variable = "FLASHMOE_DEBUG_STALL"
  static let actors: [(name: String, role: UInt32)] = [("gate", 1), ("processor", 2), ("scheduler", 3), ("subscriber", 4)]

  /// The kernel's role code (layout.cuh `Role`) and the rank of the GPU that stalls.
  public let role: UInt32
  public let rank: Int

  /// Parses `gate`, `processor`, `scheduler` or `subscriber`, optionally `@rank`; nil or "" = off.
  public static func parse(_ text: String?) throws(ConfigError) -> DebugStall? {
    guard let text, !text.isEmpty else { return nil }
    let expected = "one of \(actors.map(\.name).joined(separator: ", ")), optionally @GPU rank (e.g. processor@1)"
    let parts = text.lowercased().split(separator: "@", omittingEmptySubsequences: false)
    guard parts.count <= 2, let actor = actors.first(where: { $0.name == parts[0] }) else {
      throw ConfigError(field: variable, value: "'\(text)'", expected: expected)
    }
    var rank = 0
    if parts.count == 2 {
      guard let r = Int(parts[1]), r >= 0 else { throw ConfigError(field: variable, value: "'\(text)'", expected: expected) }
      rank = r
    }
    return DebugStall(role: actor.role, rank: rank)
  }

  /// The setting from the environment.
  static func fromEnvironment() throws(ConfigError) -> DebugStall? {
    try parse(CUDAEnvironment.value(variable))
  }
}

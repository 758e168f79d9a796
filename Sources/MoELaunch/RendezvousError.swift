/// Why a rendezvous did not deliver the payload. Every case says where (the address) and, on
/// rank 0, which ranks are concerned, so a hung or crashed peer is named rather than waited for.
public enum RendezvousError: Error, Equatable, Sendable, CustomStringConvertible {
  /// Rank 0: the deadline passed with these ranks never joined; `departed` ranks joined but
  /// disconnected before the payload (they gave up or died). `rejected` connections were turned
  /// away meanwhile (the last reason in `lastRejection`): a wrong token or world size shows here.
  case ranksNeverJoined(
    ranks: [Int], departed: [Int], address: RendezvousAddress, seconds: Double, rejected: Int, lastRejection: String?)
  /// Rank 0: these ranks received the payload but did not acknowledge it before the deadline.
  case ranksNeverAcknowledged(ranks: [Int], address: RendezvousAddress, seconds: Double)
  /// Rank 0: a joined rank's connection broke before it acknowledged.
  case rankLost(rank: Int, address: RendezvousAddress, problem: String)
  /// Rank > 0: nothing accepted a connection at the address before the deadline.
  case rootNeverAnswered(address: RendezvousAddress, seconds: Double, lastProblem: String)
  /// Rank > 0: connected and said hello, but no payload came before the deadline (rank 0 is
  /// still waiting for other ranks: its error names them).
  case rootSilent(address: RendezvousAddress, seconds: Double)
  /// Rank > 0: rank 0 closed the connection before sending the payload (it failed or quit).
  case rootClosed(address: RendezvousAddress)
  /// Rank > 0: rank 0 turned this rank away and said why.
  case rejected(address: RendezvousAddress, reason: String)
  /// Rank > 0: what answered at the address does not speak this protocol.
  case notRendezvous(address: RendezvousAddress, problem: String)
  /// The host name did not resolve to an IPv4 address.
  case unresolvable(host: String, problem: String)
  /// A socket call failed in a way retrying cannot fix (the port is taken, no descriptors left).
  case system(call: String, address: RendezvousAddress, problem: String)
  /// A caller's argument is out of range (a programming or configuration error).
  case invalidArgument(field: String, value: String, expected: String)

  public var description: String {
    switch self {
    case .ranksNeverJoined(let ranks, let departed, let address, let seconds, let rejected, let last):
      var text = "rendezvous at \(address): "
      text += ranks.isEmpty ? "not every rank stayed within \(format(seconds)) s" : "rank\(ranks.count == 1 ? "" : "s") \(list(ranks)) never joined within \(format(seconds)) s"
      if !departed.isEmpty { text += "; rank\(departed.count == 1 ? "" : "s") \(list(departed)) joined but disconnected" }
      if rejected > 0 {
        text += "; \(rejected) connection\(rejected == 1 ? " was" : "s were") rejected"
        if let last { text += " (last: \(last))" }
      }
      return text
    case .ranksNeverAcknowledged(let ranks, let address, let seconds):
      return "rendezvous at \(address): rank\(ranks.count == 1 ? "" : "s") \(list(ranks)) received the payload but did not acknowledge it within \(format(seconds)) s"
    case .rankLost(let rank, let address, let problem):
      return "rendezvous at \(address): rank \(rank) disconnected before acknowledging the payload (\(problem))"
    case .rootNeverAnswered(let address, let seconds, let problem):
      return "rendezvous at \(address): rank 0 never answered within \(format(seconds)) s (last attempt: \(problem)); is rank 0 running, with the same --rendezvous?"
    case .rootSilent(let address, let seconds):
      return "rendezvous at \(address): rank 0 accepted this rank but sent no payload within \(format(seconds)) s (rank 0's error names the ranks it waited for)"
    case .rootClosed(let address):
      return "rendezvous at \(address): rank 0 closed the connection before sending the payload (did rank 0 fail?)"
    case .rejected(let address, let reason):
      return "rendezvous at \(address): rank 0 rejected this rank: \(reason)"
    case .notRendezvous(let address, let problem):
      return "rendezvous at \(address): the process listening there is not a FlashMoE rank 0 (\(problem)); another program may use the port"
    case .unresolvable(let host, let problem):
      return "rendezvous host '\(host)' does not resolve to an IPv4 address: \(problem)"
    case .system(let call, let address, let problem):
      return "rendezvous at \(address): \(call) failed: \(problem)"
    case .invalidArgument(let field, let value, let expected):
      return "invalid \(field) = \(value): expected \(expected)"
    }
  }

  private func list(_ ranks: [Int]) -> String {
    ranks.count <= 16 ? ranks.map(String.init).joined(separator: ", ") : ranks.prefix(16).map(String.init).joined(separator: ", ") + ", … (\(ranks.count) in all)"
  }

  private func format(_ seconds: Double) -> String {
    let tenths = Int((seconds * 10).rounded())
    return "\(tenths / 10).\(tenths % 10)"
  }
}

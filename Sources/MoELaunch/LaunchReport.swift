#if canImport(Glibc)
import Glibc
#endif

/// How a supervised job ended, rank by rank, and why.
public struct LaunchReport: Equatable, Sendable {
  /// One per rank.
  public var terminations: [Termination]
  /// The first rank seen to fail (non-zero exit or a signal) while the job was running normally.
  public var firstFailure: RankTermination?
  /// The signal (SIGINT, SIGTERM, SIGHUP) the launcher received and passed on.
  public var interruption: Int32?
  /// The job ran past the launcher's time limit.
  public var timedOut: Bool
  /// Ranks still running when the launcher stopped the job (SIGTERM, or the forwarded signal).
  public var stopped: [Int]
  /// Of those, the ranks that outlived the grace period and got SIGKILL.
  public var killed: [Int]
  public var gracePeriodSeconds: Double
  /// The launcher's bound on the whole job, if any.
  public var timeLimitSeconds: Double?

  public struct RankTermination: Equatable, Sendable {
    public var rank: Int
    public var termination: Termination
  }

  public var succeeded: Bool { firstFailure == nil && interruption == nil && !timedOut && terminations.allSatisfy(\.succeeded) }

  /// The launcher's own exit status: the failed rank's (128 + signal for a signal), 128 + the
  /// interrupting signal, 124 for the time limit (as timeout(1)), 0 for success.
  public var exitCode: Int32 {
    if let firstFailure { return max(firstFailure.termination.shellStatus, 1) }
    if let interruption { return 128 + interruption }
    if timedOut { return 124 }
    return terminations.allSatisfy(\.succeeded) ? 0 : 1
  }

  /// One line for the user: who failed first and how, and what the launcher did about the rest.
  public var summary: String {
    let n = terminations.count
    if succeeded { return "all \(n) rank\(n == 1 ? "" : "s") exited with code 0" }
    var text: String
    if let firstFailure {
      text = "rank \(firstFailure.rank) failed first: it \(firstFailure.termination)"
    } else if let interruption {
      text = "interrupted by \(Termination.name(of: interruption))"
    } else if timedOut {
      text = "the job ran past its time limit" + (timeLimitSeconds.map { " of \(formatSeconds($0)) s" } ?? "")
    } else {
      text = "the job failed"
    }
    if !stopped.isEmpty {
      let how = interruption.map { "passed \(Termination.name(of: $0 == SIGINT ? SIGINT : SIGTERM)) to" } ?? "stopped"
      text += "; \(how) rank\(stopped.count == 1 ? "" : "s") \(list(stopped))"
      if !killed.isEmpty {
        text += ", SIGKILL after the \(formatSeconds(gracePeriodSeconds)) s grace period to rank\(killed.count == 1 ? "" : "s") \(list(killed))"
      }
    }
    let others = terminations.enumerated().filter { $0.offset != firstFailure?.rank }
    if !others.isEmpty {
      text += " (" + others.map { "rank \($0.offset) \($0.element)" }.joined(separator: "; ") + ")"
    }
    return text
  }

  private func list(_ ranks: [Int]) -> String { ranks.map(String.init).joined(separator: ", ") }

  /// 5 → "5", 0.25 → "0.25" (no Foundation formatting here).
  private func formatSeconds(_ seconds: Double) -> String {
    let hundredths = Int((seconds * 100).rounded())
    let whole = "\(hundredths / 100)"
    let fraction = hundredths % 100
    if fraction == 0 { return whole }
    return whole + "." + (fraction < 10 ? "0\(fraction)" : (fraction % 10 == 0 ? "\(fraction / 10)" : "\(fraction)"))
  }
}

/// One overall bound for a blocking operation: every wait inside it asks how long is left, so no
/// single step (a connect, a poll, a send) can outlast the caller's timeout.
struct Deadline: Sendable {
  let start: ContinuousClock.Instant
  let end: ContinuousClock.Instant

  init(after timeout: Duration) {
    start = .now
    end = start + max(timeout, .zero)
  }

  var passed: Bool { ContinuousClock.now >= end }

  /// Seconds since the start, for messages.
  var elapsedSeconds: Double { seconds(ContinuousClock.now - start) }
  var timeoutSeconds: Double { seconds(end - start) }

  /// Milliseconds left for poll(2), at most `cap`, rounded up so a wait never ends just before
  /// the deadline and spins; 0 once it has passed.
  func pollMilliseconds(cap: Duration = .seconds(3600)) -> Int32 {
    let left = min(end - .now, cap)
    guard left > .zero else { return 0 }
    let (s, atto) = left.components
    return Int32(clamping: s * 1000 + (atto + 999_999_999_999_999) / 1_000_000_000_000_000)
  }

  func seconds(_ d: Duration) -> Double {
    Double(d.components.seconds) + Double(d.components.attoseconds) / 1e18
  }
}

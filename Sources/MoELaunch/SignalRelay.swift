#if canImport(Glibc)
import Glibc
#endif

/// The write end of the running supervisor's wake pipe, for the signal handler (a C function
/// pointer captures nothing). Set only while `SignalRelay` handlers are installed.
nonisolated(unsafe) private var relayDescriptor: Int32 = -1

/// Turns SIGINT, SIGTERM and SIGHUP into bytes on a pipe (the self-pipe trick): the handler only
/// writes one byte, which is async-signal-safe, and the supervisor's poll loop does the rest.
struct SignalRelay {
  static let signals: [Int32] = [SIGINT, SIGTERM, SIGHUP]
  private var previous: [sigaction] = []

  /// Installs the handlers, writing to `descriptor` (non-blocking: a full pipe drops a byte rather
  /// than blocking inside a handler). Call `restore` when done.
  static func install(writingTo descriptor: Int32) -> SignalRelay {
    relayDescriptor = descriptor
    var relay = SignalRelay()
    for signal in signals {
      var action = sigaction()
      action.__sigaction_handler.sa_handler = { signal in
        var byte = UInt8(truncatingIfNeeded: signal)
        _ = write(relayDescriptor, &byte, 1)
      }
      sigemptyset(&action.sa_mask)
      action.sa_flags = SA_RESTART
      var old = sigaction()
      sigaction(signal, &action, &old)
      relay.previous.append(old)
    }
    return relay
  }

  /// The handlers that were there before.
  func restore() {
    for (signal, var old) in zip(Self.signals, previous) { sigaction(signal, &old, nil) }
    relayDescriptor = -1
  }
}

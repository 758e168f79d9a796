import Dispatch
import Synchronization

/// Runs a blocking call that has no timeout of its own (NVSHMEM's host barrier) on a thread of its
/// own and waits at most `timeout` for it. On time, its result or error comes back; past it, the
/// caller goes on (with `nil`) and the call's thread is left blocked: the process is expected to
/// stop soon, reporting why, rather than hang with it.
enum BoundedCall {
  static func run<R: Sendable>(timeout: Duration, _ body: @escaping @Sendable () throws -> R) throws -> R? {
    let done = DispatchSemaphore(value: 0)
    let outcome = Mutex<Result<R, any Error>?>(nil)
    DispatchQueue.global().async {
      let result = Result { try body() }
      outcome.withLock { $0 = result }
      done.signal()
    }
    let nanoseconds = timeout.components.seconds * 1_000_000_000 + timeout.components.attoseconds / 1_000_000_000
    guard done.wait(timeout: .now() + .nanoseconds(Int(max(0, nanoseconds)))) == .success else { return nil }
    return try outcome.withLock { $0 }?.get()
  }
}

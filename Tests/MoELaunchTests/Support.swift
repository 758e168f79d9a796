import Synchronization

#if canImport(Glibc)
import Glibc
#endif

@testable import MoELaunch

/// Runs `body` on its own OS thread (ranks block in poll; a pool with fewer threads than ranks
/// would deadlock them).
final class TestThread: @unchecked Sendable {
  private var thread = pthread_t()
  private let body: @Sendable () -> Void

  init(_ body: @escaping @Sendable () -> Void) {
    self.body = body
    let box = Unmanaged.passRetained(self).toOpaque()
    let created = pthread_create(&thread, nil, { box in
      guard let box else { return nil }
      let me = Unmanaged<TestThread>.fromOpaque(box).takeRetainedValue()
      me.body()
      return nil
    }, box)
    precondition(created == 0, "pthread_create failed: \(created)")
  }

  func join() { pthread_join(thread, nil) }
}

/// A value written by one thread and read by another.
final class Box<Value: Sendable>: Sendable {
  private let storage: Mutex<Value>
  init(_ value: Value) { storage = Mutex(value) }
  var value: Value { storage.withLock { $0 } }
  func set(_ value: Value) { storage.withLock { $0 = value } }
  func update(_ change: (inout Value) -> Void) { storage.withLock { change(&$0) } }
}

/// What one rank's exchange gave, and how long it took.
struct RankOutcome: Sendable {
  var result: Result<[UInt8], RendezvousError>
  var seconds: Double
}

/// Starts a rank's `Rendezvous.exchange` on its own thread; `outcome` is set when it returns.
func startRank(
  rank: Int, worldSize: Int, address: RendezvousAddress, token: String, payload: [UInt8]? = nil,
  timeout: Duration, log: Box<[String]>? = nil
) -> (thread: TestThread, outcome: Box<RankOutcome?>) {
  let outcome = Box<RankOutcome?>(nil)
  let thread = TestThread {
    let start = ContinuousClock.now
    let result = Result { () throws(RendezvousError) -> [UInt8] in
      try Rendezvous.exchange(
        rank: rank, worldSize: worldSize, address: address, token: token, payload: payload, timeout: timeout,
        log: { line in log?.update { $0.append(line) } })
    }
    outcome.set(RankOutcome(result: result, seconds: seconds(ContinuousClock.now - start)))
  }
  return (thread, outcome)
}

func seconds(_ d: Duration) -> Double { Double(d.components.seconds) + Double(d.components.attoseconds) / 1e18 }

/// A loopback address on a port that was free a moment ago.
func freeAddress() throws -> RendezvousAddress {
  RendezvousAddress(host: "127.0.0.1", port: try RendezvousAddress.freeLoopbackPort())
}

/// A plain blocking TCP connection to `address`, retried for up to 5 s (rank 0 may not listen yet).
func rawConnect(_ address: RendezvousAddress) -> Int32? {
  guard var target = try? address.resolve() else { return nil }
  let end = ContinuousClock.now + .seconds(5)
  while ContinuousClock.now < end {
    let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
    let ok = withUnsafePointer(to: &target) {
      $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
    }
    if ok == 0 { return fd }
    close(fd)
    usleep(10_000)
  }
  return nil
}

func rawSend(_ fd: Int32, _ bytes: [UInt8]) {
  _ = bytes.withUnsafeBytes { send(fd, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL)) }
}

/// Reads until EOF (or 5 s), to see what rank 0 answered.
func rawReadAll(_ fd: Int32) -> [UInt8] {
  var result: [UInt8] = []
  let end = ContinuousClock.now + .seconds(5)
  while ContinuousClock.now < end {
    var entry = pollfd(fd: fd, events: Int16(POLLIN), revents: 0)
    guard poll(&entry, 1, 100) >= 0 else { break }
    if entry.revents == 0 { continue }
    var chunk = [UInt8](repeating: 0, count: 4096)
    let n = chunk.withUnsafeMutableBytes { recv(fd, $0.baseAddress, $0.count, 0) }
    if n <= 0 { break }
    result += chunk[0..<n]
  }
  return result
}

/// Payload bytes that differ from test to test.
func randomPayload(_ count: Int = 128) -> [UInt8] {
  (0..<count).map { _ in UInt8.random(in: 0...255) }
}

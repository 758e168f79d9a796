#if canImport(Glibc)
import Glibc
#endif

/// Distributes a few bytes from rank 0 to every rank of a job over TCP: NVSHMEM's unique ID, which
/// rank 0 creates and every process must pass to its initialisation.
///
/// Rank 0 listens at the address; every other rank connects (retrying, since rank 0 may start
/// later) and says hello with the job token, its rank and the world size. Rank 0 turns away
/// connections with a wrong token, world size or rank, or a duplicate rank, and keeps waiting for
/// the real ones; once all have joined it sends each the payload and waits for every
/// acknowledgement. One deadline bounds the whole exchange on every rank: a rank that never
/// starts, or a rank 0 that never answers, ends in an error that names it.
public enum Rendezvous {
  /// The default overall bound: long enough for ranks that compile kernels before they join.
  public static let defaultTimeout: Duration = .seconds(120)

  /// The payload from rank 0, on every rank.
  ///
  /// - Parameters:
  ///   - payload: rank 0's bytes (at most 4096); ignored on other ranks.
  ///   - timeout: the bound on the whole exchange, waiting for late ranks included.
  ///   - log: rank 0's notes on connections it turned away and ranks that joined.
  /// - Throws: `RendezvousError`, naming the missing ranks (rank 0) or the silent rank 0 (others).
  public static func exchange(
    rank: Int, worldSize: Int, address: RendezvousAddress, token: String, payload: [UInt8]?,
    timeout: Duration = defaultTimeout, log: @escaping (String) -> Void = { _ in }
  ) throws(RendezvousError) -> [UInt8] {
    guard worldSize >= 1, worldSize <= LaunchEnvironment.maxWorldSize else {
      throw .invalidArgument(field: "world size", value: "\(worldSize)", expected: "an integer in 1...\(LaunchEnvironment.maxWorldSize)")
    }
    guard rank >= 0, rank < worldSize else {
      throw .invalidArgument(field: "rank", value: "\(rank)", expected: "an integer in 0...\(worldSize - 1)")
    }
    guard token.utf8.count <= JobToken.maxLength else {
      throw .invalidArgument(field: "job token", value: "(\(token.utf8.count) bytes)", expected: "at most \(JobToken.maxLength) bytes")
    }
    let deadline = Deadline(after: timeout)
    guard rank == 0 else {
      return try joinRoot(rank: rank, worldSize: worldSize, address: address, token: Array(token.utf8), deadline: deadline)
    }
    guard let payload, payload.count <= RendezvousFrame.maxPayload else {
      throw .invalidArgument(
        field: "payload", value: payload.map { "\($0.count) bytes" } ?? "none",
        expected: "rank 0's bytes to distribute, at most \(RendezvousFrame.maxPayload)")
    }
    if worldSize == 1 { return payload }
    var root = try RendezvousRoot(worldSize: worldSize, address: address, token: Array(token.utf8), deadline: deadline, log: log)
    try root.distribute(payload)
    return payload
  }

  /// The same, with the rank, world size, token and address of a parsed launch environment.
  public static func exchange(
    _ environment: LaunchEnvironment, payload: [UInt8]?, timeout: Duration = defaultTimeout, log: @escaping (String) -> Void = { _ in }
  ) throws(RendezvousError) -> [UInt8] {
    try exchange(
      rank: environment.rank, worldSize: environment.worldSize, address: environment.rendezvous,
      token: environment.jobToken ?? "", payload: payload, timeout: timeout, log: log)
  }

  /// Rank > 0: connect (until the deadline), say hello, wait for the payload, acknowledge it.
  static func joinRoot(rank: Int, worldSize: Int, address: RendezvousAddress, token: [UInt8], deadline: Deadline)
    throws(RendezvousError) -> [UInt8]
  {
    let target = try address.resolve()
    var lastProblem = "no attempt before the deadline"
    var pause: Duration = .milliseconds(20)
    var fd: Int32 = -1
    connecting: while true {
      if deadline.passed {
        throw .rootNeverAnswered(address: address, seconds: deadline.timeoutSeconds, lastProblem: lastProblem)
      }
      switch try Net.connect(target, address, deadline: deadline, attempt: .seconds(2)) {
      case .connected(let socket):
        fd = socket
        break connecting
      case .failed(let problem):
        lastProblem = problem
        // Rank 0 may not listen yet: back off (20 ms doubling to 500 ms), never past the deadline.
        let wait = min(pause, deadline.end - .now)
        if wait > .zero { usleep(UInt32(clamping: Int64(deadline.seconds(wait) * 1e6))) }
        pause = min(pause * 2, .milliseconds(500))
      }
    }
    defer { close(fd) }

    let hello = RendezvousFrame.Hello(rank: rank, worldSize: worldSize, token: token).frame().encoded()
    if Net.sendAll(fd, hello, deadline: deadline) != nil {
      throw deadline.passed ? .rootSilent(address: address, seconds: deadline.timeoutSeconds) : .rootClosed(address: address)
    }
    var buffer: [UInt8] = []
    while true {
      switch RendezvousFrame.decode(buffer[...]) {
      case .frame(let frame, _):
        switch frame.kind {
        case .payload:
          guard frame.body.count <= RendezvousFrame.maxPayload else {
            throw .notRendezvous(address: address, problem: "a payload of \(frame.body.count) bytes")
          }
          // Rank 0 waits for this before it returns; if it cannot be sent rank 0 names us.
          _ = Net.sendAll(fd, RendezvousFrame.ack(rank: rank).encoded(), deadline: deadline)
          return frame.body
        case .reject:
          throw .rejected(address: address, reason: printable(frame.body))
        case .hello, .ack:
          throw .notRendezvous(address: address, problem: "an unexpected \(frame.kind) frame")
        }
      case .invalid(let problem, _):
        throw .notRendezvous(address: address, problem: problem)
      case .incomplete:
        break
      }
      var entry = pollfd(fd: fd, events: Int16(POLLIN), revents: 0)
      let ready = poll(&entry, 1, deadline.pollMilliseconds())
      if ready == 0 && deadline.passed { throw .rootSilent(address: address, seconds: deadline.timeoutSeconds) }
      guard ready > 0 else { continue }
      switch Net.receive(fd, into: &buffer, limit: RendezvousFrame.headerSize + RendezvousFrame.maxBody - buffer.count) {
      case .data, .nothing: continue
      case .closed, .failed: throw .rootClosed(address: address)
      }
    }
  }

  /// Text from the network, made safe to print: control characters become '?', at most 512.
  static func printable(_ bytes: [UInt8]) -> String {
    var text = String.UnicodeScalarView()
    for scalar in String(decoding: bytes, as: UTF8.self).unicodeScalars.prefix(512) {
      text.append(scalar.properties.generalCategory == .control ? "?" : scalar)
    }
    return String(text)
  }
}

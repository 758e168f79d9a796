#if canImport(Glibc)
import Glibc
#endif

/// Rank 0's side: one poll(2) loop over the listening socket and every connection, so a slow or
/// hostile connection delays no one else, and no wait outlasts the deadline.
struct RendezvousRoot {
  /// A connection that has not said hello yet is closed after this (or the deadline).
  static let helloTimeout: Duration = .seconds(5)
  /// Connections allowed to wait for their hello at once; more are closed on arrival.
  static let maxPending = 64

  /// One accepted socket.
  final class Connection {
    let fd: Int32
    let peer: String
    let helloBy: ContinuousClock.Instant
    var buffer: [UInt8] = []

    init(fd: Int32, peer: String, helloBy: ContinuousClock.Instant) {
      self.fd = fd
      self.peer = peer
      self.helloBy = helloBy
    }

    deinit { close(fd) }
  }

  let worldSize: Int
  let address: RendezvousAddress
  let token: [UInt8]
  let deadline: Deadline
  let log: (String) -> Void
  private var listener: Int32
  private var pending: [Connection] = []
  private var joined: [Int: Connection] = [:]
  /// Ranks that joined and then disconnected (removed again if they rejoin).
  private var departed: Set<Int> = []
  private(set) var rejected = 0
  private var lastRejection: String?

  init(worldSize: Int, address: RendezvousAddress, token: [UInt8], deadline: Deadline, log: @escaping (String) -> Void)
    throws(RendezvousError)
  {
    self.worldSize = worldSize
    self.address = address
    self.token = token
    self.deadline = deadline
    self.log = log
    listener = try Net.listen(address)
  }

  /// Waits for every rank, sends each the payload, waits for every acknowledgement.
  mutating func distribute(_ payload: [UInt8]) throws(RendezvousError) {
    defer { closeListener() }
    try gather()
    // Everyone is here: no one else may join.
    closeListener()
    pending.removeAll()
    let frame = RendezvousFrame(kind: .payload, body: payload).encoded()
    for (rank, connection) in joined.sorted(by: { $0.key < $1.key }) {
      if let problem = Net.sendAll(connection.fd, frame, deadline: deadline) {
        throw .rankLost(rank: rank, address: address, problem: problem)
      }
    }
    try collectAcknowledgements()
  }

  private mutating func closeListener() {
    if listener >= 0 { close(listener) }
    listener = -1
  }

  /// Until worldSize − 1 distinct, valid ranks are connected.
  private mutating func gather() throws(RendezvousError) {
    while joined.count < worldSize - 1 {
      if deadline.passed {
        let missing = (1..<worldSize).filter { joined[$0] == nil }
        throw .ranksNeverJoined(
          ranks: missing.filter { !departed.contains($0) }, departed: missing.filter { departed.contains($0) }, address: address, seconds: deadline.timeoutSeconds, rejected: rejected, lastRejection: lastRejection)
      }
      let watched = pending + joined.values
      var entries = [pollfd(fd: listener, events: Int16(POLLIN), revents: 0)]
      entries += watched.map { pollfd(fd: $0.fd, events: Int16(POLLIN), revents: 0) }
      // Wake for the deadline or the next hello timeout, whichever is first.
      let nextHello = pending.map(\.helloBy).min().map { $0 - .now } ?? .seconds(3600)
      let ready = poll(&entries, nfds_t(entries.count), deadline.pollMilliseconds(cap: max(nextHello, .milliseconds(1))))
      if ready < 0 && errno != EINTR {
        throw .system(call: "poll", address: address, problem: String(cString: strerror(errno)))
      }
      if entries[0].revents != 0 { acceptAll() }
      for (connection, entry) in zip(watched, entries.dropFirst()) where entry.revents != 0 {
        read(connection)
      }
      for connection in pending where connection.helloBy <= .now {
        turnAway(connection, "sent no hello within \(Int(deadline.seconds(Self.helloTimeout))) s", tell: false)
      }
    }
  }

  private mutating func acceptAll() {
    while let (fd, peer) = Net.accept(listener) {
      let connection = Connection(fd: fd, peer: peer, helloBy: min(.now + Self.helloTimeout, deadline.end))
      guard pending.count < Self.maxPending else {
        rejected += 1
        lastRejection = "too many connections waiting (\(Self.maxPending)), closed \(peer)"
        log("rendezvous: \(lastRejection ?? "")")
        continue
      }
      pending.append(connection)
    }
  }

  /// New bytes from a pending or joined connection.
  private mutating func read(_ connection: Connection) {
    let limit = RendezvousFrame.headerSize + RendezvousFrame.maxBody - connection.buffer.count
    let result = Net.receive(connection.fd, into: &connection.buffer, limit: limit)
    if let rank = joined.first(where: { $0.value === connection })?.key {
      // A joined rank sends nothing until the payload: EOF or bytes mean it is gone or confused.
      // Drop it; it counts as missing again unless it reconnects.
      switch result {
      case .nothing: return
      case .closed, .failed: log("rendezvous: rank \(rank) (\(connection.peer)) disconnected before the payload")
      case .data: log("rendezvous: rank \(rank) (\(connection.peer)) sent bytes before the payload; dropped")
      }
      joined[rank] = nil
      departed.insert(rank)
      return
    }
    switch result {
    case .nothing: return
    case .closed: return turnAway(connection, "closed before its hello", tell: false)
    case .failed(let problem): return turnAway(connection, problem, tell: false)
    case .data: break
    }
    switch RendezvousFrame.decode(connection.buffer[...]) {
    case .incomplete:
      return
    case .invalid(let problem, let recognised):
      turnAway(connection, problem, tell: recognised)
    case .frame(let frame, let length):
      guard frame.kind == .hello, length == connection.buffer.count else {
        return turnAway(connection, "expected one hello frame, got \(frame.kind)\(length == connection.buffer.count ? "" : " and more")", tell: true)
      }
      switch RendezvousFrame.Hello.parse(frame.body) {
      case .failure(let error): turnAway(connection, error.reason, tell: true)
      case .success(let hello): admit(connection, hello)
      }
    }
  }

  private mutating func admit(_ connection: Connection, _ hello: RendezvousFrame.Hello) {
    // The token first: a stranger learns nothing about the job's ranks or size.
    guard JobToken.equal(hello.token, token) else {
      return turnAway(connection, "the job token differs (FLASHMOE_JOB_TOKEN; another job on this port?)", tell: true)
    }
    guard hello.worldSize == worldSize else {
      return turnAway(connection, "world size \(hello.worldSize), but rank 0 has \(worldSize)", tell: true)
    }
    guard hello.rank >= 1, hello.rank < worldSize else {
      return turnAway(connection, "rank \(hello.rank), expected one in 1...\(worldSize - 1)", tell: true)
    }
    guard joined[hello.rank] == nil else {
      return turnAway(connection, "rank \(hello.rank) has already joined (two processes with one rank?)", tell: true)
    }
    pending.removeAll { $0 === connection }
    connection.buffer.removeAll()
    joined[hello.rank] = connection
    departed.remove(hello.rank)
    log("rendezvous: rank \(hello.rank) joined from \(connection.peer) (\(joined.count + 1) of \(worldSize))")
  }

  /// Closes a connection that is not one of the job's ranks; `tell`: it speaks the protocol, so it
  /// gets the reason first (a misconfigured rank then fails at once, naming it).
  private mutating func turnAway(_ connection: Connection, _ reason: String, tell: Bool) {
    rejected += 1
    lastRejection = "\(reason), from \(connection.peer)"
    log("rendezvous: rejected \(connection.peer): \(reason)")
    if tell {
      // Best effort, short: a peer that does not read must not stall rank 0.
      let shortWait = Deadline(after: min(.milliseconds(100), deadline.end - .now))
      _ = Net.sendAll(connection.fd, RendezvousFrame.reject(reason).encoded(), deadline: shortWait)
      shutdown(connection.fd, Int32(SHUT_WR))
    }
    pending.removeAll { $0 === connection }
  }

  /// Every joined rank's ack, before the deadline.
  private mutating func collectAcknowledgements() throws(RendezvousError) {
    var waiting = joined
    while !waiting.isEmpty {
      if deadline.passed {
        throw .ranksNeverAcknowledged(ranks: waiting.keys.sorted(), address: address, seconds: deadline.timeoutSeconds)
      }
      let ranks = Array(waiting.keys)
      var entries = ranks.map { pollfd(fd: waiting[$0]?.fd ?? -1, events: Int16(POLLIN), revents: 0) }
      let ready = poll(&entries, nfds_t(entries.count), deadline.pollMilliseconds())
      if ready < 0 && errno != EINTR {
        throw .system(call: "poll", address: address, problem: String(cString: strerror(errno)))
      }
      for (rank, entry) in zip(ranks, entries) where entry.revents != 0 {
        guard let connection = waiting[rank] else { continue }
        switch Net.receive(connection.fd, into: &connection.buffer, limit: RendezvousFrame.headerSize + 4 - connection.buffer.count) {
        case .nothing, .data: break
        case .closed: throw .rankLost(rank: rank, address: address, problem: "connection closed")
        case .failed(let problem): throw .rankLost(rank: rank, address: address, problem: problem)
        }
        switch RendezvousFrame.decode(connection.buffer[...]) {
        case .incomplete: continue
        case .frame(let frame, _) where frame.kind == .ack && frame.body == bigEndian(UInt32(rank)):
          waiting[rank] = nil
        case .frame(let frame, _):
          throw .rankLost(rank: rank, address: address, problem: "sent \(frame.kind) instead of an acknowledgement")
        case .invalid(let problem, _):
          throw .rankLost(rank: rank, address: address, problem: problem)
        }
      }
    }
  }
}

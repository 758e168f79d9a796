import Synchronization

#if canImport(Glibc)
import Glibc
#endif

/// Thin, non-blocking TCP helpers for the rendezvous. Every wait is a poll(2) bounded by a
/// Deadline, so a silent or vanished peer costs at most the time left, never a hang.
enum Net {
  /// Held while a descriptor exists without FD_CLOEXEC (accept, pipe) and while children are
  /// spawned: a child started by another thread in that window would inherit the descriptor and
  /// keep a connection or pipe open after we close it. (accept4 and pipe2, which set the flag
  /// atomically, are not visible from Swift's Glibc module.)
  static let descriptorLock = Mutex(())

  /// A non-blocking, close-on-exec IPv4 stream socket.
  static func socket(_ address: RendezvousAddress) throws(RendezvousError) -> Int32 {
    let type = Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue) | Int32(SOCK_NONBLOCK.rawValue)
    let fd = Glibc.socket(AF_INET, type, 0)
    guard fd >= 0 else { throw failure("socket", address) }
    return fd
  }

  /// A listening socket on the address (SO_REUSEADDR: a previous job's TIME_WAIT does not block
  /// the port; a live listener still does, and that is reported).
  static func listen(_ address: RendezvousAddress) throws(RendezvousError) -> Int32 {
    var target = try address.resolve()
    let fd = try socket(address)
    var one: Int32 = 1
    _ = setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, socklen_t(MemoryLayout<Int32>.size))
    let bound = withUnsafePointer(to: &target) {
      $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
    }
    guard bound == 0 else {
      let code = errno
      close(fd)
      if code == EADDRINUSE {
        throw .system(call: "bind", address: address, problem: "the port is in use (another job's rank 0? choose another --rendezvous port)")
      }
      throw .system(call: "bind", address: address, problem: String(cString: strerror(code)))
    }
    guard Glibc.listen(fd, 128) == 0 else {
      let error = failure("listen", address)
      close(fd)
      throw error
    }
    return fd
  }

  /// Accepts one pending connection, non-blocking and close-on-exec; nil when none is pending.
  static func accept(_ listener: Int32) -> (fd: Int32, peer: String)? {
    var peer = sockaddr_in()
    var length = socklen_t(MemoryLayout<sockaddr_in>.size)
    let fd = descriptorLock.withLock { _ -> Int32 in
      let fd = withUnsafeMutablePointer(to: &peer) {
        $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { Glibc.accept(listener, $0, &length) }
      }
      if fd >= 0 { _ = fcntl(fd, F_SETFD, FD_CLOEXEC) }
      return fd
    }
    guard fd >= 0 else { return nil }
    _ = fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK)
    return (fd, describe(peer))
  }

  enum ConnectResult {
    case connected(Int32)
    /// Worth retrying until the deadline: refused, unreachable, timed out.
    case failed(String)
  }

  /// One connection attempt, bounded by the deadline and by `attempt`.
  static func connect(_ target: sockaddr_in, _ address: RendezvousAddress, deadline: Deadline, attempt: Duration)
    throws(RendezvousError) -> ConnectResult
  {
    let fd = try socket(address)
    var target = target
    let started = withUnsafePointer(to: &target) {
      $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { Glibc.connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
    }
    if started == 0 { return .connected(fd) }
    let code = errno
    guard code == EINPROGRESS || code == EINTR else {
      close(fd)
      return .failed(String(cString: strerror(code)))
    }
    var entry = pollfd(fd: fd, events: Int16(POLLOUT), revents: 0)
    let ready = poll(&entry, 1, deadline.pollMilliseconds(cap: attempt))
    guard ready > 0 else {
      close(fd)
      return .failed(ready == 0 ? "connection attempt timed out" : String(cString: strerror(errno)))
    }
    var error: Int32 = 0
    var length = socklen_t(MemoryLayout<Int32>.size)
    getsockopt(fd, SOL_SOCKET, SO_ERROR, &error, &length)
    guard error == 0 else {
      close(fd)
      return .failed(String(cString: strerror(error)))
    }
    // Connecting to a free port in the ephemeral range can pick that very port as the source and
    // connect the socket to itself (TCP simultaneous open); that is no rank 0.
    if let local = endpoint(fd, getsockname), local == endpoint(fd, getpeername) {
      close(fd)
      return .failed("connection refused (connected to itself)")
    }
    return .connected(fd)
  }

  /// "a.b.c.d:port" from getsockname or getpeername; nil when the call fails.
  private static func endpoint(
    _ fd: Int32, _ call: (Int32, UnsafeMutablePointer<sockaddr>?, UnsafeMutablePointer<socklen_t>?) -> Int32
  ) -> String? {
    var address = sockaddr_in()
    var length = socklen_t(MemoryLayout<sockaddr_in>.size)
    let status = withUnsafeMutablePointer(to: &address) {
      $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { call(fd, $0, &length) }
    }
    return status == 0 ? describe(address) : nil
  }

  /// Writes all of `bytes` before the deadline; nil on success, else why not (the deadline
  /// passed, the peer is gone).
  static func sendAll(_ fd: Int32, _ bytes: [UInt8], deadline: Deadline) -> String? {
    var offset = 0
    while offset < bytes.count {
      let n = bytes[offset...].withUnsafeBytes { send(fd, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL)) }
      if n > 0 {
        offset += n
        continue
      }
      let code = errno
      guard n < 0, code == EAGAIN || code == EWOULDBLOCK || code == EINTR else {
        return n == 0 ? "connection closed" : String(cString: strerror(code))
      }
      var entry = pollfd(fd: fd, events: Int16(POLLOUT), revents: 0)
      if poll(&entry, 1, deadline.pollMilliseconds()) == 0 && deadline.passed { return "send timed out" }
    }
    return nil
  }

  enum ReadResult {
    case data(Int)
    case closed
    case nothing
    case failed(String)
  }

  /// Reads what is available, at most `limit` more bytes, into `buffer`.
  static func receive(_ fd: Int32, into buffer: inout [UInt8], limit: Int) -> ReadResult {
    guard limit > 0 else { return .failed("more bytes than any frame holds") }
    var chunk = [UInt8](repeating: 0, count: min(limit, 8192))
    let n = chunk.withUnsafeMutableBytes { recv(fd, $0.baseAddress, $0.count, 0) }
    if n > 0 {
      buffer += chunk[0..<n]
      return .data(n)
    }
    if n == 0 { return .closed }
    let code = errno
    if code == EAGAIN || code == EWOULDBLOCK || code == EINTR { return .nothing }
    return .failed(String(cString: strerror(code)))
  }

  static func failure(_ call: String, _ address: RendezvousAddress) -> RendezvousError {
    .system(call: call, address: address, problem: String(cString: strerror(errno)))
  }

  /// "a.b.c.d:port" of a peer, for logs.
  static func describe(_ address: sockaddr_in) -> String {
    let ip = UInt32(bigEndian: address.sin_addr.s_addr)
    return "\(ip >> 24).\((ip >> 16) & 0xFF).\((ip >> 8) & 0xFF).\(ip & 0xFF):\(UInt16(bigEndian: address.sin_port))"
  }
}

import MoECore

#if canImport(Glibc)
import Glibc
#endif

/// Where rank 0 listens: an IPv4 address or a host name, and a TCP port.
public struct RendezvousAddress: Hashable, Sendable, CustomStringConvertible {
  public static let defaultHost = "127.0.0.1"
  /// Away from torch's 29500 (MASTER_PORT), which torchrun's own store may hold.
  public static let defaultPort: UInt16 = 29531
  public static let `default` = RendezvousAddress(host: defaultHost, port: defaultPort)

  public var host: String
  public var port: UInt16

  public init(host: String, port: UInt16) {
    self.host = host
    self.port = port
  }

  public var description: String { "\(host):\(port)" }

  /// `HOST:PORT`, `HOST` (the default port) or `:PORT` (loopback).
  /// - Throws: `ConfigError` naming `field`, the text and what is accepted.
  public static func parse(_ text: String, field: String = "rendezvous") throws(ConfigError) -> RendezvousAddress {
    let expected = "HOST:PORT with an IPv4 address or host name and a port in 1...65535 (e.g. 127.0.0.1:\(defaultPort))"
    func fail(_ why: String) -> ConfigError { ConfigError(field: field, value: "'\(text)'", expected: "\(expected); \(why)") }
    guard !text.isEmpty else { throw fail("the text is empty") }
    let parts = text.split(separator: ":", omittingEmptySubsequences: false)
    guard parts.count <= 2 else { throw fail("more than one ':' (IPv6 is not supported)") }
    let host = parts[0].isEmpty ? defaultHost : String(parts[0])
    // Host names: letters, digits, '.', '-', '_' (RFC 1123 and what /etc/hosts holds), ≤ 253.
    let allowed = { (c: UInt8) in
      (UInt8(ascii: "a")...UInt8(ascii: "z")).contains(c | 0x20) || (UInt8(ascii: "0")...UInt8(ascii: "9")).contains(c)
        || c == UInt8(ascii: ".") || c == UInt8(ascii: "-") || c == UInt8(ascii: "_")
    }
    guard host.utf8.count <= 253, host.utf8.allSatisfy(allowed) else { throw fail("the host holds characters outside letters, digits, '.', '-' and '_'") }
    var port = defaultPort
    if parts.count == 2 {
      let digits = parts[1]
      guard !digits.isEmpty, digits.count <= 5, digits.allSatisfy({ $0.isASCII && $0.isNumber }), let n = Int(digits), (1...65535).contains(n)
      else { throw fail("the port '\(digits)' is not in 1...65535") }
      port = UInt16(n)
    }
    return RendezvousAddress(host: host, port: port)
  }

  /// The first IPv4 address getaddrinfo gives for the host, with the port.
  func resolve() throws(RendezvousError) -> sockaddr_in {
    var hints = addrinfo()
    hints.ai_family = AF_INET
    hints.ai_socktype = Int32(SOCK_STREAM.rawValue)
    var list: UnsafeMutablePointer<addrinfo>?
    let status = getaddrinfo(host, nil, &hints, &list)
    guard status == 0 else {
      throw .unresolvable(host: host, problem: String(cString: gai_strerror(status)))
    }
    defer { freeaddrinfo(list) }
    var entry = list
    while let current = entry?.pointee {
      if current.ai_family == AF_INET, let raw = current.ai_addr, current.ai_addrlen >= socklen_t(MemoryLayout<sockaddr_in>.size) {
        var address = UnsafeRawPointer(raw).loadUnaligned(as: sockaddr_in.self)
        address.sin_port = port.bigEndian
        return address
      }
      entry = current.ai_next
    }
    throw .unresolvable(host: host, problem: "no IPv4 address among the answers")
  }

  /// A loopback port that was free a moment ago (bound with port 0, then closed). Another process
  /// could take it before rank 0 binds it; rank 0 then fails naming the address, never hangs.
  public static func freeLoopbackPort() throws(RendezvousError) -> UInt16 {
    let probe = RendezvousAddress(host: "127.0.0.1", port: 0)
    let fd = try Net.socket(probe)
    defer { close(fd) }
    var address = try probe.resolve()
    let bound = withUnsafePointer(to: &address) {
      $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
    }
    guard bound == 0 else { throw Net.failure("bind", probe) }
    var length = socklen_t(MemoryLayout<sockaddr_in>.size)
    let named = withUnsafeMutablePointer(to: &address) {
      $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(fd, $0, &length) }
    }
    guard named == 0 else { throw Net.failure("getsockname", probe) }
    return UInt16(bigEndian: address.sin_port)
  }
}

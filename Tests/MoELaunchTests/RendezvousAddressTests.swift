import MoECore
import Testing

@testable import MoELaunch

@Suite struct RendezvousAddressTests {
  @Test(arguments: [
    ("127.0.0.1:5000", "127.0.0.1", 5000),
    ("localhost:1", "localhost", 1),
    ("node-3.cluster_a:65535", "node-3.cluster_a", 65535),
    ("10.0.0.2", "10.0.0.2", Int(RendezvousAddress.defaultPort)),
    (":6000", RendezvousAddress.defaultHost, 6000),
  ])
  func validAddresses(text: String, host: String, port: Int) throws {
    let address = try RendezvousAddress.parse(text)
    #expect(address.host == host)
    #expect(Int(address.port) == port)
    #expect(try RendezvousAddress.parse(address.description) == address)
  }

  @Test(arguments: ["", "host:", "host:0", "host:65536", "host:-1", "host:12a", "host:123456", "::1", "[::1]:80", "a b:80", "h:80:90", "hôte:80"])
  func invalidAddressesNameTheField(text: String) {
    do {
      let address = try RendezvousAddress.parse(text, field: "rendezvous")
      Issue.record("accepted '\(text)' as \(address)")
    } catch {
      #expect(error.field == "rendezvous")
      #expect(error.value == "'\(text)'")
      #expect(error.expected.contains("HOST:PORT"))
    }
  }

  @Test func loopbackNamesResolve() throws {
    for host in ["127.0.0.1", "localhost"] {
      let resolved = try RendezvousAddress(host: host, port: 4242).resolve()
      #expect(UInt16(bigEndian: resolved.sin_port) == 4242)
      #expect(UInt32(bigEndian: resolved.sin_addr.s_addr) >> 24 == 127)
    }
  }

  @Test func unknownHostIsAnError() {
    #expect(throws: RendezvousError.self) { try RendezvousAddress(host: "no-such-host.invalid", port: 1).resolve() }
  }

  @Test func freePortsAreUsable() throws {
    let port = try RendezvousAddress.freeLoopbackPort()
    #expect(port != 0)
  }
}

import Testing

@testable import MoELaunch

@Suite struct RendezvousFrameTests {
  @Test func helloRoundTripsAndArrivesByteByByte() throws {
    let hello = RendezvousFrame.Hello(rank: 3, worldSize: 70000, token: Array("token-abcdef".utf8))
    let bytes = hello.frame().encoded()
    for n in 0..<bytes.count {
      #expect(RendezvousFrame.decode(bytes[0..<n]) == .incomplete, "prefix of \(n) bytes")
    }
    guard case .frame(let frame, let length) = RendezvousFrame.decode((bytes + [9, 9])[...]) else {
      Issue.record("no frame decoded")
      return
    }
    #expect(length == bytes.count)
    #expect(frame.kind == .hello)
    #expect(try RendezvousFrame.Hello.parse(frame.body).get() == hello)
  }

  /// A stranger's bytes are recognised as garbage as early as possible, before any allocation
  /// sized by them.
  @Test(arguments: [
    (Array("GET / HTTP/1.1\r\n".utf8), false, "magic"),
    ([0x46], false, ""),  // "F": could still be ours
    ([0x46, 0x4D, 0x52, 0x5A, 0x00, 0x02], true, "version 2"),
    ([0x46, 0x4D, 0x52, 0x5A, 0x00, 0x01, 0x09, 0x00], true, "type 9"),
    ([0x46, 0x4D, 0x52, 0x5A, 0x00, 0x01, 0x01, 0x01], true, "flags 1"),
    ([0x46, 0x4D, 0x52, 0x5A, 0x00, 0x01, 0x01, 0x00, 0xFF, 0xFF, 0xFF, 0xFF], true, "4294967295 bytes"),
  ] as [([UInt8], Bool, String)])
  func garbageIsRejectedEarly(bytes: [UInt8], recognised: Bool, reason: String) {
    let decoded = RendezvousFrame.decode(bytes[...])
    if reason.isEmpty {
      #expect(decoded == .incomplete)
    } else if case .invalid(let why, let ours) = decoded {
      #expect(why.contains(reason), "\(why)")
      #expect(ours == recognised)
    } else {
      Issue.record("\(bytes) decoded as \(decoded)")
    }
  }

  @Test(arguments: [
    [UInt8](),
    [0, 0, 0, 1, 0, 0, 0, 2, 0, 5, 65],  // claims 5 token bytes, has 1
    [0, 0, 0, 1, 0, 0, 0, 2, 0, 0, 65],  // a trailing byte
    [0, 0, 0, 1, 0, 0, 0, 2, 0xFF, 0xFF] + [UInt8](repeating: 65, count: 65535),  // an oversized token
  ])
  func malformedHellosAreRefused(body: [UInt8]) {
    #expect(throws: RendezvousFrame.HelloError.self) { try RendezvousFrame.Hello.parse(body).get() }
  }

  @Test(arguments: [
    ("abc", "abc", true), ("abc", "abd", false), ("abc", "abcd", false), ("", "", true), ("", "x", false), ("zbc", "abc", false),
  ])
  func tokensCompare(a: String, b: String, equal: Bool) {
    #expect(JobToken.equal(Array(a.utf8), Array(b.utf8)) == equal)
    #expect(JobToken.equal(Array(b.utf8), Array(a.utf8)) == equal)
  }

  @Test func freshTokensAreHexAndDiffer() throws {
    let a = JobToken.fresh(), b = JobToken.fresh()
    #expect(a.count == 32 && b.count == 32)
    #expect(a.allSatisfy { $0.isHexDigit && !$0.isUppercase })
    #expect(a != b)
    #expect(try LaunchEnvironment.token(a) == a)
  }
}

@Suite struct NetworkTextTests {
  /// A reason sent by whatever answers on the port cannot put control sequences on a terminal.
  @Test func rejectReasonsArePrintable() {
    #expect(Rendezvous.printable(Array("bad\u{1B}[2J token\n".utf8)) == "bad?[2J token?")
    #expect(Rendezvous.printable([UInt8](repeating: 65, count: 5000)).count == 512)
    #expect(Rendezvous.printable([0xFF, 0x41]) == "\u{FFFD}A")
  }
}

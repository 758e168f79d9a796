import Testing

#if canImport(Glibc)
import Glibc
#endif

@testable import MoELaunch

/// Ranks as threads of this process, on loopback.
@Suite struct RendezvousTests {
  /// Every rank gets rank 0's bytes, whichever starts first: here the others start before rank 0
  /// listens, so they must retry.
  @Test(arguments: [2, 3, 4])
  func everyRankGetsRankZerosPayload(worldSize: Int) throws {
    let address = try freeAddress()
    let token = JobToken.fresh()
    let payload = randomPayload()
    var ranks = (1..<worldSize).map { startRank(rank: $0, worldSize: worldSize, address: address, token: token, timeout: .seconds(20)) }
    usleep(150_000)
    ranks.insert(startRank(rank: 0, worldSize: worldSize, address: address, token: token, payload: payload, timeout: .seconds(20)), at: 0)
    for (rank, started) in ranks.enumerated() {
      started.thread.join()
      let outcome = try #require(started.outcome.value)
      #expect(try outcome.result.get() == payload, "rank \(rank)")
    }
  }

  @Test func aWorldOfOneNeedsNoNetwork() throws {
    // The host does not resolve: one rank must not even try.
    let payload = randomPayload(7)
    let result = try Rendezvous.exchange(
      rank: 0, worldSize: 1, address: RendezvousAddress(host: "no-such-host.invalid", port: 1), token: "", payload: payload)
    #expect(result == payload)
  }

  @Test func theEnvironmentsPlaceIsUsed() throws {
    let address = try freeAddress()
    let token = JobToken.fresh()
    let payload = randomPayload()
    let peer = TestThread {
      _ = try? Rendezvous.exchange(
        LaunchEnvironment(rank: 1, worldSize: 2, localRank: 1, jobToken: token, rendezvous: address), payload: nil, timeout: .seconds(20))
    }
    let got = try Rendezvous.exchange(
      LaunchEnvironment(rank: 0, worldSize: 2, localRank: 0, jobToken: token, rendezvous: address), payload: payload, timeout: .seconds(20))
    peer.join()
    #expect(got == payload)
  }

  /// A connection with the wrong token is told so and closed; the job's ranks still meet.
  @Test func aWrongTokenIsRejectedWhileTheRightOnesSucceed() throws {
    let address = try freeAddress()
    let token = JobToken.fresh()
    let payload = randomPayload()
    let log = Box<[String]>([])
    let root = startRank(rank: 0, worldSize: 3, address: address, token: token, payload: payload, timeout: .seconds(20), log: log)
    // The impostor claims a real rank; it is turned away for the token before that rank arrives.
    let impostor = startRank(rank: 1, worldSize: 3, address: address, token: JobToken.fresh(), timeout: .seconds(20))
    impostor.thread.join()
    let refused = try #require(impostor.outcome.value)
    guard case .failure(.rejected(let at, let reason)) = refused.result else {
      Issue.record("the impostor got \(refused.result)")
      return
    }
    #expect(at == address && reason.contains("token"))
    let peers = [1, 2].map { startRank(rank: $0, worldSize: 3, address: address, token: token, timeout: .seconds(20)) }
    for started in [root] + peers {
      started.thread.join()
      #expect(try started.outcome.value?.result.get() == payload)
    }
    #expect(log.value.contains { $0.contains("rejected") && $0.contains("token") })
  }

  /// Hellos that claim the wrong world, an impossible rank or a rank already taken are rejected
  /// with the reason; the real ranks complete.
  @Test(arguments: [
    (5, 3, "rank 5"),
    (0, 3, "rank 0"),
    (1, 4, "world size 4"),
    (1, 3, "already joined"),
  ])
  func badHellosAreRejected(rank: Int, worldSize: Int, reason: String) throws {
    let address = try freeAddress()
    let token = JobToken.fresh()
    let payload = randomPayload()
    let root = startRank(rank: 0, worldSize: 3, address: address, token: token, payload: payload, timeout: .seconds(20))
    let first = startRank(rank: 1, worldSize: 3, address: address, token: token, timeout: .seconds(20))
    // Rank 1 joins first, so a second rank 1 is a duplicate; wait until rank 0 has it.
    usleep(300_000)
    // Sent by hand: the API itself refuses to send an impossible rank.
    let fd = try #require(rawConnect(address))
    defer { close(fd) }
    rawSend(fd, RendezvousFrame.Hello(rank: rank, worldSize: worldSize, token: Array(token.utf8)).frame().encoded())
    let answer = rawReadAll(fd)
    guard case .frame(let frame, _) = RendezvousFrame.decode(answer[...]), frame.kind == .reject else {
      Issue.record("the bad hello got \(answer)")
      return
    }
    let why = String(decoding: frame.body, as: UTF8.self)
    #expect(why.contains(reason), "\(why)")
    let last = startRank(rank: 2, worldSize: 3, address: address, token: token, timeout: .seconds(20))
    for started in [root, first, last] {
      started.thread.join()
      #expect(try started.outcome.value?.result.get() == payload)
    }
  }

  /// Rank 0 fails within the deadline naming the rank that never came; the rank that did come
  /// learns that rank 0 gave up, also in bounded time.
  @Test func aMissingRankMakesRankZeroFailInTime() throws {
    let address = try freeAddress()
    let token = JobToken.fresh()
    let timeout = 1.5
    let root = startRank(rank: 0, worldSize: 3, address: address, token: token, payload: randomPayload(), timeout: .seconds(timeout))
    let present = startRank(rank: 1, worldSize: 3, address: address, token: token, timeout: .seconds(timeout))
    root.thread.join()
    present.thread.join()
    let failed = try #require(root.outcome.value)
    #expect(failed.seconds >= timeout - 0.05 && failed.seconds < timeout + 1.0, "took \(failed.seconds) s")
    guard case .failure(let error) = failed.result, case .ranksNeverJoined(let ranks, let departed, let at, _, _, _) = error else {
      Issue.record("rank 0 got \(failed.result)")
      return
    }
    // Rank 1 has the same deadline: it may give up (and be seen leaving) just before rank 0 does.
    #expect(ranks == [2] && departed.allSatisfy { $0 == 1 } && at == address, "\(error)")
    #expect(error.description.contains("rank 2") && error.description.contains(address.description))
    let peer = try #require(present.outcome.value)
    #expect(peer.seconds < timeout + 1.0)
    switch peer.result {
    case .failure(.rootClosed), .failure(.rootSilent): break
    default: Issue.record("rank 1 got \(peer.result)")
    }
  }

  /// A rank whose rank 0 never starts fails within the deadline, naming the address.
  @Test func aRankZeroThatNeverStartsMakesPeersFailInTime() throws {
    let address = try freeAddress()
    let timeout = 1.0
    let peer = startRank(rank: 1, worldSize: 2, address: address, token: "t", timeout: .seconds(timeout))
    peer.thread.join()
    let outcome = try #require(peer.outcome.value)
    #expect(outcome.seconds >= timeout - 0.05 && outcome.seconds < timeout + 1.0, "took \(outcome.seconds) s")
    guard case .failure(let error) = outcome.result, case .rootNeverAnswered(let at, _, _) = error else {
      Issue.record("got \(outcome.result)")
      return
    }
    #expect(at == address)
    #expect(error.description.contains("rank 0 never answered") && error.description.contains(address.description))
  }

  /// Garbage, an oversized length, a truncated frame, an early close and a silent connection do not
  /// stop rank 0 or crash it: each is turned away (or ignored) and the real rank still joins.
  @Test func strangersBytesDoNotStopRankZero() throws {
    let address = try freeAddress()
    let token = JobToken.fresh()
    let payload = randomPayload()
    let log = Box<[String]>([])
    let root = startRank(rank: 0, worldSize: 2, address: address, token: token, payload: payload, timeout: .seconds(20), log: log)
    let header: [UInt8] = Array("FMRZ".utf8) + [0, 1, 1, 0]
    let strangers: [[UInt8]] = [
      Array("GET / HTTP/1.1\r\nHost: x\r\n\r\n".utf8),
      header + [0xFF, 0xFF, 0xFF, 0xFF],
      header + [0, 0, 0x10, 0] + [UInt8](repeating: 0xAB, count: 9000),
      header + [0, 0, 0, 20, 1, 2],
      [],
      (0..<4096).map { UInt8(truncatingIfNeeded: $0 &* 37) },
    ]
    let silent = try #require(rawConnect(address))
    defer { close(silent) }
    for bytes in strangers {
      let fd = try #require(rawConnect(address))
      rawSend(fd, bytes)
      shutdown(fd, Int32(SHUT_WR))
      _ = rawReadAll(fd)  // until rank 0 closes it
      close(fd)
    }
    let peer = startRank(rank: 1, worldSize: 2, address: address, token: token, timeout: .seconds(20))
    for started in [root, peer] {
      started.thread.join()
      #expect(try started.outcome.value?.result.get() == payload)
    }
    #expect(log.value.filter { $0.contains("rejected") }.count == strangers.count, "\(log.value)")
  }

  /// A peer that reaches something else on the port fails at once, saying so.
  @Test func aPeerReachingAnotherProgramFailsFast() throws {
    let address = try freeAddress()
    let listener = try Net.listen(address)
    defer { close(listener) }
    let server = TestThread {
      var accepted: (fd: Int32, peer: String)?
      while accepted == nil {
        var entry = pollfd(fd: listener, events: Int16(POLLIN), revents: 0)
        _ = poll(&entry, 1, 100)
        accepted = Net.accept(listener)
      }
      guard let fd = accepted?.fd else { return }
      rawSend(fd, Array("SSH-2.0-OpenSSH_9.2\r\n".utf8))
      usleep(500_000)
      close(fd)
    }
    let peer = startRank(rank: 1, worldSize: 2, address: address, token: "t", timeout: .seconds(10))
    peer.thread.join()
    server.join()
    let outcome = try #require(peer.outcome.value)
    guard case .failure(.notRendezvous(let at, _)) = outcome.result else {
      Issue.record("got \(outcome.result)")
      return
    }
    #expect(at == address && outcome.seconds < 5)
  }

  @Test func aTakenPortIsReported() throws {
    let address = try freeAddress()
    let holder = try Net.listen(address)
    defer { close(holder) }
    #expect {
      try Rendezvous.exchange(rank: 0, worldSize: 2, address: address, token: "", payload: [1], timeout: .seconds(1))
    } throws: { error in
      guard let error = error as? RendezvousError, case .system("bind", address, let problem) = error else { return false }
      return problem.contains("in use")
    }
  }

  @Test(arguments: [
    (0, 2, nil, "payload"),
    (0, 2, [UInt8](repeating: 0, count: 4097), "payload"),
    (2, 2, [UInt8](), "rank"),
    (-1, 2, [UInt8](), "rank"),
    (0, 0, [UInt8](), "world size"),
  ] as [(Int, Int, [UInt8]?, String)])
  func badArgumentsAreRefused(rank: Int, worldSize: Int, payload: [UInt8]?, field: String) {
    #expect {
      try Rendezvous.exchange(rank: rank, worldSize: worldSize, address: .default, token: "", payload: payload, timeout: .seconds(1))
    } throws: { error in
      guard let error = error as? RendezvousError, case .invalidArgument(let name, _, _) = error else { return false }
      return name == field
    }
  }
}

import Testing

#if canImport(Glibc)
import Glibc
#endif

@testable import MoELaunch

/// The launcher's supervision, with `/bin/sh -c` children standing in for flashmoe ranks.
@Suite struct SupervisorTests {
  static func shell(_ script: String) -> ChildCommand { ChildCommand(executable: "/bin/sh", arguments: ["-c", script]) }

  /// Lines each rank printed, per stream.
  final class Lines: Sendable {
    let lines = Box<[(rank: Int, stream: Supervisor.Stream, text: String)]>([])
    var output: Supervisor.Output {
      { rank, stream, line in self.lines.update { $0.append((rank, stream, String(decoding: line, as: UTF8.self))) } }
    }
    func of(_ rank: Int, _ stream: Supervisor.Stream = .standardOutput) -> [String] {
      lines.value.filter { $0.rank == rank && $0.stream == stream }.map(\.text)
    }
  }

  func run(_ commands: [ChildCommand], options: Supervisor.Options = Supervisor.Options(gracePeriod: .seconds(1)), lines: Lines = Lines())
    throws -> (LaunchReport, Double)
  {
    let start = ContinuousClock.now
    let report = try Supervisor(options: options).run(commands, output: lines.output)
    return (report, seconds(ContinuousClock.now - start))
  }

  /// Ranks told their place the way `flashmoe launch` does; stdout and stderr come back line by
  /// line, per rank, the last unterminated line included.
  @Test func allRanksSucceed() throws {
    let commands = LocalLaunch.commands(
      executable: "/bin/sh", arguments: ["-c", #"echo "out $RANK of $WORLD_SIZE"; echo "err $LOCAL_RANK" >&2; printf 'a\nb\nlast'"#],
      worldSize: 3, rendezvous: .default, token: "0123456789abcdef")
    let lines = Lines()
    let (report, _) = try run(commands, lines: lines)
    #expect(report.succeeded && report.exitCode == 0 && report.firstFailure == nil)
    #expect(report.terminations == Array(repeating: .exited(0), count: 3))
    #expect(report.summary == "all 3 ranks exited with code 0")
    for rank in 0..<3 {
      #expect(lines.of(rank) == ["out \(rank) of 3", "a", "b", "last"])
      #expect(lines.of(rank, .standardError) == ["err \(rank)"])
    }
  }

  /// One rank exits 3: the sleeping other is stopped within the grace period (not after its 30 s),
  /// and the report names the rank and the code.
  @Test func aFailingRankStopsTheOthers() throws {
    let (report, elapsed) = try run([Self.shell("exec sleep 30"), Self.shell("echo bye; exit 3")])
    #expect(elapsed < 4, "took \(elapsed) s")
    #expect(report.firstFailure == LaunchReport.RankTermination(rank: 1, termination: .exited(3)))
    #expect(report.terminations == [.signaled(SIGTERM), .exited(3)])
    #expect(report.stopped == [0] && report.killed.isEmpty)
    #expect(!report.succeeded && report.exitCode == 3)
    #expect(report.summary.contains("rank 1 failed first") && report.summary.contains("code 3"), "\(report.summary)")
  }

  /// A rank that ignores SIGTERM gets SIGKILL once the grace period is over.
  @Test func aRankIgnoringSIGTERMIsKilledAfterTheGracePeriod() throws {
    let grace = 0.5
    let (report, elapsed) = try run(
      [Self.shell("trap '' TERM; sleep 30"), Self.shell("sleep 0.2; exit 2")],
      options: Supervisor.Options(gracePeriod: .milliseconds(Int64(grace * 1000))))
    #expect(elapsed >= grace && elapsed < grace + 3, "took \(elapsed) s")
    #expect(report.firstFailure?.rank == 1 && report.terminations[0] == .signaled(SIGKILL))
    #expect(report.killed == [0])
    #expect(report.summary.contains("SIGKILL after the 0.5 s grace period to rank 0"), "\(report.summary)")
  }

  @Test func aRankKilledByASignalIsReported() throws {
    let (report, _) = try run([Self.shell("exec sleep 30"), Self.shell("kill -SEGV $$")])
    #expect(report.firstFailure == LaunchReport.RankTermination(rank: 1, termination: .signaled(SIGSEGV)))
    #expect(report.exitCode == 128 + SIGSEGV)
    #expect(report.summary.contains("rank 1") && report.summary.contains("SIGSEGV"), "\(report.summary)")
  }

  /// Ctrl-C reaches every rank as SIGINT; the launcher reports the interruption.
  @Test func anInterruptIsPassedOn() throws {
    let supervisor = try Supervisor(options: Supervisor.Options(gracePeriod: .seconds(2)))
    let trigger = TestThread {
      usleep(200_000)
      supervisor.interrupt(SIGINT)
    }
    let start = ContinuousClock.now
    let report = try supervisor.run([Self.shell("exec sleep 30"), Self.shell("exec sleep 30")], output: { _, _, _ in })
    trigger.join()
    #expect(seconds(ContinuousClock.now - start) < 3)
    #expect(report.interruption == SIGINT && report.firstFailure == nil)
    #expect(report.terminations == [.signaled(SIGINT), .signaled(SIGINT)])
    #expect(report.exitCode == 128 + SIGINT && report.summary.contains("SIGINT"))
  }

  @Test func theTimeLimitStopsTheJob() throws {
    let (report, elapsed) = try run(
      [Self.shell("exec sleep 30")], options: Supervisor.Options(gracePeriod: .seconds(1), timeLimit: .milliseconds(300)))
    #expect(elapsed < 3)
    #expect(report.timedOut && report.exitCode == 124 && report.terminations == [.signaled(SIGTERM)])
    #expect(report.summary.hasPrefix("the job ran past its time limit of 0.3 s"), "\(report.summary)")
  }

  /// A rank that leaves a background process holding its output does not keep the launcher
  /// waiting after every rank has exited.
  @Test func leftoverProcessesDoNotHoldTheLauncher() throws {
    let lines = Lines()
    let (report, elapsed) = try run([Self.shell("sleep 30 & echo started")], lines: lines)
    #expect(report.succeeded && elapsed < 3, "took \(elapsed) s")
    #expect(lines.of(0) == ["started"])
  }

  @Test func aRankThatCannotStartIsNamed() throws {
    let start = ContinuousClock.now
    #expect {
      try Supervisor().run([Self.shell("exec sleep 30"), ChildCommand(executable: "/no/such/flashmoe", arguments: [])], output: { _, _, _ in })
    } throws: { error in
      (error as? SpawnError)?.description.contains("rank 1") == true
    }
    #expect(seconds(ContinuousClock.now - start) < 3)
  }

  @Test func longLinesAreCutAndLinesSplit() {
    var splitter = LineSplitter()
    #expect(splitter.lines(Array("ab\ncd".utf8)[...]).map { String(decoding: $0, as: UTF8.self) } == ["ab"])
    #expect(splitter.lines(Array("e\n\nf".utf8)[...]).map { String(decoding: $0, as: UTF8.self) } == ["cde", ""])
    #expect(splitter.finish().map { String(decoding: $0, as: UTF8.self) } == "f")
    #expect(splitter.finish() == nil)
    let long = splitter.lines([UInt8](repeating: 65, count: LineSplitter.maxLine * 2 + 5)[...])
    #expect(long.map(\.count) == [LineSplitter.maxLine, LineSplitter.maxLine])
    #expect(splitter.finish()?.count == 5)
  }

  @Test(arguments: [(0 as Int32, Termination.exited(0)), (3 << 8, .exited(3)), (9, .signaled(9)), (11 | 0x80, .signaled(11))])
  func waitStatusesDecode(status: Int32, termination: Termination) {
    #expect(Termination(waitStatus: status) == termination)
  }
}

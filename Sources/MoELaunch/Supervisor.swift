#if canImport(Glibc)
import Glibc
#endif

/// Runs one child per rank and watches them as a job: their output is passed on line by line with
/// a `[rank r] ` prefix; when a rank fails (non-zero exit or a signal) the others get SIGTERM and,
/// after a grace period, SIGKILL, so no rank is left waiting for a dead peer; a signal to the
/// launcher is passed on the same way. `flashmoe launch` is a thin layer over this.
public final class Supervisor: @unchecked Sendable {
  public struct Options: Sendable {
    /// Between SIGTERM (or the forwarded signal) and SIGKILL.
    public var gracePeriod: Duration
    /// The whole job's bound; nil: none.
    public var timeLimit: Duration?
    /// Install SIGINT / SIGTERM / SIGHUP handlers for the run and pass those signals on (the CLI
    /// does; tests use `interrupt` instead of signalling their own process).
    public var relaySignals: Bool

    public init(gracePeriod: Duration = .seconds(5), timeLimit: Duration? = nil, relaySignals: Bool = false) {
      self.gracePeriod = gracePeriod
      self.timeLimit = timeLimit
      self.relaySignals = relaySignals
    }
  }

  public enum Stream: Int, Sendable {
    case standardOutput = 1
    case standardError = 2
  }

  /// Receives each complete line (without its newline) of a rank's stdout or stderr.
  public typealias Output = (_ rank: Int, _ stream: Stream, _ line: [UInt8]) -> Void

  /// After every rank has exited, how long output is still read from pipes that something the
  /// ranks started keeps open.
  static let drainAfterExit: Duration = .milliseconds(500)

  public let options: Options
  /// The wake pipe: signals (through SignalRelay) and `interrupt` write a signal number to it.
  private let wake: (read: Int32, write: Int32)

  public init(options: Options = Options()) throws(SpawnError) {
    self.options = options
    var fds: [Int32] = [-1, -1]
    let made = Net.descriptorLock.withLock { _ -> Bool in
      guard pipe(&fds) == 0 else { return false }
      for fd in fds { _ = fcntl(fd, F_SETFD, FD_CLOEXEC) }
      return true
    }
    guard made else {
      throw SpawnError(command: ChildCommand(executable: "(supervisor)", arguments: []), problem: "pipe: \(String(cString: strerror(errno)))")
    }
    for fd in fds { _ = fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK) }
    wake = (fds[0], fds[1])
  }

  deinit {
    close(wake.read)
    close(wake.write)
  }

  /// As if the launcher had received `signal` (from any thread; safe before or during `run`).
  public func interrupt(_ signal: Int32 = SIGINT) {
    var byte = UInt8(truncatingIfNeeded: signal)
    _ = write(wake.write, &byte, 1)
  }

  /// `[rank r] line` on the launcher's stdout or stderr, matching the child's stream.
  public static func printPrefixed(rank: Int, stream: Stream, line: [UInt8]) {
    let text = Array("[rank \(rank)] ".utf8) + line + [UInt8(ascii: "\n")]
    var offset = 0
    while offset < text.count {
      let n = text[offset...].withUnsafeBytes { write(Int32(stream.rawValue), $0.baseAddress, $0.count) }
      if n < 0 && errno == EINTR { continue }
      guard n > 0 else { return }  // stdout closed: the job goes on, its output is lost
      offset += n
    }
  }

  /// Starts one child per command (rank = index) and returns when all have ended.
  /// - Throws: `SpawnError` when a child cannot be started; those already started are killed first.
  public func run(_ commands: [ChildCommand], output: @escaping Output = Supervisor.printPrefixed) throws(SpawnError) -> LaunchReport {
    let relay = options.relaySignals ? SignalRelay.install(writingTo: wake.write) : nil
    defer { relay?.restore() }
    var children: [ChildProcess] = []
    for command in commands {
      switch ChildProcess.spawn(command) {
      case .success(let child): children.append(child)
      case .failure(let error):
        for child in children { child.signal(SIGKILL) }
        for child in children { while !child.reap() { usleep(1000) } }
        throw SpawnError(command: command, problem: "rank \(children.count): \(error.problem)")
      }
    }
    var job = Job(children: children, options: options, output: output)
    job.watch(wake: wake.read)
    return job.report()
  }
}

/// The state of one supervised run.
private struct Job {
  let children: [ChildProcess]
  let options: Supervisor.Options
  let output: Supervisor.Output
  var splitters: [[LineSplitter]]
  var firstFailure: LaunchReport.RankTermination?
  var interruption: Int32?
  var timedOut = false
  var stopped: [Int] = []
  var killed: [Int] = []
  /// When the ranks still running after a stop get SIGKILL.
  var killAt: ContinuousClock.Instant?
  let limitAt: ContinuousClock.Instant?

  init(children: [ChildProcess], options: Supervisor.Options, output: @escaping Supervisor.Output) {
    self.children = children
    self.options = options
    self.output = output
    splitters = Array(repeating: [LineSplitter(), LineSplitter()], count: children.count)
    limitAt = options.timeLimit.map { .now + $0 }
  }

  var stopping: Bool { firstFailure != nil || interruption != nil || timedOut }

  /// Until every child has exited and its output is read (or the drain period is over).
  mutating func watch(wake: Int32) {
    var drainUntil: ContinuousClock.Instant?
    while true {
      reapAll()
      let now = ContinuousClock.now
      if children.allSatisfy({ $0.termination != nil }) {
        if children.allSatisfy({ $0.output.allSatisfy { $0 < 0 } }) { break }
        if drainUntil == nil { drainUntil = now + Supervisor.drainAfterExit }
        if let drainUntil, now >= drainUntil {
          // Something the ranks started still holds their output: it belongs to the job.
          for child in children { _ = kill(-child.pid, SIGKILL) }
          break
        }
      }
      if let killAt, now >= killAt {
        for (rank, child) in children.enumerated() where child.termination == nil {
          child.signal(SIGKILL)
          killed.append(rank)
        }
        self.killAt = nil
      }
      if let limitAt, now >= limitAt, !stopping {
        timedOut = true
        stop(with: SIGTERM)
      }

      // Sleep until output, a signal, or the next thing to check; 20 ms at most so exits (which
      // wake nothing here) are seen promptly.
      var wakeAt = now + .milliseconds(20)
      for instant in [killAt, stopping ? nil : limitAt, drainUntil].compactMap({ $0 }) { wakeAt = min(wakeAt, instant) }
      var entries = [pollfd(fd: wake, events: Int16(POLLIN), revents: 0)]
      var sources: [(rank: Int, stream: Int)] = []
      for (rank, child) in children.enumerated() {
        for (stream, fd) in child.output.enumerated() where fd >= 0 {
          entries.append(pollfd(fd: fd, events: Int16(POLLIN), revents: 0))
          sources.append((rank, stream))
        }
      }
      let left = wakeAt - .now
      let ms = left > .zero ? Int32(clamping: left.components.seconds * 1000 + left.components.attoseconds / 1_000_000_000_000_000 + 1) : 0
      guard poll(&entries, nfds_t(entries.count), ms) > 0 else { continue }
      if entries[0].revents != 0 { handleSignals(wake) }
      for (source, entry) in zip(sources, entries.dropFirst()) where entry.revents != 0 {
        read(rank: source.rank, stream: source.stream)
      }
    }
    // Pipes closed by the drain limit: their unfinished lines still go out.
    for (rank, child) in children.enumerated() {
      for stream in 0..<2 where child.output[stream] >= 0 {
        close(child.output[stream])
        child.output[stream] = -1
        if let last = splitters[rank][stream].finish() { emit(rank, stream, last) }
      }
    }
  }

  mutating func reapAll() {
    for (rank, child) in children.enumerated() where child.termination == nil {
      guard child.reap(), let termination = child.termination else { continue }
      if !termination.succeeded, !stopping {
        firstFailure = LaunchReport.RankTermination(rank: rank, termination: termination)
        stop(with: SIGTERM)
      }
    }
  }

  /// `signal` to every running rank; SIGKILL after the grace period.
  mutating func stop(with signal: Int32) {
    for (rank, child) in children.enumerated() where child.termination == nil {
      child.signal(signal)
      stopped.append(rank)
    }
    killAt = .now + options.gracePeriod
  }

  mutating func handleSignals(_ wake: Int32) {
    var bytes = [UInt8](repeating: 0, count: 64)
    let n = bytes.withUnsafeMutableBytes { Glibc.read(wake, $0.baseAddress, $0.count) }
    guard n > 0 else { return }
    for byte in bytes[0..<n] {
      let signal = Int32(byte)
      if stopping {
        // A second Ctrl-C (or any signal once the job is stopping): no more grace.
        if killAt != nil { killAt = .now }
      } else {
        interruption = signal
        // Ctrl-C is passed on as Ctrl-C (a rank may clean up on it); SIGTERM / SIGHUP as SIGTERM.
        stop(with: signal == SIGINT ? SIGINT : SIGTERM)
      }
    }
  }

  mutating func read(rank: Int, stream: Int) {
    let child = children[rank]
    let fd = child.output[stream]
    var chunk = [UInt8](repeating: 0, count: 1 << 16)
    let n = chunk.withUnsafeMutableBytes { Glibc.read(fd, $0.baseAddress, $0.count) }
    if n < 0 && (errno == EINTR || errno == EAGAIN) { return }
    if n <= 0 {
      close(fd)
      child.output[stream] = -1
      if let last = splitters[rank][stream].finish() { emit(rank, stream, last) }
      return
    }
    for line in splitters[rank][stream].lines(chunk[0..<n]) { emit(rank, stream, line) }
  }

  func emit(_ rank: Int, _ stream: Int, _ line: [UInt8]) {
    output(rank, stream == 0 ? .standardOutput : .standardError, line)
  }

  func report() -> LaunchReport {
    LaunchReport(
      terminations: children.map { $0.termination ?? .signaled(SIGKILL) }, firstFailure: firstFailure, interruption: interruption,
      timedOut: timedOut, stopped: stopped, killed: killed, gracePeriodSeconds: Self.seconds(options.gracePeriod),
      timeLimitSeconds: options.timeLimit.map(Self.seconds))
  }

  static func seconds(_ d: Duration) -> Double {
    Double(d.components.seconds) + Double(d.components.attoseconds) / 1e18
  }
}

#if canImport(Glibc)
import Glibc
#endif
import MoELaunch

/// How a child process ended and what it printed.
public struct ProcessResult: Equatable, Sendable {
  /// The exit status, nil when a signal ended it.
  public var exitStatus: Int32?
  public var signal: Int32?
  public var standardOutput: String
  public var standardError: String
  /// The deadline passed and the process (with its descendants) was killed.
  public var timedOut: Bool

  public var succeeded: Bool { exitStatus == 0 && !timedOut }
}

/// A child process that could not be started or waited for.
public struct SubprocessError: Error, Equatable, Sendable, CustomStringConvertible {
  public var command: String
  public var problem: String
  public var description: String { "`\(command)`: \(problem)" }
}

/// Runs a program with posix_spawn (this binary links no Foundation, so no `Process`), reading
/// its output through pipes until it exits or a deadline passes.
///
/// The child stays in our process group, so Ctrl-C on the terminal stops it with us; on a timeout
/// it and every process it started are killed by id (torch's `mp.spawn` starts one worker per GPU).
public enum Subprocess {
  /// Output kept per stream; a chatty child cannot exhaust memory.
  static let outputLimit = 4 << 20

  /// - Parameter environment: variables set (or replaced) for the child; the rest is inherited.
  public static func run(_ arguments: [String], environment: [String: String] = [:], timeoutSeconds: Double)
    throws(SubprocessError) -> ProcessResult
  {
    let command = quoted(arguments)
    guard let program = arguments.first, !program.isEmpty else {
      throw SubprocessError(command: command, problem: "no program given")
    }
    // The child starts with no signal blocked and SIGPIPE at its default, whatever we inherited.
    let options = PipedSpawn.Options(searchPath: true, defaultSignals: [SIGPIPE], newProcessGroup: false)
    let child: PipedSpawn.Child
    switch PipedSpawn.spawn(program, arguments: arguments, environment: environment, options: options) {
    case .failure(.pipe(let code)): throw failure(command, "pipe", code)
    case .failure(.spawn(let code)):
      throw SubprocessError(command: command, problem: "could not start \(program): \(String(cString: strerror(code)))")
    case .success(let started): child = started
    }
    let pid = child.pid

    let clock = ContinuousClock()
    let deadline = clock.now + .milliseconds(Int64(max(timeoutSeconds, 0) * 1000))
    var streams = [Stream(fd: child.output), Stream(fd: child.error)]
    var timedOut = false
    while streams.contains(where: { !$0.closed }) {
      let left = deadline - clock.now
      if left <= .zero {
        timedOut = true
        break
      }
      var fds = streams.filter { !$0.closed }.map { pollfd(fd: $0.fd, events: Int16(POLLIN), revents: 0) }
      let ms = Int32(clamping: max(left.components.seconds * 1000 + left.components.attoseconds / 1_000_000_000_000_000, 1))
      let ready = poll(&fds, nfds_t(fds.count), ms)
      if ready < 0 && errno != EINTR { break }
      for fd in fds where fd.revents != 0 {
        let i = streams.firstIndex { $0.fd == fd.fd }!
        streams[i].read()
      }
    }
    for s in streams { close(s.fd) }

    // Both pipes are closed (or the deadline passed): wait for the exit, within what is left.
    var status: Int32 = 0
    while !timedOut {
      let r = waitpid(pid, &status, WNOHANG)
      if r == pid { break }
      if r < 0 && errno != EINTR { throw failure(command, "waitpid", errno) }
      if clock.now >= deadline { timedOut = true; break }
      usleep(10_000)
    }
    if timedOut {
      ProcessTree.kill(root: pid)
      while waitpid(pid, &status, 0) < 0 && errno == EINTR {}
    }
    // WIFEXITED / WEXITSTATUS / WTERMSIG, which Swift does not import (they are macros).
    let signal = status & 0x7F
    return ProcessResult(
      exitStatus: signal == 0 ? (status >> 8) & 0xFF : nil, signal: signal == 0 ? nil : signal,
      standardOutput: String(decoding: streams[0].bytes, as: UTF8.self),
      standardError: String(decoding: streams[1].bytes, as: UTF8.self), timedOut: timedOut)
  }

  /// `arguments` as one line a shell would read back the same (for messages).
  public static func quoted(_ arguments: [String]) -> String {
    arguments.map { word in
      let plain = !word.isEmpty && word.allSatisfy { $0.isLetter || $0.isNumber || "-_./=:,+@%".contains($0) }
      return plain ? word : "'" + word.split(separator: "'", omittingEmptySubsequences: false).joined(separator: "'\\''") + "'"
    }.joined(separator: " ")
  }

  private static func failure(_ command: String, _ call: String, _ code: Int32) -> SubprocessError {
    SubprocessError(command: command, problem: "\(call) failed: \(String(cString: strerror(code)))")
  }

  /// One of the child's output pipes.
  private struct Stream {
    let fd: Int32
    var bytes: [UInt8] = []
    var closed = false

    init(fd: Int32) { self.fd = fd }

    mutating func read() {
      var chunk = [UInt8](repeating: 0, count: 1 << 16)
      let n = chunk.withUnsafeMutableBytes { Glibc.read(fd, $0.baseAddress, $0.count) }
      if n < 0 && (errno == EINTR || errno == EAGAIN) { return }
      if n <= 0 {
        closed = true
        return
      }
      if bytes.count < Subprocess.outputLimit { bytes += chunk[0..<min(n, Subprocess.outputLimit - bytes.count)] }
    }
  }
}

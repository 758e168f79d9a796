#if canImport(Glibc)
import Glibc
#endif

/// What to start for one rank.
public struct ChildCommand: Equatable, Sendable {
  /// A path (not searched in PATH: the launcher starts a known binary).
  public var executable: String
  /// argv[1...]; argv[0] is the executable.
  public var arguments: [String]
  /// Variables set or replaced for the child; the rest of the launcher's environment is inherited.
  public var environment: [String: String]

  public init(executable: String, arguments: [String], environment: [String: String] = [:]) {
    self.executable = executable
    self.arguments = arguments
    self.environment = environment
  }
}

/// A running child, started with posix_spawn (no Foundation, so no `Process`) in a process group
/// of its own: Ctrl-C on the terminal reaches only the launcher, which forwards it, and a signal
/// to the group also reaches whatever the child started.
final class ChildProcess {
  let pid: pid_t
  /// Read ends of the child's stdout and stderr; -1 once at end of stream.
  var output: [Int32]
  var termination: Termination?

  private init(pid: pid_t, output: [Int32]) {
    self.pid = pid
    self.output = output
  }

  deinit { for fd in output where fd >= 0 { close(fd) } }

  static func spawn(_ command: ChildCommand) -> Result<ChildProcess, SpawnError> {
    // Pipes, marking and spawning happen under one lock, so no concurrently spawned child (of
    // another supervisor or test) inherits our pipe ends and holds them open past our child.
    Net.descriptorLock.withLock { _ in spawnLocked(command) }
  }

  private static func spawnLocked(_ command: ChildCommand) -> Result<ChildProcess, SpawnError> {
    // SIGINT / SIGTERM / SIGHUP / SIGPIPE at their defaults even where the launcher inherited them
    // ignored (nohup, a background shell job), so forwarding works.
    let options = PipedSpawn.Options(searchPath: false, defaultSignals: [SIGPIPE, SIGINT, SIGTERM, SIGHUP], newProcessGroup: true)
    switch PipedSpawn.spawn(
      command.executable, arguments: [command.executable] + command.arguments, environment: command.environment, options: options)
    {
    case .failure(.pipe(let code)):
      return .failure(SpawnError(command: command, problem: "pipe: \(String(cString: strerror(code)))"))
    case .failure(.spawn(let code)):
      return .failure(SpawnError(command: command, problem: String(cString: strerror(code))))
    case .success(let child):
      for fd in [child.output, child.error] { _ = fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK) }
      return .success(ChildProcess(pid: child.pid, output: [child.output, child.error]))
    }
  }

  /// The signal to the child's whole process group (what it started too), while it is unreaped:
  /// until then its pid, and so its group id, cannot belong to anyone else.
  func signal(_ signal: Int32) {
    guard termination == nil else { return }
    if kill(-pid, signal) != 0 { _ = kill(pid, signal) }
  }

  /// Reaps the child if it has ended; true once it has.
  func reap() -> Bool {
    if termination != nil { return true }
    var status: Int32 = 0
    let r = waitpid(pid, &status, WNOHANG)
    if r == pid {
      termination = Termination(waitStatus: status)
      return true
    }
    return false
  }
}

/// A child that could not be started.
public struct SpawnError: Error, Equatable, Sendable, CustomStringConvertible {
  public var command: ChildCommand
  public var problem: String
  public var description: String { "could not start \(command.executable): \(problem)" }
}

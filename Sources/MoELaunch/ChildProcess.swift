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
    var out: [Int32] = [-1, -1], err: [Int32] = [-1, -1]
    guard pipe(&out) == 0 else { return .failure(SpawnError(command: command, problem: "pipe: \(String(cString: strerror(errno)))")) }
    guard pipe(&err) == 0 else {
      let problem = String(cString: strerror(errno))
      close(out[0]); close(out[1])
      return .failure(SpawnError(command: command, problem: "pipe: \(problem)"))
    }
    for fd in out + err { _ = fcntl(fd, F_SETFD, FD_CLOEXEC) }

    var actions = posix_spawn_file_actions_t()
    posix_spawn_file_actions_init(&actions)
    defer { posix_spawn_file_actions_destroy(&actions) }
    // stdin from /dev/null: a child in a background process group reading the terminal would stop.
    posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0)
    posix_spawn_file_actions_adddup2(&actions, out[1], 1)
    posix_spawn_file_actions_adddup2(&actions, err[1], 2)

    var attributes = posix_spawnattr_t()
    posix_spawnattr_init(&attributes)
    defer { posix_spawnattr_destroy(&attributes) }
    // No signal blocked; SIGINT / SIGTERM / SIGHUP / SIGPIPE at their defaults even where the
    // launcher inherited them ignored (nohup, a background shell job), so forwarding works.
    var none = sigset_t(), defaults = sigset_t()
    sigemptyset(&none)
    sigemptyset(&defaults)
    for signal in [SIGPIPE, SIGINT, SIGTERM, SIGHUP] { sigaddset(&defaults, signal) }
    posix_spawnattr_setsigmask(&attributes, &none)
    posix_spawnattr_setsigdefault(&attributes, &defaults)
    posix_spawnattr_setpgroup(&attributes, 0)
    posix_spawnattr_setflags(&attributes, Int16(POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF | POSIX_SPAWN_SETPGROUP))

    let argv: [UnsafeMutablePointer<CChar>?] = ([command.executable] + command.arguments).map { strdup($0) } + [nil]
    let envp: [UnsafeMutablePointer<CChar>?] = environment(command.environment).map { strdup($0) } + [nil]
    defer { for p in argv + envp { free(p) } }
    var pid: pid_t = 0
    let status = posix_spawn(&pid, command.executable, &actions, &attributes, argv, envp)
    close(out[1])
    close(err[1])
    guard status == 0 else {
      close(out[0]); close(err[0])
      return .failure(SpawnError(command: command, problem: String(cString: strerror(status))))
    }
    for fd in [out[0], err[0]] { _ = fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK) }
    return .success(ChildProcess(pid: pid, output: [out[0], err[0]]))
  }

  /// The launcher's environment as KEY=VALUE, with `overrides` replacing or adding entries.
  static func environment(_ overrides: [String: String]) -> [String] {
    var entries: [String] = []
    var p: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>? = environ
    while let entry = p?.pointee {
      let text = String(cString: entry)
      if overrides[String(text.prefix { $0 != "=" })] == nil { entries.append(text) }
      p = p?.successor()
    }
    return entries + overrides.sorted { $0.key < $1.key }.map { "\($0.key)=\($0.value)" }
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

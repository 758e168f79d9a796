#if canImport(Glibc)
import Glibc
#endif

/// posix_spawn (this package links no Foundation, so no `Process`) of a child whose stdin is
/// /dev/null and whose stdout and stderr come back through pipes. Shared by `flashmoe launch`'s
/// supervisor (ChildProcess) and the benchmark suite's baseline runner (BenchSuite.Subprocess),
/// which differ only in `Options`.
public enum PipedSpawn {
  public struct Options: Sendable {
    /// Look the program up in PATH (posix_spawnp) instead of taking it as a path.
    public var searchPath: Bool
    /// Signals the child starts with at their default action, whatever this process ignores.
    public var defaultSignals: [Int32]
    /// A process group of the child's own (its pid): a signal to the group reaches what it starts.
    public var newProcessGroup: Bool

    public init(searchPath: Bool, defaultSignals: [Int32], newProcessGroup: Bool) {
      self.searchPath = searchPath
      self.defaultSignals = defaultSignals
      self.newProcessGroup = newProcessGroup
    }
  }

  /// What failed, with its errno.
  public enum Failure: Error, Equatable, Sendable {
    case pipe(Int32)
    case spawn(Int32)
  }

  /// The started child: its pid and the read ends of its stdout and stderr (the caller closes them).
  public struct Child: Sendable {
    public var pid: pid_t
    public var output: Int32
    public var error: Int32
  }

  /// Starts `program` with `arguments` (argv, argv[0] included) and this process's environment
  /// with `environment` replacing or adding entries. No signal is blocked in the child.
  public static func spawn(
    _ program: String, arguments: [String], environment overrides: [String: String], options: Options
  ) -> Result<Child, Failure> {
    var out: [Int32] = [-1, -1], err: [Int32] = [-1, -1]
    guard pipe(&out) == 0 else { return .failure(.pipe(errno)) }
    guard pipe(&err) == 0 else {
      let code = errno
      close(out[0]); close(out[1])
      return .failure(.pipe(code))
    }
    // The child keeps only its dup2'ed copies (pipe2 with O_CLOEXEC needs _GNU_SOURCE in Glibc).
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
    var none = sigset_t(), defaults = sigset_t()
    sigemptyset(&none)
    sigemptyset(&defaults)
    for signal in options.defaultSignals { sigaddset(&defaults, signal) }
    posix_spawnattr_setsigmask(&attributes, &none)
    posix_spawnattr_setsigdefault(&attributes, &defaults)
    var flags = POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF
    if options.newProcessGroup {
      posix_spawnattr_setpgroup(&attributes, 0)
      flags |= POSIX_SPAWN_SETPGROUP
    }
    posix_spawnattr_setflags(&attributes, Int16(flags))

    let argv: [UnsafeMutablePointer<CChar>?] = arguments.map { strdup($0) } + [nil]
    let envp: [UnsafeMutablePointer<CChar>?] = environment(overrides).map { strdup($0) } + [nil]
    defer { for p in argv + envp { free(p) } }
    var pid: pid_t = 0
    let status = options.searchPath
      ? posix_spawnp(&pid, program, &actions, &attributes, argv, envp)
      : posix_spawn(&pid, program, &actions, &attributes, argv, envp)
    close(out[1])
    close(err[1])
    guard status == 0 else {
      close(out[0]); close(err[0])
      return .failure(.spawn(status))
    }
    return .success(Child(pid: pid, output: out[0], error: err[0]))
  }

  /// This process's environment as KEY=VALUE, with `overrides` replacing or adding entries.
  public static func environment(_ overrides: [String: String]) -> [String] {
    var entries: [String] = []
    var p: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>? = environ
    while let entry = p?.pointee {
      let text = String(cString: entry)
      if overrides[String(text.prefix { $0 != "=" })] == nil { entries.append(text) }
      p = p?.successor()
    }
    return entries + overrides.sorted { $0.key < $1.key }.map { "\($0.key)=\($0.value)" }
  }
}

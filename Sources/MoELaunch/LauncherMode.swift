import MoECore

/// `--launcher`: whether this process is one rank of a multi-process job.
public enum LauncherMode: String, NamedOption {
  /// One process; GPUs chosen with --gpus as before.
  case none
  /// Rank, world size and local rank from the launcher's variables (LaunchEnvironment).
  case env
}

import ArgumentParser
import MoECore
import MoELaunch

/// How this process joins a multi-process job: `--launcher env` reads its rank from torchrun,
/// Slurm, Open MPI, MPICH or `flashmoe launch`, and the ranks meet at a TCP rendezvous to share
/// NVSHMEM's unique ID. For run, verify and bench.
struct LauncherOptions: ParsableArguments {
  @Option(help: "\(LauncherMode.allowedNames): env reads RANK / WORLD_SIZE / LOCAL_RANK (torchrun, flashmoe launch), SLURM_*, OMPI_COMM_WORLD_* or PMI_*.")
  var launcher: String = LauncherMode.none.rawValue
  @Option(help: "Rank 0's rendezvous address HOST:PORT (default: $FLASHMOE_RENDEZVOUS or \(RendezvousAddress.default)).")
  var rendezvous: String?
  @Option(help: "Seconds every rank waits at the rendezvous for the others before failing, naming who is missing.")
  var rendezvousTimeout: Double = Double(Rendezvous.defaultTimeout.components.seconds)

  static let maxTimeoutSeconds = 86_400.0

  /// The flags, checked before any work; with `--launcher env` the launcher's variables too.
  func validate() throws {
    if try mode() == .env { _ = try resolve(environment: LaunchEnvironment.processEnvironment()) }
  }

  func mode() throws(ConfigError) -> LauncherMode {
    let mode = try LauncherMode.parse(launcher, field: "launcher")
    if mode == .none, let rendezvous {
      throw ConfigError(field: "rendezvous", value: "'\(rendezvous)'", expected: "no rendezvous without --launcher env (one process needs none)")
    }
    _ = try timeout()
    if let rendezvous { _ = try RendezvousAddress.parse(rendezvous, field: "rendezvous") }
    return mode
  }

  func timeout() throws(ConfigError) -> Duration {
    guard rendezvousTimeout.isFinite, rendezvousTimeout > 0, rendezvousTimeout <= Self.maxTimeoutSeconds else {
      throw ConfigError(field: "rendezvous-timeout", value: rendezvousTimeout, expected: "seconds in (0, \(Int(Self.maxTimeoutSeconds))]")
    }
    return .milliseconds(Int64((rendezvousTimeout * 1000).rounded(.up)))
  }

  /// nil for `--launcher none`; otherwise this rank's place, with --rendezvous (when given)
  /// overriding $FLASHMOE_RENDEZVOUS.
  func resolve(environment: [String: String]) throws(ConfigError) -> LaunchEnvironment? {
    guard try mode() == .env else { return nil }
    var place = try LaunchEnvironment.parse(environment)
    if let rendezvous { place.rendezvous = try RendezvousAddress.parse(rendezvous, field: "rendezvous") }
    return place
  }
}

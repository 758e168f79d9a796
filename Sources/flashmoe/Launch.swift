import ArgumentParser
import MoECore
import MoELaunch

#if canImport(Glibc)
import Glibc
#endif

/// `flashmoe launch -n N -- <subcommand and flags>`: N ranks of this binary on this machine, as
/// torchrun would start them, supervised so that one failing rank stops the rest.
struct Launch: ParsableCommand {
  static let configuration = CommandConfiguration(
    abstract: "Start N ranks of flashmoe on this machine (one per GPU) and supervise them.",
    discussion: """
      Example: flashmoe launch -n 2 -- verify --backend cuda --launcher env

      Each rank gets RANK, WORLD_SIZE, LOCAL_RANK, LOCAL_WORLD_SIZE, a fresh FLASHMOE_JOB_TOKEN and FLASHMOE_RENDEZVOUS (a free loopback port unless --rendezvous is given); the command after '--' must ask for them with --launcher env. Output lines are prefixed with '[rank r] '.

      When a rank fails, the others get SIGTERM, then SIGKILL after --grace seconds, and launch exits with that rank's status, naming it and how it ended. Ctrl-C is passed on to the ranks.
      """)

  @Option(name: [.customShort("n"), .customLong("nproc")], help: "Ranks to start.") var ranks: Int
  @Option(help: "Rank 0's rendezvous address HOST:PORT (default: a free loopback port).") var rendezvous: String?
  @Option(help: "Stop the whole job after this many seconds (default: no limit).") var timeout: Double?
  @Option(help: "Seconds between SIGTERM and SIGKILL when stopping ranks.") var grace: Double = 5
  @Argument(parsing: .postTerminator, help: "The flashmoe subcommand and its flags, after '--'.") var command: [String] = []

  static let maxRanks = 1024

  func validate() throws {
    guard (1...Self.maxRanks).contains(ranks) else {
      throw ConfigError(field: "n", value: ranks, expected: "an integer in 1...\(Self.maxRanks)")
    }
    guard let first = command.first else {
      throw ConfigError(field: "command", value: "none", expected: "a flashmoe subcommand after '--', e.g. -- verify --launcher env")
    }
    guard first != "launch" else {
      throw ConfigError(field: "command", value: "'launch'", expected: "a subcommand other than launch (no nested launchers)")
    }
    if let rendezvous { _ = try RendezvousAddress.parse(rendezvous, field: "rendezvous") }
    if let timeout, !(timeout.isFinite && timeout > 0) {
      throw ConfigError(field: "timeout", value: timeout, expected: "seconds > 0")
    }
    guard grace.isFinite, grace >= 0, grace <= 3600 else {
      throw ConfigError(field: "grace", value: grace, expected: "seconds in 0...3600")
    }
  }

  func run() throws {
    guard let executable = LocalLaunch.ownExecutable() else {
      throw ConfigError(field: "executable", value: "/proc/self/exe", expected: "a readable link to this binary (Linux /proc)")
    }
    let address = try rendezvous.map { text throws(ConfigError) in try RendezvousAddress.parse(text, field: "rendezvous") }
      ?? RendezvousAddress(host: RendezvousAddress.defaultHost, port: RendezvousAddress.freeLoopbackPort())
    let commands = LocalLaunch.commands(
      executable: executable, arguments: command, worldSize: ranks, rendezvous: address, token: JobToken.fresh())
    // A closed stdout must not kill the launcher (and orphan the ranks) with SIGPIPE.
    signal(SIGPIPE, SIG_IGN)
    let supervisor = try Supervisor(
      options: Supervisor.Options(
        gracePeriod: .milliseconds(Int64(grace * 1000)), timeLimit: timeout.map { .milliseconds(Int64($0 * 1000)) },
        relaySignals: true))
    let report = try supervisor.run(commands)
    guard report.succeeded else {
      // The rank that failed first and how; the exit status is its own (128 + signal for a signal).
      writeStandardError("flashmoe launch: \(report.summary)\n")
      throw ExitCode(report.exitCode)
    }
  }
}

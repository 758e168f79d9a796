import ArgumentParser
import MoECore
import MoELaunch
import Testing

@testable import flashmoe

@Suite struct LauncherOptionsTests {
  /// Invalid flags are refused while parsing, naming the flag.
  @Test(arguments: [
    (["--launcher", "mpi"], "invalid launcher = 'mpi'"),
    (["--launcher", "none", "--rendezvous", "127.0.0.1:5000"], "invalid rendezvous = '127.0.0.1:5000'"),
    (["--launcher", "env", "--rendezvous", "127.0.0.1:0"], "invalid rendezvous = '127.0.0.1:0'"),
    (["--launcher", "env", "--rendezvous", "[::1]:80"], "invalid rendezvous = '[::1]:80'"),
    (["--rendezvous-timeout", "0"], "invalid rendezvous-timeout = 0"),
    (["--rendezvous-timeout", "nan"], "invalid rendezvous-timeout = nan"),
    (["--rendezvous-timeout", "1e9"], "invalid rendezvous-timeout = 1000000000"),
  ])
  func invalidFlagsAreRejected(arguments: [String], message expected: String) {
    do {
      let options = try LauncherOptions.parse(arguments)
      Issue.record("\(arguments) was accepted: \(options)")
    } catch {
      let message = LauncherOptions.message(for: error)
      #expect(message.contains(expected), "\(arguments): \(message)")
    }
  }

  @Test func noLauncherMeansOneProcess() throws {
    let options = try LauncherOptions.parse([])
    #expect(try options.mode() == .none)
    #expect(try options.resolve(environment: ["RANK": "1", "WORLD_SIZE": "2"]) == nil)
    #expect(try options.timeout() == Rendezvous.defaultTimeout)
  }

  /// --rendezvous overrides FLASHMOE_RENDEZVOUS; the rank comes from the launcher's variables.
  @Test(arguments: [
    (nil, "FLASHMOE_RENDEZVOUS", RendezvousAddress(host: "10.0.0.9", port: 7000)),
    ("10.0.0.1:7001", "--rendezvous", RendezvousAddress(host: "10.0.0.1", port: 7001)),
  ] as [(String?, String, RendezvousAddress)])
  func envLauncherResolves(flag: String?, source: String, expected: RendezvousAddress) throws {
    var options = try LauncherOptions.parse(["--rendezvous-timeout", "2.5"])
    options.launcher = "env"
    options.rendezvous = flag
    let place = try #require(
      try options.resolve(environment: [
        "SLURM_PROCID": "1", "SLURM_NTASKS": "2", "SLURM_LOCALID": "1", "FLASHMOE_RENDEZVOUS": "10.0.0.9:7000",
        "FLASHMOE_JOB_TOKEN": "abcdefgh12345678",
      ]))
    #expect(place.rendezvous == expected, "from \(source)")
    #expect(place.rank == 1 && place.worldSize == 2 && place.localRank == 1 && place.launcher == .slurm)
    #expect(place.jobToken == "abcdefgh12345678")
    #expect(try options.timeout() == .milliseconds(2500))
  }

  @Test func envLauncherNamesTheBadVariable() throws {
    var options = try LauncherOptions.parse([])
    options.launcher = "env"
    #expect(throws: ConfigError(field: "WORLD_SIZE", value: "unset", expected: "the number of processes, set with RANK")) {
      try options.resolve(environment: ["RANK": "0"])
    }
  }

  /// `flashmoe launch` refuses what it cannot run before starting anything.
  @Test(arguments: [
    (["launch", "-n", "0", "--", "verify"], "invalid n = 0"),
    (["launch", "-n", "2"], "invalid command = none"),
    (["launch", "-n", "2", "--", "launch", "-n", "2", "--", "verify"], "invalid command = 'launch'"),
    (["launch", "-n", "2", "--rendezvous", "x:99999", "--", "verify"], "invalid rendezvous = 'x:99999'"),
    (["launch", "-n", "2", "--timeout", "0", "--", "verify"], "invalid timeout = 0"),
    (["launch", "-n", "2", "--grace=-1", "--", "verify"], "invalid grace = -1"),
  ])
  func launchRefusesBadFlags(arguments: [String], message expected: String) {
    do {
      _ = try FlashMoECommand.parseAsRoot(arguments)
      Issue.record("\(arguments) was accepted")
    } catch {
      let message = FlashMoECommand.message(for: error)
      #expect(message.contains(expected), "\(arguments): \(message)")
    }
  }

  @Test func launchTakesTheCommandAfterTheTerminator() throws {
    let parsed = try FlashMoECommand.parseAsRoot(["launch", "-n", "3", "--timeout", "60", "--", "verify", "--launcher", "env", "--backend", "cuda"])
    let launch = try #require(parsed as? Launch)
    #expect(launch.ranks == 3 && launch.timeout == 60)
    #expect(launch.command == ["verify", "--launcher", "env", "--backend", "cuda"])
  }
}

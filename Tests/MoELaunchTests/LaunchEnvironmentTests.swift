import MoECore
import Testing

@testable import MoELaunch

@Suite struct LaunchEnvironmentTests {
  struct Case: Sendable, CustomTestStringConvertible {
    var name: String
    var environment: [String: String]
    var launcher: LauncherKind
    var rank: Int
    var worldSize: Int
    var localRank: Int
    var testDescription: String { name }
  }

  /// Each launcher's variables, the local rank derived where it may be, and the precedence when
  /// several launchers' variables are present (the innermost launcher wins).
  @Test(arguments: [
    Case(name: "torchrun", environment: ["RANK": "3", "WORLD_SIZE": "4", "LOCAL_RANK": "1", "LOCAL_WORLD_SIZE": "2"],
         launcher: .torchrun, rank: 3, worldSize: 4, localRank: 1),
    Case(name: "torchrun, local rank derived from LOCAL_WORLD_SIZE", environment: ["RANK": "6", "WORLD_SIZE": "8", "LOCAL_WORLD_SIZE": "4"],
         launcher: .torchrun, rank: 6, worldSize: 8, localRank: 2),
    Case(name: "a world of one needs no local rank", environment: ["RANK": "0", "WORLD_SIZE": "1"],
         launcher: .torchrun, rank: 0, worldSize: 1, localRank: 0),
    Case(name: "Open MPI",
         environment: ["OMPI_COMM_WORLD_RANK": "2", "OMPI_COMM_WORLD_SIZE": "3", "OMPI_COMM_WORLD_LOCAL_RANK": "2", "OMPI_COMM_WORLD_LOCAL_SIZE": "3"],
         launcher: .openMPI, rank: 2, worldSize: 3, localRank: 2),
    Case(name: "MPICH", environment: ["PMI_RANK": "1", "PMI_SIZE": "2", "MPI_LOCALRANKID": "1"],
         launcher: .mpich, rank: 1, worldSize: 2, localRank: 1),
    Case(name: "MPICH, local rank from MPI_LOCALNRANKS", environment: ["PMI_RANK": "6", "PMI_SIZE": "8", "MPI_LOCALNRANKS": "4"],
         launcher: .mpich, rank: 6, worldSize: 8, localRank: 2),
    Case(name: "Slurm", environment: ["SLURM_PROCID": "7", "SLURM_NTASKS": "8", "SLURM_LOCALID": "3"],
         launcher: .slurm, rank: 7, worldSize: 8, localRank: 3),
    Case(name: "torchrun inside Slurm",
         environment: ["RANK": "1", "WORLD_SIZE": "2", "LOCAL_RANK": "1", "SLURM_PROCID": "0", "SLURM_NTASKS": "1", "SLURM_LOCALID": "0"],
         launcher: .torchrun, rank: 1, worldSize: 2, localRank: 1),
    Case(name: "mpirun inside Slurm",
         environment: ["OMPI_COMM_WORLD_RANK": "1", "OMPI_COMM_WORLD_SIZE": "2", "OMPI_COMM_WORLD_LOCAL_RANK": "1",
                       "SLURM_PROCID": "0", "SLURM_NTASKS": "1", "SLURM_LOCALID": "0"],
         launcher: .openMPI, rank: 1, worldSize: 2, localRank: 1),
    Case(name: "Open MPI before PMI",
         environment: ["OMPI_COMM_WORLD_RANK": "0", "OMPI_COMM_WORLD_SIZE": "2", "OMPI_COMM_WORLD_LOCAL_RANK": "0",
                       "PMI_RANK": "1", "PMI_SIZE": "2", "MPI_LOCALRANKID": "1"],
         launcher: .openMPI, rank: 0, worldSize: 2, localRank: 0),
    Case(name: "PMI before Slurm (srun --mpi=pmi2)",
         environment: ["PMI_RANK": "1", "PMI_SIZE": "4", "MPI_LOCALRANKID": "1", "SLURM_PROCID": "3", "SLURM_NTASKS": "4", "SLURM_LOCALID": "3"],
         launcher: .mpich, rank: 1, worldSize: 4, localRank: 1),
    Case(name: "an empty RANK counts as unset",
         environment: ["RANK": "", "SLURM_PROCID": "1", "SLURM_NTASKS": "2", "SLURM_LOCALID": "1"],
         launcher: .slurm, rank: 1, worldSize: 2, localRank: 1),
  ])
  func launchersAreRecognised(_ c: Case) throws {
    let parsed = try LaunchEnvironment.parse(c.environment)
    #expect(parsed.launcher == c.launcher)
    #expect(parsed.rank == c.rank)
    #expect(parsed.worldSize == c.worldSize)
    #expect(parsed.localRank == c.localRank)
    #expect(parsed.jobToken == nil)
    #expect(parsed.rendezvous == .default)
  }

  /// Every inconsistent or malformed value is an error naming the variable and its value.
  @Test(arguments: [
    ([:], "RANK", "unset"),
    (["WORLD_SIZE": "2", "LOCAL_RANK": "0"], "RANK", "unset"),
    (["RANK": "4", "WORLD_SIZE": "4", "LOCAL_RANK": "0"], "RANK", "'4'"),
    (["RANK": "-1", "WORLD_SIZE": "4", "LOCAL_RANK": "0"], "RANK", "'-1'"),
    (["RANK": "one", "WORLD_SIZE": "4", "LOCAL_RANK": "0"], "RANK", "'one'"),
    (["RANK": " 1", "WORLD_SIZE": "4", "LOCAL_RANK": "0"], "RANK", "' 1'"),
    (["RANK": "1", "LOCAL_RANK": "0"], "WORLD_SIZE", "unset"),
    (["RANK": "0", "WORLD_SIZE": "0"], "WORLD_SIZE", "'0'"),
    (["RANK": "0", "WORLD_SIZE": "2.0"], "WORLD_SIZE", "'2.0'"),
    (["RANK": "0", "WORLD_SIZE": "99999"], "WORLD_SIZE", "'99999'"),
    (["RANK": "1", "WORLD_SIZE": "2"], "LOCAL_RANK", "unset"),
    (["RANK": "1", "WORLD_SIZE": "4", "LOCAL_RANK": "2", "LOCAL_WORLD_SIZE": "2"], "LOCAL_RANK", "'2'"),
    (["RANK": "1", "WORLD_SIZE": "4", "LOCAL_RANK": "4"], "LOCAL_RANK", "'4'"),
    (["RANK": "1", "WORLD_SIZE": "4", "LOCAL_RANK": "x"], "LOCAL_RANK", "'x'"),
    (["RANK": "1", "WORLD_SIZE": "4", "LOCAL_RANK": "1", "LOCAL_WORLD_SIZE": "5"], "LOCAL_WORLD_SIZE", "'5'"),
    (["RANK": "1", "WORLD_SIZE": "4", "LOCAL_RANK": "1", "LOCAL_WORLD_SIZE": "0"], "LOCAL_WORLD_SIZE", "'0'"),
    (["OMPI_COMM_WORLD_RANK": "0", "OMPI_COMM_WORLD_SIZE": "2", "OMPI_COMM_WORLD_LOCAL_RANK": "?"], "OMPI_COMM_WORLD_LOCAL_RANK", "'?'"),
    (["OMPI_COMM_WORLD_RANK": "0", "OMPI_COMM_WORLD_LOCAL_RANK": "0"], "OMPI_COMM_WORLD_SIZE", "unset"),
    (["PMI_RANK": "2", "PMI_SIZE": "2", "MPI_LOCALRANKID": "0"], "PMI_RANK", "'2'"),
    (["SLURM_PROCID": "3", "SLURM_NTASKS": "2", "SLURM_LOCALID": "0"], "SLURM_PROCID", "'3'"),
    (["SLURM_PROCID": "1", "SLURM_NTASKS": "2"], "SLURM_LOCALID", "unset"),
    (["RANK": "0", "WORLD_SIZE": "1", "FLASHMOE_RENDEZVOUS": "host:0"], "FLASHMOE_RENDEZVOUS", "'host:0'"),
    (["RANK": "0", "WORLD_SIZE": "1", "FLASHMOE_JOB_TOKEN": "short"], "FLASHMOE_JOB_TOKEN", "5 characters"),
    (["RANK": "0", "WORLD_SIZE": "1", "FLASHMOE_JOB_TOKEN": "with a space inside"], "FLASHMOE_JOB_TOKEN", "19 characters"),
  ])
  func badValuesNameTheVariable(environment: [String: String], variable: String, value: String) {
    do {
      let parsed = try LaunchEnvironment.parse(environment)
      Issue.record("accepted \(environment) as \(parsed)")
    } catch {
      #expect(error.field == variable, "\(error)")
      #expect(error.value.contains(value), "\(error)")
      #expect(error.description.contains(variable) && !error.expected.isEmpty)
    }
  }

  /// The token is a secret: an error about it never shows its text.
  @Test func tokenErrorsDoNotShowTheToken() {
    let secret = "s3cr3t é"
    #expect(throws: ConfigError.self) { try LaunchEnvironment.parse(["RANK": "0", "WORLD_SIZE": "1", "FLASHMOE_JOB_TOKEN": secret]) }
    do {
      _ = try LaunchEnvironment.parse(["RANK": "0", "WORLD_SIZE": "1", "FLASHMOE_JOB_TOKEN": secret])
    } catch {
      #expect(!error.description.contains("s3cr3t"))
    }
  }

  @Test func tokenAndRendezvousAreRead() throws {
    let token = JobToken.fresh()
    let parsed = try LaunchEnvironment.parse([
      "RANK": "1", "WORLD_SIZE": "2", "LOCAL_RANK": "1", "FLASHMOE_JOB_TOKEN": token, "FLASHMOE_RENDEZVOUS": "node7:4321",
    ])
    #expect(parsed.jobToken == token)
    #expect(parsed.rendezvous == RendezvousAddress(host: "node7", port: 4321))
  }

  /// Without FLASHMOE_JOB_TOKEN the token comes from the launcher's job identifier: the same for
  /// every rank of a job, different for another job; FLASHMOE_JOB_TOKEN wins over it.
  @Test(arguments: [
    (["TORCHELASTIC_RUN_ID": "exp42"], "job:TORCHELASTIC_RUN_ID=exp42"),
    (["TORCHELASTIC_RUN_ID": "none"], nil),
    (["TORCHELASTIC_RUN_ID": "none", "SLURM_JOB_ID": "9001"], "job:SLURM_JOB_ID=9001"),
    (["SLURM_JOB_ID": "9001", "SLURM_STEP_ID": "3"], "job:SLURM_JOB_ID=9001.3"),
    (["PMIX_NAMESPACE": "prterun-node1-77@1"], "job:PMIX_NAMESPACE=prterun-node1-77@1"),
    (["OMPI_MCA_ess_base_jobid": "123 456"], "job:OMPI_MCA_ess_base_jobid=123456"),
    (["SLURM_JOB_ID": "9001", "FLASHMOE_JOB_TOKEN": "abcdefgh12345678"], "abcdefgh12345678"),
    ([:], nil),
  ] as [([String: String], String?)])
  func tokenFromTheJobIdentifier(extra: [String: String], expected: String?) throws {
    let base = ["RANK": "1", "WORLD_SIZE": "2", "LOCAL_RANK": "1"]
    let parsed = try LaunchEnvironment.parse(base.merging(extra) { $1 })
    #expect(parsed.jobToken == expected)
    if expected != nil, extra["FLASHMOE_JOB_TOKEN"] == nil {
      var other = extra
      for (key, value) in other where key != "SLURM_STEP_ID" { other[key] = value + "0" }
      #expect(try LaunchEnvironment.parse(base.merging(other) { $1 }).jobToken != expected, "another job, another token")
    }
  }

  @Test(arguments: [(0, 1, true), (1, 2, true), (1, 1, false), (3, 2, false)])
  func gpuIndexIsTheLocalRank(localRank: Int, visible: Int, fits: Bool) {
    let place = LaunchEnvironment(rank: localRank, worldSize: 8, localRank: localRank)
    if fits {
      #expect((try? place.gpuIndex(visibleGPUs: visible)) == localRank)
    } else {
      #expect(throws: ConfigError.self) { try place.gpuIndex(visibleGPUs: visible) }
    }
  }

  /// What `flashmoe launch` sets reads back as each rank's place.
  @Test(arguments: [1, 2, 4])
  func localLaunchEnvironmentsParse(worldSize: Int) throws {
    let address = RendezvousAddress(host: "127.0.0.1", port: 40123)
    let token = JobToken.fresh()
    let commands = LocalLaunch.commands(executable: "/bin/true", arguments: ["verify"], worldSize: worldSize, rendezvous: address, token: token)
    #expect(commands.count == worldSize)
    for (rank, command) in commands.enumerated() {
      #expect(command.arguments == ["verify"])
      let place = try LaunchEnvironment.parse(command.environment)
      #expect(place == LaunchEnvironment(
        rank: rank, worldSize: worldSize, localRank: rank, localWorldSize: worldSize, launcher: .torchrun, jobToken: token, rendezvous: address))
    }
  }
}

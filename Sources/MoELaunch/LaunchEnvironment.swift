import MoECore

#if canImport(Glibc)
import Glibc
#endif

/// Which launcher started this process, recognised by the variables it sets.
public enum LauncherKind: String, Equatable, Sendable {
  /// torchrun (torch.distributed.run) and `flashmoe launch`: RANK, WORLD_SIZE, LOCAL_RANK.
  case torchrun
  /// Open MPI's mpirun: OMPI_COMM_WORLD_*.
  case openMPI = "open-mpi"
  /// MPICH / Intel MPI (Hydra, PMI): PMI_RANK, PMI_SIZE, MPI_LOCALRANKID.
  case mpich
  /// Slurm's srun: SLURM_PROCID, SLURM_NTASKS, SLURM_LOCALID.
  case slurm
}

/// This process's place in a multi-process job (`--launcher env`), read from the variables that
/// torchrun, Slurm, Open MPI or MPICH set, plus FlashMoE's own FLASHMOE_JOB_TOKEN and
/// FLASHMOE_RENDEZVOUS.
///
/// Precedence, first match wins, by the launcher's rank variable being set (and not empty):
/// 1. RANK (torchrun, `flashmoe launch`, or set by hand),
/// 2. OMPI_COMM_WORLD_RANK (Open MPI),
/// 3. PMI_RANK (MPICH, Intel MPI),
/// 4. SLURM_PROCID (Slurm).
/// Launchers nest: torchrun or mpirun run inside a Slurm allocation, where SLURM_PROCID describes
/// the allocation's task, not this process, so the innermost launcher's variables come first and
/// Slurm's last. Variables of a lower-precedence launcher are then ignored, never mixed in.
///
/// Within the chosen launcher the world size is required; the local rank, when its variable is
/// unset, is derived as rank mod local world size if the launcher gave a local world size
/// (torchrun and `mpirun --map-by slot` place consecutive ranks on a node), is 0 in a world of
/// one, and is an error otherwise (binding GPUs by a guess could put two ranks on one GPU).
public struct LaunchEnvironment: Equatable, Sendable {
  public var rank: Int
  public var worldSize: Int
  /// The process's index among those on its node: which GPU it binds.
  public var localRank: Int
  /// Processes on this node, where the launcher says.
  public var localWorldSize: Int?
  public var launcher: LauncherKind
  /// What every rank presents at the rendezvous: FLASHMOE_JOB_TOKEN (a secret; `flashmoe launch`
  /// always sets one), else one derived from the launcher's job identifier (`derivedToken`), which
  /// keeps other jobs' ranks out but is no secret. nil when neither exists: the rendezvous then runs
  /// with an empty token, which separates nothing from a stranger on the same host.
  public var jobToken: String?
  /// FLASHMOE_RENDEZVOUS, or 127.0.0.1 and the default port.
  public var rendezvous: RendezvousAddress

  /// The largest world accepted: the rendezvous holds one socket per rank on rank 0.
  public static let maxWorldSize = 4096

  public init(
    rank: Int, worldSize: Int, localRank: Int, localWorldSize: Int? = nil, launcher: LauncherKind = .torchrun,
    jobToken: String? = nil, rendezvous: RendezvousAddress = .default
  ) {
    self.rank = rank
    self.worldSize = worldSize
    self.localRank = localRank
    self.localWorldSize = localWorldSize
    self.launcher = launcher
    self.jobToken = jobToken
    self.rendezvous = rendezvous
  }

  /// One launcher's variable names.
  struct Names: Sendable {
    let launcher: LauncherKind
    let rank: String
    let worldSize: String
    let localRank: String
    let localWorldSize: String?
  }

  /// In order of precedence (see the type's comment).
  static let launchers: [Names] = [
    Names(launcher: .torchrun, rank: "RANK", worldSize: "WORLD_SIZE", localRank: "LOCAL_RANK", localWorldSize: "LOCAL_WORLD_SIZE"),
    Names(
      launcher: .openMPI, rank: "OMPI_COMM_WORLD_RANK", worldSize: "OMPI_COMM_WORLD_SIZE",
      localRank: "OMPI_COMM_WORLD_LOCAL_RANK", localWorldSize: "OMPI_COMM_WORLD_LOCAL_SIZE"),
    Names(launcher: .mpich, rank: "PMI_RANK", worldSize: "PMI_SIZE", localRank: "MPI_LOCALRANKID", localWorldSize: "MPI_LOCALNRANKS"),
    // SLURM_NTASKS_PER_NODE can read "2(x3)" and differ per node, so Slurm gives no local size.
    Names(launcher: .slurm, rank: "SLURM_PROCID", worldSize: "SLURM_NTASKS", localRank: "SLURM_LOCALID", localWorldSize: nil),
  ]

  public static let tokenVariable = "FLASHMOE_JOB_TOKEN"
  public static let rendezvousVariable = "FLASHMOE_RENDEZVOUS"

  /// Reads `environment` (the process's own by default).
  /// - Throws: `ConfigError` naming the variable, its value and what was expected.
  public static func parse(_ environment: [String: String]) throws(ConfigError) -> LaunchEnvironment {
    func value(_ name: String) -> String? {
      guard let text = environment[name], !text.isEmpty else { return nil }
      return text
    }
    guard let names = launchers.first(where: { value($0.rank) != nil }) else {
      throw ConfigError(
        field: "RANK", value: "unset",
        expected: "a launcher's variables: RANK and WORLD_SIZE (torchrun, flashmoe launch), OMPI_COMM_WORLD_RANK and "
          + "OMPI_COMM_WORLD_SIZE (Open MPI), PMI_RANK and PMI_SIZE (MPICH), or SLURM_PROCID and SLURM_NTASKS (Slurm)")
    }
    func integer(_ name: String) throws(ConfigError) -> Int? {
      guard let text = value(name) else { return nil }
      // Digits only: no sign, no spaces, at most 9 digits (no overflow, and far above any world).
      guard text.utf8.count <= 9, text.utf8.allSatisfy({ $0 >= UInt8(ascii: "0") && $0 <= UInt8(ascii: "9") }),
        let n = Int(text)
      else {
        throw ConfigError(field: name, value: "'\(text)'", expected: "a non-negative integer")
      }
      return n
    }

    guard let worldSize = try integer(names.worldSize) else {
      throw ConfigError(field: names.worldSize, value: "unset", expected: "the number of processes, set with \(names.rank)")
    }
    guard worldSize >= 1, worldSize <= maxWorldSize else {
      throw ConfigError(field: names.worldSize, value: "'\(worldSize)'", expected: "an integer in 1...\(maxWorldSize)")
    }
    let rank = try integer(names.rank) ?? 0
    guard rank < worldSize else {
      throw ConfigError(
        field: names.rank, value: "'\(rank)'", expected: "an integer in 0...\(worldSize - 1) (below \(names.worldSize) = \(worldSize))")
    }
    var localWorldSize: Int?
    if let name = names.localWorldSize, let n = try integer(name) {
      guard n >= 1, n <= worldSize else {
        throw ConfigError(field: name, value: "'\(n)'", expected: "an integer in 1...\(worldSize) (\(names.worldSize) = \(worldSize))")
      }
      localWorldSize = n
    }
    let localRank: Int
    if let n = try integer(names.localRank) {
      let bound = localWorldSize ?? worldSize
      let boundName = localWorldSize == nil ? names.worldSize : names.localWorldSize ?? names.worldSize
      guard n < bound else {
        throw ConfigError(field: names.localRank, value: "'\(n)'", expected: "an integer in 0...\(bound - 1) (below \(boundName) = \(bound))")
      }
      localRank = n
    } else if let localWorldSize {
      localRank = rank % localWorldSize
    } else if worldSize == 1 {
      localRank = 0
    } else {
      throw ConfigError(
        field: names.localRank, value: "unset",
        expected: "this process's index on its node (which GPU it binds)"
          + (names.localWorldSize.map { ", or \($0) to derive it from \(names.rank)" } ?? ""))
    }

    return LaunchEnvironment(
      rank: rank, worldSize: worldSize, localRank: localRank, localWorldSize: localWorldSize, launcher: names.launcher,
      jobToken: try token(value(tokenVariable)) ?? derivedToken(environment),
      rendezvous: try value(rendezvousVariable).map { text throws(ConfigError) in
        try RendezvousAddress.parse(text, field: rendezvousVariable)
      } ?? .default)
  }

  /// The process's own environment.
  public static func current() throws(ConfigError) -> LaunchEnvironment {
    try parse(processEnvironment())
  }

  /// The GPU this rank binds among `visibleGPUs`: its local rank, which must exist.
  public func gpuIndex(visibleGPUs: Int) throws(ConfigError) -> Int {
    guard localRank < visibleGPUs else {
      throw ConfigError(
        field: "local rank", value: localRank,
        expected: "below the \(visibleGPUs) visible GPU\(visibleGPUs == 1 ? "" : "s") (one GPU per process on a node)")
    }
    return localRank
  }

  /// The job identifiers launchers set, in the order they are looked at: torchrun's
  /// TORCHELASTIC_RUN_ID (its `--rdzv-id`; "none" by default, which is skipped), Slurm's
  /// SLURM_JOB_ID (with SLURM_STEP_ID), PMIx's PMIX_NAMESPACE (Open MPI 5, srun --mpi=pmix), Open
  /// MPI's OMPI_MCA_ess_base_jobid.
  static let jobIdentifiers = ["TORCHELASTIC_RUN_ID", "SLURM_JOB_ID", "PMIX_NAMESPACE", "OMPI_MCA_ess_base_jobid"]

  /// A token from the first job identifier present ("job:NAME=value", spaces and control characters
  /// left out): every rank of one job derives the same, another job a different one.
  static func derivedToken(_ environment: [String: String]) -> String? {
    for name in jobIdentifiers {
      guard var id = environment[name], !id.isEmpty, !(name == "TORCHELASTIC_RUN_ID" && id == "none") else { continue }
      if name == "SLURM_JOB_ID", let step = environment["SLURM_STEP_ID"], !step.isEmpty { id += "." + step }
      let text = String(decoding: "job:\(name)=\(id)".utf8.filter { (0x21...0x7E).contains($0) }.prefix(JobToken.maxLength), as: UTF8.self)
      if text.utf8.count >= JobToken.minLength { return text }
    }
    return nil
  }

  /// The token's text is a secret: errors say its length, never the text.
  static func token(_ text: String?) throws(ConfigError) -> String? {
    guard let text else { return nil }
    let bytes = text.utf8
    guard (JobToken.minLength...JobToken.maxLength).contains(bytes.count), bytes.allSatisfy({ (0x21...0x7E).contains($0) }) else {
      throw ConfigError(
        field: tokenVariable, value: "(\(text.count) characters, not shown)",
        expected: "\(JobToken.minLength) to \(JobToken.maxLength) printable ASCII characters without spaces")
    }
    return text
  }

  /// KEY=VALUE pairs of this process (no Foundation: read from `environ`).
  public static func processEnvironment() -> [String: String] {
    var result: [String: String] = [:]
    var p: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>? = environ
    while let entry = p?.pointee {
      let text = String(cString: entry)
      if let equals = text.firstIndex(of: "=") {
        result[String(text[..<equals])] = String(text[text.index(after: equals)...])
      }
      p = p?.successor()
    }
    return result
  }
}

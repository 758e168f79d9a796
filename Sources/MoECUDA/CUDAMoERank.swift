import CUDADriver
import MoECore
import MoEJIT

/// The layer in a job of one process per GPU (issue #6): this process runs rank r's kernel — its
/// S tokens, its E / P experts — and reaches the other ranks' GPUs through NVSHMEM. The buffers
/// peers write into (the symmetric tensor's cells, signals, abort word) come from NVSHMEM's
/// symmetric heap. Two transports (remote.cuh):
/// - `.peer`: the kernel's peer table holds `nvshmem_ptr` addresses and the same kernel as
///   `CUDAMoEGroup`'s stores into them directly (one host: NVLink, P2P);
/// - `.nvshmem`: the table holds this GPU's own symmetric addresses and the kernel, linked with
///   NVSHMEM's device library, puts rows and results with signals to the PE they belong to, for
///   peers that loads and stores cannot reach (other hosts).
public final class CUDAMoERank: @unchecked Sendable {
  public let engine: CUDAMoE
  public let job: NVSHMEMJob
  public let transport: Transport

  /// Environment variable: `put` forces the NVSHMEM put transport (to test it on one host),
  /// `direct` the peer pointers (refused where a peer is unreachable); default `auto`: peer
  /// pointers where every PE is reachable, else puts.
  public static let transportVariable = "FLASHMOE_NVSHMEM_TRANSPORT"

  /// - Parameters:
  ///   - debugStall, watchdogMs: fault injection and the kernel's wait bound, as for `CUDAMoE`.
  public init(
    config: MoEConfig, weights: MoEWeights, job: NVSHMEMJob, maxTokens: Int? = nil, debugStall: DebugStall? = nil,
    watchdogMs: Int? = nil
  ) throws {
    let choice = CUDAEnvironment.value(Self.transportVariable) ?? "auto"
    guard ["auto", "direct", "put"].contains(choice) else {
      throw ConfigError(field: Self.transportVariable, value: "'\(choice)'", expected: "auto, direct or put")
    }
    let reachable = try job.reachesEveryPE()
    let transport: Transport = choice == "put" || (choice == "auto" && !reachable) ? .nvshmem : .peer
    if transport == .peer && !reachable {
      throw CUDABackendError.unsupported(
        field: Self.transportVariable, value: "direct (from PE \(job.rank))",
        expected: "auto or put: some PE is not reachable by loads and stores (nvshmem_ptr is NULL)")
    }
    let engine = try CUDAMoE(
      config: config, weights: weights, maxTokens: maxTokens, deviceIndex: job.context.device.index,
      rank: job.rank, ranks: job.worldSize, context: job.context, debugStall: debugStall, watchdogMs: watchdogMs,
      symmetric: { bytes in try job.symmetricBuffer(bytes: bytes) },
      transport: transport, moduleInit: transport == .nvshmem ? { try job.library.initializeModule($0) } : nil)
    let mine = engine.work.peerEntry
    var table: [UInt8] = []
    for pe in 0..<job.worldSize {
      if transport == .nvshmem {
        // NVSHMEM takes the local symmetric address and the PE.
        table += mine.bytes
        continue
      }
      func peer(_ address: UInt64) throws -> UInt64 {
        guard let remote = try job.library.pointer(to: address, pe: pe) else {
          throw CUDABackendError.unsupported(
            field: "NVSHMEM peer", value: "PE \(pe) (from PE \(job.rank))", expected: "reachable by loads and stores (nvshmem_ptr)")
        }
        return remote
      }
      table += PeerEntry(
        dispatchIn: try peer(mine.dispatchIn), combineIn: try peer(mine.combineIn),
        dispatchSignal: try peer(mine.dispatchSignal), combineCount: try peer(mine.combineCount),
        abortEpoch: try peer(mine.abortEpoch)
      ).bytes
    }
    try engine.work.peers?.upload(table)
    try engine.stream.synchronize()
    // Every rank's cells are zeroed and its table is up before any rank's first forward stores
    // into them.
    try job.barrier("the barrier after building the layer")
    self.engine = engine
    self.job = job
    self.transport = transport
  }

  /// Bytes of symmetric memory a layer of `config` takes on each rank (for `NVSHMEMJob.start`).
  public static func symmetricBytes(config: MoEConfig, maxTokens: Int? = nil, ranks: Int) -> Int {
    // The put transport's (the larger) plus the reachability probe.
    Workspace.symmetricBytes(config: config, maxTokens: maxTokens ?? config.tokens, processors: 1, ranks: ranks, transport: .nvshmem) + 256
  }

  /// One forward of this rank's S tokens ([S, H]); returns its S outputs. Every rank must call it
  /// (the same number of times): it ends at a barrier, so that no rank's next forward stores into
  /// cells a slower rank still reads. A forward that failed on any rank fails on every rank.
  public func forward(_ input: [Float], tokens: Int, poison: Bool = false) throws -> [Float] {
    try agree(Result { try engine.forward(input, tokens: tokens, poison: poison) })
  }

  /// Ends a forward alike on every rank: the barrier is met whether this rank's kernel failed or
  /// not (a rank that skipped it would pair its next collective — the next layer's allocation, or
  /// the barrier that says its cells are zeroed — with another rank's barrier, and that rank's
  /// kernel would then store into cells not yet zeroed), and after it every rank sees whether a
  /// peer gave up: a peer's watchdog writes its abort word here even when this kernel had already
  /// finished with everything it needed.
  private func agree<T>(_ local: Result<T, any Error>) throws -> T {
    let met = Result { try job.barrier() }
    // This rank's own error first: it names the actor that gave up.
    let value = try local.get()
    try met.get()
    try engine.checkPeerAbort()
    return value
  }

  /// The routing of this rank's last forward: experts, and rows (−1 when dropped).
  public func lastRouting(tokens: Int) throws -> (expert: [Int32], row: [Int32]) {
    try engine.lastRouting(tokens: tokens)
  }

  /// Milliseconds per forward by CUDA events on this rank's GPU, `runs` after `warmup`, each
  /// forward followed by the job's barrier (outside the timed span).
  public func time(_ input: [Float], tokens: Int, warmup: Int, runs: Int) throws -> [Double] {
    try engine.upload(input, to: engine.work.input)
    let start = try Event(context: engine.context), end = try Event(context: engine.context)
    var times: [Double] = []
    for i in 0..<(warmup + runs) {
      try start.record(on: engine.stream)
      try engine.launch(input: engine.work.input.address, output: engine.work.output.address, tokens: tokens)
      try end.record(on: engine.stream)
      try agree(Result {
        try end.synchronize()
        try engine.checkStatus()
      })
      if i >= warmup { times.append(Double(try end.elapsedMilliseconds(since: start))) }
    }
    return times
  }
}

import CUDADriver
import Synchronization

#if canImport(Glibc)
import Glibc
#endif

/// This process's place in a job of one process per GPU over NVSHMEM (issue #6): its GPU's
/// context, NVSHMEM initialised as PE `rank` of `worldSize`, and the symmetric heap that the
/// layers' peer-written buffers come from.
public final class NVSHMEMJob: @unchecked Sendable {
  public let rank: Int
  public let worldSize: Int
  public let context: Context
  let library: NVSHMEMLibrary
  /// How long a rank waits at a barrier for the others (NVSHMEM's own barrier has no bound).
  public let barrierTimeout: Duration
  /// Set once a barrier timed out: NVSHMEM is then blocked in another thread and no NVSHMEM call
  /// may follow (the process should leave: `flashmoe` exits at once, see `isBroken`).
  private let lost = Mutex<CUDABackendError?>(nil)

  /// Default size of NVSHMEM's symmetric heap when NVSHMEM_SYMMETRIC_SIZE is unset (NVSHMEM's own
  /// default is 1 GiB); a job that needs more raises it before NVSHMEM starts.
  public static let defaultHeapBytes = 1 << 30

  /// Joins the job: rank 0 makes NVSHMEM's unique ID, `exchange` hands it to every rank (the TCP
  /// rendezvous; it returns rank 0's bytes everywhere), then every rank initialises NVSHMEM on
  /// GPU `gpu`. `heapBytes`: the symmetric memory this process's layers will take.
  public static func start(
    rank: Int, worldSize: Int, gpu: Int, heapBytes: Int = 0, barrierTimeout: Duration = .seconds(120),
    exchange: ([UInt8]?) throws -> [UInt8]
  ) throws -> NVSHMEMJob {
    let library = try NVSHMEMLibrary.shared()
    let device = try Driver.shared().device(gpu)
    let context = try Context(device: device)
    if getenv("NVSHMEM_SYMMETRIC_SIZE") == nil, heapBytes + (256 << 20) > defaultHeapBytes {
      // NVSHMEM reads its heap size once, at initialisation.
      setenv("NVSHMEM_SYMMETRIC_SIZE", "\(heapBytes + heapBytes / 8 + (256 << 20))", 0)
    }
    let id = try exchange(rank == 0 ? try library.uniqueID() : nil)
    try library.initialize(rank: rank, worldSize: worldSize, uniqueID: id, context: context)
    return NVSHMEMJob(rank: rank, worldSize: worldSize, context: context, library: library, barrierTimeout: barrierTimeout)
  }

  private init(rank: Int, worldSize: Int, context: Context, library: NVSHMEMLibrary, barrierTimeout: Duration) {
    self.rank = rank
    self.worldSize = worldSize
    self.context = context
    self.library = library
    self.barrierTimeout = barrierTimeout
  }

  /// True once a barrier timed out (the job cannot go on, and NVSHMEM must not be finalized).
  public var isBroken: Bool { lost.withLock { $0 != nil } }

  /// NVSHMEM's version, for reports.
  public var nvshmemVersion: String { library.versionString }

  /// Symmetric memory (collective: every rank asks for the same sizes in the same order). It is
  /// released when the job finishes.
  func symmetricBuffer(bytes: Int) throws -> DeviceBuffer {
    DeviceBuffer(context: context, borrowing: try library.malloc(bytes: bytes, alignment: 256), byteCount: bytes)
  }

  /// Whether loads and stores reach every PE's symmetric heap from this GPU (`nvshmem_ptr` is
  /// non-null for all of them: one host, NVLink or PCIe P2P). Collective: every rank calls it.
  public func reachesEveryPE() throws -> Bool {
    let probe = try library.malloc(bytes: 256, alignment: 256)
    defer { try? library.free(probe) }
    return try (0..<worldSize).allSatisfy { try library.pointer(to: probe, pe: $0) != nil }
  }

  /// Waits for every rank (nvshmem_barrier_all), at most `barrierTimeout`.
  /// - Throws: `CUDABackendError.ranksLost` past the bound, and at once on every later call.
  public func barrier(_ step: String = "the barrier after a forward") throws {
    if let error = lost.withLock({ $0 }) { throw error }
    let library = self.library
    guard try BoundedCall.run(timeout: barrierTimeout, { try library.barrierAll() }) != nil else {
      let seconds = Double(barrierTimeout.components.seconds) + Double(barrierTimeout.components.attoseconds) / 1e18
      let error = CUDABackendError.ranksLost(rank: rank, worldSize: worldSize, step: step, seconds: seconds)
      lost.withLock { $0 = error }
      throw error
    }
  }

  /// Leaves the job (collective): NVSHMEM's resources, the symmetric heap included, are released.
  /// After a lost barrier nothing is released (NVSHMEM is blocked): the process should exit.
  public func finish() throws {
    try barrier("the job's end")
    try library.finalize()
  }
}

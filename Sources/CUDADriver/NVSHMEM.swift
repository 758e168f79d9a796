internal import CCUDA
import Glibc
import Synchronization

/// NVSHMEM's host library (libnvshmem_host.so.3), opened with dlopen: bootstrap with a unique ID,
/// the symmetric heap, peer pointers and the per-module device state of kernels that use NVSHMEM.
///
/// One process per GPU. The bootstrap (issue #6):
/// 1. rank 0 calls `uniqueID()` and sends the 128 bytes to the other ranks (the TCP rendezvous);
/// 2. every rank, rank 0 included, calls `initialize(rank:worldSize:uniqueID:context:)` with its GPU's
///    context; this is collective and returns once all `worldSize` ranks have joined;
/// 3. each module whose cubin holds NVSHMEM's device code (compiled header-only,
///    `KernelCompiler.compileNVSHMEM`) gets `initializeModule(_:)` after cuModuleLoadData and
///    before its first launch; it is finalized when the module is released;
/// 4. `finalize()` at the end (collective).
///
/// What NVSHMEM needs from the process, found by reading its headers and library:
/// - `nvshmem_init`, `nvshmemx_init_attr` and `nvshmem_finalize` are inline functions of the headers
///   that call into the static libnvshmem_device.a (nvshmemi_init_thread), which a dlopen user does
///   not link. The host-library-only entry points are used instead: nvshmemx_hostlib_init_attr
///   (with NVSHMEMX_INIT_WITH_UNIQUEID) and nvshmemx_hostlib_finalize; the device side of each
///   module is then set up by nvshmemx_cumodule_init, which fills the module's
///   nvshmemi_device_state_d and checks nvshmemi_device_lib_version_d against the host library.
/// - NVSHMEM uses the CUDA context current on the calling thread at init (the GPU it binds to), so
///   `initialize` makes the given context current first, and every later call makes that same
///   context current again (calls may come from any thread or task).
/// - Calls are serialized by a lock: nvshmemx_init_attr asks for NVSHMEM_THREAD_SERIALIZED.
/// - The unique-ID bootstrap is the plugin nvshmem_bootstrap_uid.so.3 beside libnvshmem_host; its
///   RPATH ($ORIGIN) normally finds it, and `NVSHMEM_BOOTSTRAP_UID_PLUGIN` is set to its absolute
///   path when unset, so a copied or symlinked host library still finds it. NVSHMEM_BOOTSTRAP needs
///   no setting: the init flag selects the UID bootstrap.
/// - Settings NVSHMEM reads from the environment at `uniqueID()` / `initialize`:
///   NVSHMEM_BOOTSTRAP_UID_SOCK_IFNAME (the network interface rank 0 listens on and advertises in
///   the ID; e.g. `lo` when all ranks share one host), NVSHMEM_BOOTSTRAP_UID_SOCK_FAMILY (AF_INET /
///   AF_INET6), NVSHMEM_SYMMETRIC_SIZE (the symmetric heap, 1 GiB by default: `malloc` fails past it),
///   NVSHMEM_REMOTE_TRANSPORT=none (one host: no InfiniBand transport plugin is loaded),
///   NVSHMEM_DISABLE_CUDA_VMM, NVSHMEM_DEBUG=INFO (NVSHMEM's own log, for failures).
public final class NVSHMEMLibrary: @unchecked Sendable {
  public let paths: NVSHMEMPaths
  /// The file libnvshmem_host was loaded from.
  public let libraryPath: String
  /// nvshmemx_vendor_get_version_info, e.g. (3, 4, 5).
  public let version: (major: Int, minor: Int, patch: Int)

  /// The headers folder for NVRTC (`paths.includePath`).
  public var includePath: String { paths.includePath }
  /// NVSHMEM's device bitcode (`paths.deviceBitcodePath`; for libNVVM, not nvJitLink).
  public var deviceBitcodePath: String { paths.deviceBitcodePath }
  /// The device library nvJitLink links (`paths.deviceLibraryPath`).
  public var deviceLibraryPath: String { paths.deviceLibraryPath }
  /// "3.4.5".
  public var versionString: String { "\(version.major).\(version.minor).\(version.patch)" }

  let library: DynamicLibrary
  let nvshmemx_get_uniqueid: PFN_nvshmemx_get_uniqueid
  let nvshmemx_set_attr_uniqueid_args: PFN_nvshmemx_set_attr_uniqueid_args
  let nvshmemx_hostlib_init_attr: PFN_nvshmemx_hostlib_init_attr
  let nvshmemx_hostlib_finalize: PFN_nvshmemx_hostlib_finalize
  let nvshmemx_init_status: PFN_nvshmemx_init_status
  let nvshmemx_cumodule_init: PFN_nvshmemx_cumodule_init
  let nvshmemx_cumodule_finalize: PFN_nvshmemx_cumodule_finalize
  let nvshmem_my_pe: PFN_nvshmem_my_pe
  let nvshmem_n_pes: PFN_nvshmem_n_pes
  let nvshmem_malloc: PFN_nvshmem_malloc
  let nvshmem_align: PFN_nvshmem_align
  let nvshmem_free: PFN_nvshmem_free
  let nvshmem_ptr: PFN_nvshmem_ptr
  let nvshmem_barrier_all: PFN_nvshmem_barrier_all

  /// The context given to `initialize` (nil before), under the lock that serializes NVSHMEM calls.
  let state = Mutex<Context?>(nil)

  private static let sharedResult = loadOnce("NVSHMEM") { try NVSHMEMLibrary.load(environment: CUDAPaths.nvshmemEnvironment()) }

  /// The process-wide NVSHMEM (NVSHMEM's state is per process), found and loaded on first use.
  public static func shared() throws -> NVSHMEMLibrary { try sharedResult.get() }

  /// Finds (`NVSHMEMPaths.find`) and opens NVSHMEM's host library, without caching. Loading needs
  /// no GPU; nothing is initialised.
  /// - Throws: `CUDAError.unavailable` listing every place looked at, or naming the library and
  ///   dlopen's message when it is there but cannot be opened.
  public static func load(environment: [String: String]) throws -> NVSHMEMLibrary {
    try load(paths: NVSHMEMPaths.find(environment: environment))
  }

  /// Opens the host library of `paths`.
  public static func load(paths: NVSHMEMPaths) throws -> NVSHMEMLibrary {
    switch DynamicLibrary.open(paths.hostLibraryPath) {
    case .success(let library): return try NVSHMEMLibrary(library: library, paths: paths)
    case .failure(let error):
      throw CUDAError.unavailable(
        what: "NVSHMEM host library", searched: ["\(paths.hostLibraryPath) (\(error.message))"])
    }
  }

  private init(library: DynamicLibrary, paths: NVSHMEMPaths) throws {
    let lib = library
    self.library = library
    self.paths = paths
    libraryPath = lib.fileContaining(symbol: "nvshmemx_hostlib_init_attr") ?? paths.hostLibraryPath
    nvshmemx_get_uniqueid = try lib.function("nvshmemx_get_uniqueid", as: PFN_nvshmemx_get_uniqueid.self)
    nvshmemx_set_attr_uniqueid_args = try lib.function(
      "nvshmemx_set_attr_uniqueid_args", as: PFN_nvshmemx_set_attr_uniqueid_args.self)
    nvshmemx_hostlib_init_attr = try lib.function("nvshmemx_hostlib_init_attr", as: PFN_nvshmemx_hostlib_init_attr.self)
    nvshmemx_hostlib_finalize = try lib.function("nvshmemx_hostlib_finalize", as: PFN_nvshmemx_hostlib_finalize.self)
    nvshmemx_init_status = try lib.function("nvshmemx_init_status", as: PFN_nvshmemx_init_status.self)
    nvshmemx_cumodule_init = try lib.function("nvshmemx_cumodule_init", as: PFN_nvshmemx_cumodule_init.self)
    nvshmemx_cumodule_finalize = try lib.function("nvshmemx_cumodule_finalize", as: PFN_nvshmemx_cumodule_finalize.self)
    nvshmem_my_pe = try lib.function("nvshmem_my_pe", as: PFN_nvshmem_my_pe.self)
    nvshmem_n_pes = try lib.function("nvshmem_n_pes", as: PFN_nvshmem_n_pes.self)
    nvshmem_malloc = try lib.function("nvshmem_malloc", as: PFN_nvshmem_malloc.self)
    nvshmem_align = try lib.function("nvshmem_align", as: PFN_nvshmem_align.self)
    nvshmem_free = try lib.function("nvshmem_free", as: PFN_nvshmem_free.self)
    nvshmem_ptr = try lib.function("nvshmem_ptr", as: PFN_nvshmem_ptr.self)
    nvshmem_barrier_all = try lib.function("nvshmem_barrier_all", as: PFN_nvshmem_barrier_all.self)
    let versionInfo = try lib.function("nvshmemx_vendor_get_version_info", as: PFN_nvshmemx_vendor_get_version_info.self)
    var major: Int32 = 0, minor: Int32 = 0, patch: Int32 = 0
    versionInfo(&major, &minor, &patch)
    version = (Int(major), Int(minor), Int(patch))
  }

  // MARK: - Errors

  /// The funnel every status-returning NVSHMEM call goes through.
  func check(_ status: Int32, _ call: @autoclosure () -> String) throws {
    guard status != 0 else { return }
    throw CUDAError.nvshmem(code: status, message: Self.statusName(status), call: call(), library: libraryPath)
  }

  /// The nvshmemx_status name (non_abi/nvshmemx_error.h) of a status.
  static func statusName(_ status: Int32) -> String {
    let names = [
      "NVSHMEMX_SUCCESS", "NVSHMEMX_ERROR_INVALID_VALUE", "NVSHMEMX_ERROR_OUT_OF_MEMORY",
      "NVSHMEMX_ERROR_NOT_SUPPORTED", "NVSHMEMX_ERROR_SYMMETRY", "NVSHMEMX_ERROR_GPU_NOT_SELECTED",
      "NVSHMEMX_ERROR_COLLECTIVE_LAUNCH_FAILED", "NVSHMEMX_ERROR_INTERNAL",
    ]
    let name = names.indices.contains(Int(status)) ? names[Int(status)] : "NVSHMEM status \(status)"
    return "\(name) (NVSHMEM_DEBUG=INFO shows NVSHMEM's own log)"
  }

  /// The context of `initialize`, made current on this thread; throws when NVSHMEM is not initialised.
  func initializedContext(_ context: Context?, _ call: String) throws -> Context {
    guard let context else {
      throw CUDAError.invalidArgument(
        call: call, message: "NVSHMEM is not initialized; call initialize(rank:worldSize:uniqueID:context:) first")
    }
    try context.makeCurrent()
    return context
  }

  // MARK: - Bootstrap

  /// Points NVSHMEM at the UID bootstrap plugin beside the host library, unless the user already did.
  private func prepareBootstrap() {
    guard getenv("NVSHMEM_BOOTSTRAP_UID_PLUGIN") == nil, FileSystem.exists(paths.bootstrapUIDPluginPath) else { return }
    setenv("NVSHMEM_BOOTSTRAP_UID_PLUGIN", paths.bootstrapUIDPluginPath, 0)
  }

  /// nvshmemx_get_uniqueid: rank 0's 128-byte unique ID for `initialize`, to be sent to every rank.
  /// Rank 0 starts listening for the other ranks here (NVSHMEM_BOOTSTRAP_UID_SOCK_IFNAME picks the
  /// interface).
  public func uniqueID() throws -> [UInt8] {
    try state.withLock { _ in
      prepareBootstrap()
      var id = NVSHMEMABI.emptyUniqueID()
      try check(nvshmemx_get_uniqueid(&id), "nvshmemx_get_uniqueid")
      return NVSHMEMABI.bytes(of: id)
    }
  }

  /// Initialises NVSHMEM for this process as PE `rank` of `worldSize` on `context`'s GPU
  /// (nvshmemx_set_attr_uniqueid_args + nvshmemx_hostlib_init_attr with
  /// NVSHMEMX_INIT_WITH_UNIQUEID). Collective: returns once every rank has called it with the same ID.
  /// - Throws: `CUDAError.invalidArgument` for a rank outside 0..<worldSize, a second call, or an ID
  ///   that is not 128 bytes from nvshmemx_get_uniqueid; `CUDAError.nvshmem` when NVSHMEM fails.
  public func initialize(rank: Int, worldSize: Int, uniqueID: [UInt8], context: Context) throws {
    let call = "nvshmemx_hostlib_init_attr(rank \(rank) of \(worldSize), GPU \(context.device.index))"
    guard worldSize >= 1, (0..<worldSize).contains(rank), worldSize <= Int(Int32.max) else {
      throw CUDAError.invalidArgument(
        call: call, message: "rank \(rank), worldSize \(worldSize); expected worldSize >= 1 and 0 <= rank < worldSize")
    }
    var id = try NVSHMEMABI.uniqueID(from: uniqueID)
    try state.withLock { current in
      guard current == nil else {
        throw CUDAError.invalidArgument(call: call, message: "NVSHMEM is already initialized in this process")
      }
      prepareBootstrap()
      try context.makeCurrent()
      var attr = NVSHMEMABI.initialAttributes()
      // uid_args keeps a pointer to the ID: both calls run inside the one scope where it is valid.
      try withUnsafeMutablePointer(to: &id) { idPointer in
        try withUnsafeMutablePointer(to: &attr) { attrPointer in
          try check(
            nvshmemx_set_attr_uniqueid_args(Int32(rank), Int32(worldSize), idPointer, attrPointer),
            "nvshmemx_set_attr_uniqueid_args(rank \(rank) of \(worldSize))")
          try check(nvshmemx_hostlib_init_attr(NVSHMEMX_INIT_WITH_UNIQUEID, attrPointer), call)
        }
      }
      current = context
    }
  }

  /// nvshmemx_init_status: 0 not initialised, 1 bootstrapped, 2 or more initialised.
  public var initStatus: Int { Int(nvshmemx_init_status()) }

  /// True once `initialize` succeeded (and until `finalize`).
  public var isInitialized: Bool { state.withLock { $0 != nil } }

  // MARK: - After initialize

  /// nvshmem_my_pe: this process's PE (its rank).
  public var myPE: Int {
    get throws {
      try state.withLock { context in
        _ = try initializedContext(context, "nvshmem_my_pe")
        return Int(nvshmem_my_pe())
      }
    }
  }

  /// nvshmem_n_pes: the number of PEs.
  public var nPEs: Int {
    get throws {
      try state.withLock { context in
        _ = try initializedContext(context, "nvshmem_n_pes")
        return Int(nvshmem_n_pes())
      }
    }
  }

  /// Allocates `bytes` on the symmetric heap (nvshmem_malloc, or nvshmem_align with `alignment`) and
  /// returns the device address. Collective: every PE must ask for the same size in the same order.
  /// - Throws: `CUDAError.nvshmem` when NVSHMEM returns NULL (the heap is NVSHMEM_SYMMETRIC_SIZE).
  public func malloc(bytes: Int, alignment: Int? = nil) throws -> UInt64 {
    let call = alignment.map { "nvshmem_align(\($0), \(bytes) bytes)" } ?? "nvshmem_malloc(\(bytes) bytes)"
    guard bytes > 0 else { throw CUDAError.invalidArgument(call: call, message: "size \(bytes); expected > 0") }
    if let alignment, alignment <= 0 || alignment & (alignment - 1) != 0 {
      throw CUDAError.invalidArgument(call: call, message: "alignment \(alignment); expected a power of two")
    }
    return try state.withLock { context in
      _ = try initializedContext(context, call)
      let pointer = alignment.map { nvshmem_align($0, bytes) } ?? nvshmem_malloc(bytes)
      guard let pointer else {
        throw CUDAError.nvshmem(
          code: 2, message: "NVSHMEMX_ERROR_OUT_OF_MEMORY (returned NULL; NVSHMEM_SYMMETRIC_SIZE bounds the heap)",
          call: call, library: libraryPath)
      }
      return UInt64(UInt(bitPattern: pointer))
    }
  }

  /// nvshmem_free of an address from `malloc`. Collective.
  public func free(_ address: UInt64) throws {
    try state.withLock { context in
      _ = try initializedContext(context, "nvshmem_free")
      nvshmem_free(UnsafeMutableRawPointer(bitPattern: UInt(address)))
    }
  }

  /// nvshmem_ptr: the address through which this GPU's kernels can load and store `address` (a
  /// symmetric address) of PE `pe` directly (NVLink / P2P), or nil when `pe` is reachable only
  /// through NVSHMEM's transfer calls.
  public func pointer(to address: UInt64, pe: Int) throws -> UInt64? {
    try state.withLock { context in
      _ = try initializedContext(context, "nvshmem_ptr(PE \(pe))")
      let peer = nvshmem_ptr(UnsafeRawPointer(bitPattern: UInt(address)), Int32(pe))
      return peer.map { UInt64(UInt(bitPattern: $0)) }
    }
  }

  /// nvshmemx_cumodule_init: fills the NVSHMEM device state of `module` (a cubin holding NVSHMEM's
  /// device code, loaded with cuModuleLoadData). Needed once per module, after
  /// `initialize`, before the module's first launch. The module is finalized (nvshmemx_cumodule_finalize)
  /// when it is released, before its unload: NVSHMEM keeps the modules it initialised and writes
  /// into their device state at later allocations and barriers, which faulted (illegal address)
  /// once a module had been unloaded without it.
  public func initializeModule(_ module: Module) throws {
    try state.withLock { context in
      _ = try initializedContext(context, "nvshmemx_cumodule_init")
      try module.context.makeCurrent()
      try check(nvshmemx_cumodule_init(module.handle), "nvshmemx_cumodule_init")
    }
    let finalize = nvshmemx_cumodule_finalize
    module.runBeforeUnload { [self] handle in
      // After NVSHMEM itself is finalized there is nothing left to release.
      state.withLock { context in
        guard (try? initializedContext(context, "nvshmemx_cumodule_finalize")) != nil else { return }
        _ = finalize(handle)
      }
    }
  }

  /// nvshmem_barrier_all: waits until every PE arrives (and completes its outstanding NVSHMEM
  /// operations). Collective.
  public func barrierAll() throws {
    try state.withLock { context in
      _ = try initializedContext(context, "nvshmem_barrier_all")
      nvshmem_barrier_all()
    }
  }

  /// nvshmemx_hostlib_finalize: releases NVSHMEM's resources. Collective.
  public func finalize() throws {
    try state.withLock { context in
      _ = try initializedContext(context, "nvshmemx_hostlib_finalize")
      nvshmemx_hostlib_finalize()
      context = nil
    }
  }
}

internal import CCUDA
import Synchronization

/// A loaded code image (cuModuleLoadData): a cubin, a fatbin, or NUL-terminated PTX text.
/// Unloaded in deinit; kernels keep their module alive.
public final class Module: @unchecked Sendable {
  public let context: Context
  let handle: CUmodule
  var driver: Driver { context.driver }
  /// Run in deinit before the unload, newest first: what registered the module elsewhere undoes it
  /// (NVSHMEM keeps every module it initialised and writes into their device state later).
  private let beforeUnload = Mutex<[@Sendable (CUmodule) -> Void]>([])

  /// Loads an image: cubin or fatbin bytes, or PTX text (a terminating NUL is added if missing).
  public init(context: Context, image: [UInt8]) throws {
    guard !image.isEmpty else { throw CUDAError.invalidArgument(call: "cuModuleLoadData", message: "empty image") }
    var bytes = image
    // An ELF cubin starts with 0x7F 'E' 'L' 'F'; a fatbin with 0x50ED55BA. Anything else is PTX text.
    let isELF = bytes.starts(with: [0x7F, 0x45, 0x4C, 0x46])
    let isFatbin = bytes.starts(with: [0x50, 0xED, 0x55, 0xBA]) || bytes.starts(with: [0xBA, 0x55, 0xED, 0x50])
    if !isELF && !isFatbin && bytes.last != 0 { bytes.append(0) }
    try context.makeCurrent()
    var module: CUmodule? = nil
    try bytes.withUnsafeBytes { raw in
      try context.driver.check(context.driver.cuModuleLoadData(&module, raw.baseAddress), "cuModuleLoadData")
    }
    guard let module else { throw CUDAError.invalidArgument(call: "cuModuleLoadData", message: "returned no module") }
    self.context = context
    self.handle = module
  }

  /// Loads a program compiled by `NVRTC.compile`: its cubin, or its PTX when it has no cubin.
  public convenience init(context: Context, program: CompiledProgram) throws {
    if !program.cubin.isEmpty {
      try self.init(context: context, image: program.cubin)
    } else if let ptx = program.ptx {
      try self.init(context: context, image: Array(ptx.utf8))
    } else {
      throw CUDAError.invalidArgument(call: "cuModuleLoadData", message: "program \(program.name) has neither cubin nor PTX")
    }
  }

  deinit {
    _ = driver.cuCtxSetCurrent(context.handle)
    for hook in beforeUnload.withLock({ $0 }).reversed() { hook(handle) }
    _ = driver.cuCtxSetCurrent(context.handle)
    _ = driver.cuModuleUnload(handle)
  }

  /// Registers `hook` to run just before this module is unloaded.
  func runBeforeUnload(_ hook: @escaping @Sendable (CUmodule) -> Void) {
    beforeUnload.withLock { $0.append(hook) }
  }

  /// The values of a `__device__` array of `T` named `name` (an `extern "C"` symbol), copied to the host.
  public func global<T: BitwiseCopyable>(named name: String, as type: T.Type) throws -> [T] {
    try context.makeCurrent()
    var address: CUdeviceptr = 0
    var bytes = 0
    try driver.check(driver.cuModuleGetGlobal(&address, &bytes, handle, name), "cuModuleGetGlobal(\(name))")
    let count = bytes / MemoryLayout<T>.stride
    guard count > 0 else { return [] }
    return try [T](unsafeUninitializedCapacity: count) { storage, initialized in
      try driver.check(
        driver.cuMemcpyDtoH(UnsafeMutableRawPointer(storage.baseAddress!), address, count * MemoryLayout<T>.stride),
        "cuMemcpyDtoH(\(name))")
      initialized = count
    }
  }

  /// The kernel with this (lowered, for C++ names) entry name.
  public func kernel(named name: String) throws -> Kernel { try Kernel(module: self, name: name) }
}

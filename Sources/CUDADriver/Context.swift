internal import CCUDA

/// A device's primary context, retained for the life of this object. Every wrapper call makes its
/// context current on the calling thread first, so objects may be used from any thread or task.
public final class Context: @unchecked Sendable {
  public let device: Device
  let handle: CUcontext
  var driver: Driver { device.driver }

  /// Retains the primary context of `device` (cuDevicePrimaryCtxRetain).
  public init(device: Device) throws {
    let driver = device.driver
    var ctx: CUcontext? = nil
    try driver.check(driver.cuDevicePrimaryCtxRetain(&ctx, device.handle), "cuDevicePrimaryCtxRetain(\(device.index))")
    guard let ctx else {
      throw CUDAError.invalidArgument(call: "cuDevicePrimaryCtxRetain", message: "returned no context")
    }
    self.device = device
    self.handle = ctx
  }

  deinit { _ = driver.cuDevicePrimaryCtxRelease(device.handle) }

  /// Makes this context current on the calling thread (cuCtxSetCurrent).
  public func makeCurrent() throws {
    try driver.check(driver.cuCtxSetCurrent(handle), "cuCtxSetCurrent(GPU \(device.index))")
  }

  /// Waits for all work in this context (cuCtxSynchronize).
  public func synchronize() throws {
    try makeCurrent()
    try driver.check(driver.cuCtxSynchronize(), "cuCtxSynchronize(GPU \(device.index))")
  }

  /// Lets kernels in this context access `peer`'s memory (cuCtxEnablePeerAccess). Enabling twice
  /// is not an error.
  public func enablePeerAccess(to peer: Context) throws {
    guard peer !== self, peer.device.index != device.index else { return }
    try makeCurrent()
    let result = driver.cuCtxEnablePeerAccess(peer.handle, 0)
    if result == CUDA_ERROR_PEER_ACCESS_ALREADY_ENABLED { return }
    try driver.check(result, "cuCtxEnablePeerAccess(GPU \(device.index) -> GPU \(peer.device.index))")
  }

  /// Free and total device memory in bytes (cuMemGetInfo).
  public func memoryInfo() throws -> (free: Int, total: Int) {
    try makeCurrent()
    var free = 0, total = 0
    try driver.check(driver.cuMemGetInfo(&free, &total), "cuMemGetInfo")
    return (free, total)
  }
}

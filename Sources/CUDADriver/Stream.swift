internal import CCUDA

/// A CUDA stream (cuStreamCreate), destroyed in deinit. APIs that take `stream: Stream?` use the
/// context's legacy default stream for nil.
public final class Stream: @unchecked Sendable {
  public let context: Context
  let handle: CUstream
  var driver: Driver { context.driver }

  /// - Parameter nonBlocking: CU_STREAM_NON_BLOCKING: no implicit ordering with the default stream.
  public init(context: Context, nonBlocking: Bool = true) throws {
    try context.makeCurrent()
    var stream: CUstream? = nil
    let flags = nonBlocking ? CU_STREAM_NON_BLOCKING : CU_STREAM_DEFAULT
    try context.driver.check(context.driver.cuStreamCreate(&stream, flags), "cuStreamCreate")
    guard let stream else { throw CUDAError.invalidArgument(call: "cuStreamCreate", message: "returned no stream") }
    self.context = context
    self.handle = stream
  }

  deinit {
    _ = driver.cuCtxSetCurrent(context.handle)
    _ = driver.cuStreamDestroy(handle)
  }

  /// Waits until all work queued on the stream has finished (cuStreamSynchronize).
  public func synchronize() throws {
    try context.makeCurrent()
    try driver.check(driver.cuStreamSynchronize(handle), "cuStreamSynchronize")
  }

  /// True when all queued work has finished (cuStreamQuery), without waiting.
  public func isIdle() throws -> Bool {
    try context.makeCurrent()
    let result = driver.cuStreamQuery(handle)
    if result == CUDA_ERROR_NOT_READY { return false }
    try driver.check(result, "cuStreamQuery")
    return true
  }
}

extension Optional where Wrapped == Stream {
  /// The handle to pass to the driver: nil is the legacy default stream.
  var handle: CUstream? { self?.handle }
}

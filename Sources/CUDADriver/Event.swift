internal import CCUDA

/// A CUDA event (cuEventCreate) for timing and ordering, destroyed in deinit.
public final class Event: @unchecked Sendable {
  public let context: Context
  let handle: CUevent
  var driver: Driver { context.driver }

  /// - Parameters:
  ///   - timing: false sets CU_EVENT_DISABLE_TIMING (cheaper; no elapsed time).
  ///   - blockingSync: CU_EVENT_BLOCKING_SYNC: `synchronize` sleeps instead of spinning.
  public init(context: Context, timing: Bool = true, blockingSync: Bool = false) throws {
    try context.makeCurrent()
    var flags = CU_EVENT_DEFAULT
    if !timing { flags |= CU_EVENT_DISABLE_TIMING }
    if blockingSync { flags |= CU_EVENT_BLOCKING_SYNC }
    var event: CUevent? = nil
    try context.driver.check(context.driver.cuEventCreate(&event, flags), "cuEventCreate")
    guard let event else { throw CUDAError.invalidArgument(call: "cuEventCreate", message: "returned no event") }
    self.context = context
    self.handle = event
  }

  deinit {
    _ = driver.cuCtxSetCurrent(context.handle)
    _ = driver.cuEventDestroy(handle)
  }

  /// Records the event on `stream` (nil: the default stream).
  public func record(on stream: Stream? = nil) throws {
    try context.makeCurrent()
    try driver.check(driver.cuEventRecord(handle, stream.handle), "cuEventRecord")
  }

  /// Waits until the work before the record has finished.
  public func synchronize() throws {
    try context.makeCurrent()
    try driver.check(driver.cuEventSynchronize(handle), "cuEventSynchronize")
  }

  /// True when the recorded work has finished (cuEventQuery), without waiting.
  public func isComplete() throws -> Bool {
    try context.makeCurrent()
    let result = driver.cuEventQuery(handle)
    if result == CUDA_ERROR_NOT_READY { return false }
    try driver.check(result, "cuEventQuery")
    return true
  }

  /// Milliseconds between `start`'s record and this event's (cuEventElapsedTime); both must have
  /// completed (call `synchronize` first).
  public func elapsedMilliseconds(since start: Event) throws -> Float {
    try context.makeCurrent()
    var ms: Float = 0
    try driver.check(driver.cuEventElapsedTime(&ms, start.handle, handle), "cuEventElapsedTime")
    return ms
  }
}

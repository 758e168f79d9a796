internal import CCUDA

/// Device memory from cuMemAlloc, freed in deinit (no managed memory). Host copies take and return
/// Swift arrays of any bitwise-copyable element ([UInt8], [Float], [UInt16] for bf16/fp16, ...).
///
/// Copies without a stream are synchronous cuMemcpy calls on the legacy default stream, which does
/// NOT wait for work on non-blocking streams: pass that stream (the copy is then queued on it and
/// the call waits for the stream) or synchronize it first.
public final class DeviceBuffer: @unchecked Sendable {
  public let context: Context
  /// Size in bytes.
  public let byteCount: Int
  /// The device address (0 for an empty buffer); pass it to kernels with `.pointer` or `.buffer`.
  public let address: UInt64
  var driver: Driver { context.driver }

  /// Allocates `byteCount` bytes (uninitialised) on the context's device.
  public init(context: Context, byteCount: Int) throws {
    guard byteCount >= 0 else {
      throw CUDAError.invalidArgument(call: "cuMemAlloc", message: "negative size \(byteCount)")
    }
    self.context = context
    self.byteCount = byteCount
    borrowed = false
    if byteCount == 0 { address = 0; return }
    try context.makeCurrent()
    var pointer: CUdeviceptr = 0
    try context.driver.check(context.driver.cuMemAlloc(&pointer, byteCount), "cuMemAlloc(\(byteCount) bytes)")
    address = pointer
  }

  /// Allocates room for `count` elements of `type`.
  public convenience init<T: BitwiseCopyable>(context: Context, count: Int, of type: T.Type) throws {
    try self.init(context: context, byteCount: count * MemoryLayout<T>.stride)
  }

  /// Allocates and fills with `values`.
  public convenience init<T: BitwiseCopyable>(context: Context, copying values: [T]) throws {
    try self.init(context: context, byteCount: values.count * MemoryLayout<T>.stride)
    try upload(values)
  }

  /// Memory this object does not own (NVSHMEM's symmetric heap): never freed here; its owner
  /// releases it (NVSHMEM's free is collective, so it cannot run in an arbitrary deinit).
  private let borrowed: Bool

  /// Wraps `byteCount` bytes at `address` that another allocator owns and keeps alive.
  public init(context: Context, borrowing address: UInt64, byteCount: Int) {
    self.context = context
    self.byteCount = byteCount
    self.address = address
    borrowed = true
  }

  deinit {
    guard address != 0, !borrowed else { return }
    _ = driver.cuCtxSetCurrent(context.handle)
    _ = driver.cuMemFree(address)
  }

  /// The device address `byteOffset` bytes into the buffer.
  public func address(atByteOffset byteOffset: Int) -> UInt64 { address + UInt64(byteOffset) }

  func checkRange(_ offset: Int, _ count: Int, _ call: String) throws {
    guard offset >= 0, count >= 0, offset <= byteCount, count <= byteCount - offset else {
      throw CUDAError.invalidArgument(
        call: call, message: "bytes \(offset)..<\(offset + count) outside a buffer of \(byteCount) bytes")
    }
  }

  /// Copies `values` into the buffer starting at `byteOffset`.
  public func upload<T: BitwiseCopyable>(_ values: [T], toByteOffset byteOffset: Int = 0, stream: Stream? = nil) throws {
    let count = values.count * MemoryLayout<T>.stride
    try checkRange(byteOffset, count, "cuMemcpyHtoD")
    guard count > 0 else { return }
    try context.makeCurrent()
    let destination = address(atByteOffset: byteOffset)
    try values.withUnsafeBytes { raw in
      if let stream {
        try driver.check(driver.cuMemcpyHtoDAsync(destination, raw.baseAddress, count, stream.handle), "cuMemcpyHtoDAsync")
        try driver.check(driver.cuStreamSynchronize(stream.handle), "cuStreamSynchronize")
      } else {
        try driver.check(driver.cuMemcpyHtoD(destination, raw.baseAddress, count), "cuMemcpyHtoD")
      }
    }
  }

  /// Copies `count` elements of `type` out of the buffer, starting at `byteOffset`.
  public func download<T: BitwiseCopyable>(
    _ type: T.Type = T.self, count: Int, fromByteOffset byteOffset: Int = 0, stream: Stream? = nil
  ) throws -> [T] {
    let bytes = count * MemoryLayout<T>.stride
    try checkRange(byteOffset, bytes, "cuMemcpyDtoH")
    guard count > 0 else { return [] }
    try context.makeCurrent()
    let source = address(atByteOffset: byteOffset)
    return try [T](unsafeUninitializedCapacity: count) { storage, initialized in
      let raw = UnsafeMutableRawPointer(storage.baseAddress!)
      if let stream {
        try driver.check(driver.cuMemcpyDtoHAsync(raw, source, bytes, stream.handle), "cuMemcpyDtoHAsync")
        try driver.check(driver.cuStreamSynchronize(stream.handle), "cuStreamSynchronize")
      } else {
        try driver.check(driver.cuMemcpyDtoH(raw, source, bytes), "cuMemcpyDtoH")
      }
      initialized = count
    }
  }

  /// The whole buffer as elements of `type` (its size must be a multiple of the stride).
  public func download<T: BitwiseCopyable>(_ type: T.Type = T.self, stream: Stream? = nil) throws -> [T] {
    let stride = MemoryLayout<T>.stride
    guard byteCount % stride == 0 else {
      throw CUDAError.invalidArgument(
        call: "cuMemcpyDtoH", message: "\(byteCount) bytes is not a whole number of \(stride)-byte elements")
    }
    return try download(type, count: byteCount / stride, stream: stream)
  }

  /// Copies `byteCount` bytes from `source` (any device, with unified addressing) into this buffer.
  /// Without a stream the call returns when the copy has finished.
  public func copy(
    from source: DeviceBuffer, sourceByteOffset: Int = 0, toByteOffset: Int = 0, byteCount: Int? = nil,
    stream: Stream? = nil
  ) throws {
    let count = byteCount ?? min(source.byteCount - sourceByteOffset, self.byteCount - toByteOffset)
    try source.checkRange(sourceByteOffset, count, "cuMemcpyDtoD (source)")
    try checkRange(toByteOffset, count, "cuMemcpyDtoD (destination)")
    guard count > 0 else { return }
    try context.makeCurrent()
    let dst = address(atByteOffset: toByteOffset), src = source.address(atByteOffset: sourceByteOffset)
    if let stream {
      try driver.check(driver.cuMemcpyDtoDAsync(dst, src, count, stream.handle), "cuMemcpyDtoDAsync")
    } else {
      try driver.check(driver.cuMemcpyDtoD(dst, src, count), "cuMemcpyDtoD")
      try driver.check(driver.cuStreamSynchronize(nil), "cuStreamSynchronize(default stream)")
    }
  }

  /// Sets every byte (or `byteCount` bytes from `byteOffset`) to `value` (cuMemsetD8). With a
  /// stream it is queued there and not waited for; without one the call returns when it is done.
  public func fill(byte value: UInt8, byteOffset: Int = 0, byteCount: Int? = nil, stream: Stream? = nil) throws {
    let count = byteCount ?? (self.byteCount - byteOffset)
    try checkRange(byteOffset, count, "cuMemsetD8")
    guard count > 0 else { return }
    try context.makeCurrent()
    let dst = address(atByteOffset: byteOffset)
    if let stream {
      try driver.check(driver.cuMemsetD8Async(dst, value, count, stream.handle), "cuMemsetD8Async")
    } else {
      try driver.check(driver.cuMemsetD8(dst, value, count), "cuMemsetD8")
      try driver.check(driver.cuStreamSynchronize(nil), "cuStreamSynchronize(default stream)")
    }
  }

  /// Sets every 32-bit word to `value` (cuMemsetD32): 0x3F80_0000 fills with 1.0f. Offset and
  /// size must be multiples of 4. Stream behaviour as for `fill(byte:)`.
  public func fill(word value: UInt32, byteOffset: Int = 0, byteCount: Int? = nil, stream: Stream? = nil) throws {
    let count = byteCount ?? (self.byteCount - byteOffset)
    try checkRange(byteOffset, count, "cuMemsetD32")
    guard byteOffset % 4 == 0, count % 4 == 0 else {
      throw CUDAError.invalidArgument(call: "cuMemsetD32", message: "offset \(byteOffset) and size \(count) must be multiples of 4")
    }
    guard count > 0 else { return }
    try context.makeCurrent()
    let dst = address(atByteOffset: byteOffset)
    if let stream {
      try driver.check(driver.cuMemsetD32Async(dst, value, count / 4, stream.handle), "cuMemsetD32Async")
    } else {
      try driver.check(driver.cuMemsetD32(dst, value, count / 4), "cuMemsetD32")
      try driver.check(driver.cuStreamSynchronize(nil), "cuStreamSynchronize(default stream)")
    }
  }
}

internal import CCUDA

/// Grid or block dimensions.
public struct Dim3: Sendable, Hashable, CustomStringConvertible, ExpressibleByIntegerLiteral {
  public var x: Int, y: Int, z: Int
  public init(_ x: Int, _ y: Int = 1, _ z: Int = 1) { self.x = x; self.y = y; self.z = z }
  public init(integerLiteral value: Int) { self.init(value) }
  public var count: Int { x * y * z }
  public var description: String { "(\(x), \(y), \(z))" }

  func checked(_ what: String, _ call: String) throws -> (UInt32, UInt32, UInt32) {
    for v in [x, y, z] where v < 1 || v > Int(UInt32.max) {
      throw CUDAError.invalidArgument(call: call, message: "\(what) \(self) must be positive")
    }
    return (UInt32(x), UInt32(y), UInt32(z))
  }
}

/// One kernel parameter, passed by value. Device addresses are `.pointer` (or `.buffer(...)`).
public enum KernelArgument: Sendable, Hashable {
  case pointer(UInt64)
  case int32(Int32)
  case uint32(UInt32)
  case int64(Int64)
  case uint64(UInt64)
  case float(Float)
  case double(Double)
  /// The raw bytes of a by-value struct parameter, with the struct's alignment.
  case bytes([UInt8], alignment: Int)

  /// The address of `buffer` plus an offset. The caller keeps the buffer alive while kernels use it.
  public static func buffer(_ buffer: DeviceBuffer, byteOffset: Int = 0) -> KernelArgument {
    .pointer(buffer.address(atByteOffset: byteOffset))
  }

  /// Any bitwise-copyable value as raw bytes (its Swift layout must match the kernel's C layout).
  public static func value<T: BitwiseCopyable>(_ value: T) -> KernelArgument {
    let bytes = withUnsafeBytes(of: value) { Array($0) }
    return .bytes(bytes, alignment: MemoryLayout<T>.alignment)
  }

  public var byteCount: Int {
    switch self {
    case .int32, .uint32, .float: return 4
    case .pointer, .int64, .uint64, .double: return 8
    case .bytes(let bytes, _): return bytes.count
    }
  }

  var alignment: Int {
    switch self {
    case .bytes(_, let alignment): return max(1, alignment)
    default: return byteCount
    }
  }

  func store(to destination: UnsafeMutableRawPointer) {
    switch self {
    case .pointer(let v): destination.storeBytes(of: v, as: UInt64.self)
    case .int32(let v): destination.storeBytes(of: v, as: Int32.self)
    case .uint32(let v): destination.storeBytes(of: v, as: UInt32.self)
    case .int64(let v): destination.storeBytes(of: v, as: Int64.self)
    case .uint64(let v): destination.storeBytes(of: v, as: UInt64.self)
    case .float(let v): destination.storeBytes(of: v, as: Float.self)
    case .double(let v): destination.storeBytes(of: v, as: Double.self)
    case .bytes(let bytes, _):
      bytes.withUnsafeBytes { destination.copyMemory(from: $0.baseAddress!, byteCount: bytes.count) }
    }
  }

  /// Lays the arguments out in one aligned block and calls `body` with the `void**` array of
  /// their addresses that cuLaunchKernel takes. The driver copies the values during the call.
  static func withParameterArray<R>(
    _ arguments: [KernelArgument], _ body: (UnsafeMutablePointer<UnsafeMutableRawPointer?>?) throws -> R
  ) rethrows -> R {
    var offsets: [Int] = []
    var total = 0
    for argument in arguments {
      let alignment = max(argument.alignment, 8)
      total = (total + alignment - 1) / alignment * alignment
      offsets.append(total)
      total += max(argument.byteCount, 8)
    }
    let storageSize = max(total, 16)
    let storage = UnsafeMutableRawPointer.allocate(byteCount: storageSize, alignment: 16)
    defer { storage.deallocate() }
    storage.initializeMemory(as: UInt8.self, repeating: 0, count: storageSize)
    var pointers: [UnsafeMutableRawPointer?] = []
    for (argument, offset) in zip(arguments, offsets) {
      argument.store(to: storage + offset)
      pointers.append(storage + offset)
    }
    pointers.append(nil)
    return try pointers.withUnsafeMutableBufferPointer { try body($0.baseAddress) }
  }
}

extension Kernel {
  /// Launches the kernel (cuLaunchKernel, or cuLaunchCooperativeKernel when `cooperative`, which
  /// makes grid-wide synchronisation legal and fails if the grid cannot be co-resident). Returns
  /// once queued; synchronize the stream or record an event to wait.
  /// - Throws: `.invalidArgument` when the arguments do not match the kernel's parameter sizes.
  public func launch(
    grid: Dim3, block: Dim3, sharedBytes: Int = 0, stream: Stream? = nil, cooperative: Bool = false,
    arguments: [KernelArgument]
  ) throws {
    let call = cooperative ? "cuLaunchCooperativeKernel(\(name))" : "cuLaunchKernel(\(name))"
    let (gx, gy, gz) = try grid.checked("grid", call)
    let (bx, by, bz) = try block.checked("block", call)
    guard sharedBytes >= 0, sharedBytes <= Int(UInt32.max) else {
      throw CUDAError.invalidArgument(call: call, message: "shared memory \(sharedBytes) bytes")
    }
    if let stream, stream.context !== context, stream.context.device.index != context.device.index {
      throw CUDAError.invalidArgument(
        call: call, message: "stream of GPU \(stream.context.device.index) for a kernel of GPU \(context.device.index)")
    }
    try checkArguments(arguments, call)
    try context.makeCurrent()
    let driver = self.driver
    try KernelArgument.withParameterArray(arguments) { params in
      if cooperative {
        try driver.check(
          driver.cuLaunchCooperativeKernel(handle, gx, gy, gz, bx, by, bz, UInt32(sharedBytes), stream.handle, params), call)
      } else {
        try driver.check(
          driver.cuLaunchKernel(handle, gx, gy, gz, bx, by, bz, UInt32(sharedBytes), stream.handle, params, nil), call)
      }
    }
  }

  func checkArguments(_ arguments: [KernelArgument], _ call: String) throws {
    guard let sizes = parameterSizes else {
      // The parameter count is unknown: check each argument against its parameter (a kernel with
      // more parameters than arguments goes unnoticed here).
      guard driver.cuFuncGetParamInfo != nil else { return }
      for (index, argument) in arguments.enumerated() {
        guard let size = parameterSize(at: index) else {
          throw CUDAError.invalidArgument(call: call, message: "argument \(index) has no parameter: the kernel takes \(index)")
        }
        guard argument.byteCount == size else {
          throw CUDAError.invalidArgument(
            call: call, message: "argument \(index) is \(argument.byteCount) bytes (\(argument)) but the parameter is \(size) bytes")
        }
      }
      return
    }
    guard sizes.count == arguments.count else {
      throw CUDAError.invalidArgument(
        call: call, message: "\(arguments.count) arguments for \(sizes.count) parameters (sizes \(sizes))")
    }
    for (index, (argument, size)) in zip(arguments, sizes).enumerated() where argument.byteCount != size {
      throw CUDAError.invalidArgument(
        call: call, message: "argument \(index) is \(argument.byteCount) bytes (\(argument)) but the parameter is \(size) bytes")
    }
  }
}

internal import CCUDA

/// What the driver reports about a loaded kernel (cuFuncGetAttribute).
public struct KernelAttributes: Sendable, Hashable {
  public let registers: Int
  public let maxThreadsPerBlock: Int
  public let staticSharedBytes: Int
  public let constantBytes: Int
  /// Local memory per thread (stack frame and spills).
  public let localBytes: Int
  /// The current dynamic shared memory limit (raise it with `setMaxDynamicSharedMemory`).
  public let maxDynamicSharedBytes: Int
  /// PTX and binary versions as 10 × major + minor (90 for 9.0).
  public let ptxVersion: Int
  public let binaryVersion: Int
}

/// A kernel (CUfunction) of a loaded module.
public final class Kernel: @unchecked Sendable {
  public let name: String
  public let module: Module
  /// The byte size of each parameter, from cuFuncGetParamCount and cuFuncGetParamInfo (nil when
  /// the driver lacks either). `launch` checks its arguments against these, or else each argument
  /// against its own parameter.
  public let parameterSizes: [Int]?
  let handle: CUfunction
  var context: Context { module.context }
  var driver: Driver { module.driver }

  init(module: Module, name: String) throws {
    let driver = module.driver
    try module.context.makeCurrent()
    var function: CUfunction? = nil
    try driver.check(driver.cuModuleGetFunction(&function, module.handle, name), "cuModuleGetFunction(\(name))")
    guard let function else { throw CUDAError.invalidArgument(call: "cuModuleGetFunction", message: "returned no function") }
    self.module = module
    self.name = name
    self.handle = function
    parameterSizes = Kernel.readParameterSizes(driver, function)
  }

  private static func readParameterSizes(_ driver: Driver, _ function: CUfunction) -> [Int]? {
    guard let getInfo = driver.cuFuncGetParamInfo else { return nil }
    var sizes: [Int] = []
    // Only with the count known: finding the end by probing past it makes a call fail on purpose,
    // which compute-sanitizer reports as an error (driver 580 has no cuFuncGetParamCount). Without
    // it, `launch` checks the parameters its arguments cover (`parameterSize(at:)`).
    var count = 0
    guard let getCount = driver.cuFuncGetParamCount, getCount(function, &count) == CUDA_SUCCESS else { return nil }
    for index in 0..<count {
      var offset = 0, size = 0
      guard getInfo(function, index, &offset, &size) == CUDA_SUCCESS else { return nil }
      sizes.append(size)
    }
    return sizes
  }

  /// The byte size of parameter `index` (cuFuncGetParamInfo), nil when the driver cannot say or
  /// the kernel has no such parameter.
  func parameterSize(at index: Int) -> Int? {
    guard let getInfo = driver.cuFuncGetParamInfo else { return nil }
    var offset = 0, size = 0
    return getInfo(handle, index, &offset, &size) == CUDA_SUCCESS ? size : nil
  }

  func attribute(_ attribute: CUfunction_attribute, _ what: String) throws -> Int {
    var value: Int32 = 0
    try driver.check(driver.cuFuncGetAttribute(&value, attribute, handle), "cuFuncGetAttribute(\(name), \(what))")
    return Int(value)
  }

  /// Registers, shared/local/constant sizes and limits of the loaded kernel.
  public func attributes() throws -> KernelAttributes {
    try context.makeCurrent()
    return KernelAttributes(
      registers: try attribute(CU_FUNC_ATTRIBUTE_NUM_REGS, "NUM_REGS"),
      maxThreadsPerBlock: try attribute(CU_FUNC_ATTRIBUTE_MAX_THREADS_PER_BLOCK, "MAX_THREADS_PER_BLOCK"),
      staticSharedBytes: try attribute(CU_FUNC_ATTRIBUTE_SHARED_SIZE_BYTES, "SHARED_SIZE_BYTES"),
      constantBytes: try attribute(CU_FUNC_ATTRIBUTE_CONST_SIZE_BYTES, "CONST_SIZE_BYTES"),
      localBytes: try attribute(CU_FUNC_ATTRIBUTE_LOCAL_SIZE_BYTES, "LOCAL_SIZE_BYTES"),
      maxDynamicSharedBytes: try attribute(CU_FUNC_ATTRIBUTE_MAX_DYNAMIC_SHARED_SIZE_BYTES, "MAX_DYNAMIC_SHARED_SIZE_BYTES"),
      ptxVersion: try attribute(CU_FUNC_ATTRIBUTE_PTX_VERSION, "PTX_VERSION"),
      binaryVersion: try attribute(CU_FUNC_ATTRIBUTE_BINARY_VERSION, "BINARY_VERSION"))
  }

  /// Allows launches with up to `bytes` of dynamic shared memory (needed above 48 KiB; at most
  /// the device's `maxSharedMemoryPerBlockOptin` minus the kernel's static shared memory).
  public func setMaxDynamicSharedMemory(bytes: Int) throws {
    try context.makeCurrent()
    try driver.check(
      driver.cuFuncSetAttribute(handle, CU_FUNC_ATTRIBUTE_MAX_DYNAMIC_SHARED_SIZE_BYTES, Int32(clamping: bytes)),
      "cuFuncSetAttribute(\(name), MAX_DYNAMIC_SHARED_SIZE_BYTES = \(bytes))")
  }

  /// How many blocks of `blockSize` threads using `dynamicSharedBytes` fit on one SM at once
  /// (cuOccupancyMaxActiveBlocksPerMultiprocessor). × SM count = the largest cooperative grid.
  public func maxActiveBlocksPerMultiprocessor(blockSize: Int, dynamicSharedBytes: Int = 0) throws -> Int {
    try context.makeCurrent()
    var blocks: Int32 = 0
    try driver.check(
      driver.cuOccupancyMaxActiveBlocksPerMultiprocessor(&blocks, handle, Int32(clamping: blockSize), dynamicSharedBytes),
      "cuOccupancyMaxActiveBlocksPerMultiprocessor(\(name), block \(blockSize), smem \(dynamicSharedBytes))")
    return Int(blocks)
  }
}

internal import CCUDA

/// The CUDA driver library (libcuda), opened with dlopen and initialised with cuInit once per
/// process by `Driver.shared()`. All driver calls go through `check`.
public final class Driver: @unchecked Sendable {
  /// The file libcuda was loaded from (or its soname when dladdr cannot tell).
  public let libraryPath: String
  /// cuDriverGetVersion: 1000 × major + 10 × minor (13000 for CUDA 13.0).
  public let version: Int

  let library: DynamicLibrary
  let cuGetErrorName: PFN_cuGetErrorName
  let cuGetErrorString: PFN_cuGetErrorString
  let cuDriverGetVersion: PFN_cuDriverGetVersion
  let cuDeviceGetCount: PFN_cuDeviceGetCount
  let cuDeviceGet: PFN_cuDeviceGet
  let cuDeviceGetName: PFN_cuDeviceGetName
  let cuDeviceGetAttribute: PFN_cuDeviceGetAttribute
  let cuDeviceTotalMem: PFN_cuDeviceTotalMem
  let cuDeviceCanAccessPeer: PFN_cuDeviceCanAccessPeer
  let cuDevicePrimaryCtxRetain: PFN_cuDevicePrimaryCtxRetain
  let cuDevicePrimaryCtxRelease: PFN_cuDevicePrimaryCtxRelease
  let cuCtxSetCurrent: PFN_cuCtxSetCurrent
  let cuCtxSynchronize: PFN_cuCtxSynchronize
  let cuCtxEnablePeerAccess: PFN_cuCtxEnablePeerAccess
  let cuMemGetInfo: PFN_cuMemGetInfo
  let cuStreamCreate: PFN_cuStreamCreate
  let cuStreamDestroy: PFN_cuStreamDestroy
  let cuStreamSynchronize: PFN_cuStreamSynchronize
  let cuStreamQuery: PFN_cuStreamQuery
  let cuEventCreate: PFN_cuEventCreate
  let cuEventDestroy: PFN_cuEventDestroy
  let cuEventRecord: PFN_cuEventRecord
  let cuEventSynchronize: PFN_cuEventSynchronize
  let cuEventQuery: PFN_cuEventQuery
  let cuEventElapsedTime: PFN_cuEventElapsedTime
  let cuMemAlloc: PFN_cuMemAlloc
  let cuMemFree: PFN_cuMemFree
  let cuMemcpyHtoD: PFN_cuMemcpyHtoD
  let cuMemcpyDtoH: PFN_cuMemcpyDtoH
  let cuMemcpyDtoD: PFN_cuMemcpyDtoD
  let cuMemcpyHtoDAsync: PFN_cuMemcpyHtoDAsync
  let cuMemcpyDtoHAsync: PFN_cuMemcpyDtoHAsync
  let cuMemcpyDtoDAsync: PFN_cuMemcpyDtoDAsync
  let cuMemsetD8: PFN_cuMemsetD8
  let cuMemsetD32: PFN_cuMemsetD32
  let cuMemsetD8Async: PFN_cuMemsetD8Async
  let cuMemsetD32Async: PFN_cuMemsetD32Async
  let cuModuleLoadData: PFN_cuModuleLoadData
  let cuModuleUnload: PFN_cuModuleUnload
  let cuModuleGetFunction: PFN_cuModuleGetFunction
  let cuModuleGetGlobal: PFN_cuModuleGetGlobal
  let cuFuncGetAttribute: PFN_cuFuncGetAttribute
  let cuFuncSetAttribute: PFN_cuFuncSetAttribute
  let cuFuncGetParamInfo: PFN_cuFuncGetParamInfo?
  let cuFuncGetParamCount: PFN_cuFuncGetParamCount?
  let cuLaunchKernel: PFN_cuLaunchKernel
  let cuLaunchCooperativeKernel: PFN_cuLaunchCooperativeKernel
  let cuOccupancyMaxActiveBlocksPerMultiprocessor: PFN_cuOccupancyMaxActiveBlocksPerMultiprocessor
  let cuTensorMapEncodeTiled: PFN_cuTensorMapEncodeTiled?

  private static let sharedResult = loadOnce("CUDA driver") { try Driver.load(environment: CUDAEnvironment.current()) }

  /// The process-wide driver: loaded and initialised on first use (thread-safe), then reused.
  /// A failure is remembered too: every call throws the same error.
  public static func shared() throws -> Driver { try sharedResult.get() }

  /// Opens libcuda and calls cuInit, without caching: `FLASHMOE_LIBCUDA` (a path) when set, else
  /// `libcuda.so.1` on the loader path. Prefer `shared()`; this exists for diagnostics and tests.
  public static func load(environment: [String: String]) throws -> Driver {
    let library: DynamicLibrary
    if let override = environment.nonEmpty("FLASHMOE_LIBCUDA") {
      switch DynamicLibrary.open(override) {
      case .success(let opened): library = opened
      case .failure(let error):
        throw CUDAError.unavailable(
          what: "CUDA driver library (FLASHMOE_LIBCUDA)", searched: ["\(override) (\(error.message))"])
      }
    } else {
      switch DynamicLibrary.open(CUDAPaths.libcudaSoname) {
      case .success(let opened): library = opened
      case .failure(let error):
        throw CUDAError.unavailable(
          what: "CUDA driver library (set FLASHMOE_LIBCUDA to its path)",
          searched: ["\(CUDAPaths.libcudaSoname) on the loader path: LD_LIBRARY_PATH, ld.so.cache, /lib, /usr/lib (\(error.message))"])
      }
    }
    let driver = try Driver(library: library)
    try driver.check(try library.function("cuInit", as: PFN_cuInit.self)(0), "cuInit")
    return driver
  }

  private init(library: DynamicLibrary) throws {
    let lib = library
    self.library = library
    libraryPath = lib.fileContaining(symbol: "cuInit") ?? lib.path
    cuGetErrorName = try lib.function("cuGetErrorName", as: PFN_cuGetErrorName.self)
    cuGetErrorString = try lib.function("cuGetErrorString", as: PFN_cuGetErrorString.self)
    cuDriverGetVersion = try lib.function("cuDriverGetVersion", as: PFN_cuDriverGetVersion.self)
    cuDeviceGetCount = try lib.function("cuDeviceGetCount", as: PFN_cuDeviceGetCount.self)
    cuDeviceGet = try lib.function("cuDeviceGet", as: PFN_cuDeviceGet.self)
    cuDeviceGetName = try lib.function("cuDeviceGetName", as: PFN_cuDeviceGetName.self)
    cuDeviceGetAttribute = try lib.function("cuDeviceGetAttribute", as: PFN_cuDeviceGetAttribute.self)
    cuDeviceTotalMem = try lib.function("cuDeviceTotalMem_v2", as: PFN_cuDeviceTotalMem.self)
    cuDeviceCanAccessPeer = try lib.function("cuDeviceCanAccessPeer", as: PFN_cuDeviceCanAccessPeer.self)
    cuDevicePrimaryCtxRetain = try lib.function("cuDevicePrimaryCtxRetain", as: PFN_cuDevicePrimaryCtxRetain.self)
    cuDevicePrimaryCtxRelease = try lib.function(
      "cuDevicePrimaryCtxRelease_v2", "cuDevicePrimaryCtxRelease", as: PFN_cuDevicePrimaryCtxRelease.self)
    cuCtxSetCurrent = try lib.function("cuCtxSetCurrent", as: PFN_cuCtxSetCurrent.self)
    cuCtxSynchronize = try lib.function("cuCtxSynchronize", as: PFN_cuCtxSynchronize.self)
    cuCtxEnablePeerAccess = try lib.function("cuCtxEnablePeerAccess", as: PFN_cuCtxEnablePeerAccess.self)
    cuMemGetInfo = try lib.function("cuMemGetInfo_v2", as: PFN_cuMemGetInfo.self)
    cuStreamCreate = try lib.function("cuStreamCreate", as: PFN_cuStreamCreate.self)
    cuStreamDestroy = try lib.function("cuStreamDestroy_v2", "cuStreamDestroy", as: PFN_cuStreamDestroy.self)
    cuStreamSynchronize = try lib.function("cuStreamSynchronize", as: PFN_cuStreamSynchronize.self)
    cuStreamQuery = try lib.function("cuStreamQuery", as: PFN_cuStreamQuery.self)
    cuEventCreate = try lib.function("cuEventCreate", as: PFN_cuEventCreate.self)
    cuEventDestroy = try lib.function("cuEventDestroy_v2", "cuEventDestroy", as: PFN_cuEventDestroy.self)
    cuEventRecord = try lib.function("cuEventRecord", as: PFN_cuEventRecord.self)
    cuEventSynchronize = try lib.function("cuEventSynchronize", as: PFN_cuEventSynchronize.self)
    cuEventQuery = try lib.function("cuEventQuery", as: PFN_cuEventQuery.self)
    cuEventElapsedTime = try lib.function(
      "cuEventElapsedTime_v2", "cuEventElapsedTime", as: PFN_cuEventElapsedTime.self)
    cuMemAlloc = try lib.function("cuMemAlloc_v2", as: PFN_cuMemAlloc.self)
    cuMemFree = try lib.function("cuMemFree_v2", as: PFN_cuMemFree.self)
    cuMemcpyHtoD = try lib.function("cuMemcpyHtoD_v2", as: PFN_cuMemcpyHtoD.self)
    cuMemcpyDtoH = try lib.function("cuMemcpyDtoH_v2", as: PFN_cuMemcpyDtoH.self)
    cuMemcpyDtoD = try lib.function("cuMemcpyDtoD_v2", as: PFN_cuMemcpyDtoD.self)
    cuMemcpyHtoDAsync = try lib.function("cuMemcpyHtoDAsync_v2", as: PFN_cuMemcpyHtoDAsync.self)
    cuMemcpyDtoHAsync = try lib.function("cuMemcpyDtoHAsync_v2", as: PFN_cuMemcpyDtoHAsync.self)
    cuMemcpyDtoDAsync = try lib.function("cuMemcpyDtoDAsync_v2", as: PFN_cuMemcpyDtoDAsync.self)
    cuMemsetD8 = try lib.function("cuMemsetD8_v2", as: PFN_cuMemsetD8.self)
    cuMemsetD32 = try lib.function("cuMemsetD32_v2", as: PFN_cuMemsetD32.self)
    cuMemsetD8Async = try lib.function("cuMemsetD8Async", as: PFN_cuMemsetD8Async.self)
    cuMemsetD32Async = try lib.function("cuMemsetD32Async", as: PFN_cuMemsetD32Async.self)
    cuModuleLoadData = try lib.function("cuModuleLoadData", as: PFN_cuModuleLoadData.self)
    cuModuleUnload = try lib.function("cuModuleUnload", as: PFN_cuModuleUnload.self)
    cuModuleGetFunction = try lib.function("cuModuleGetFunction", as: PFN_cuModuleGetFunction.self)
    cuModuleGetGlobal = try lib.function("cuModuleGetGlobal_v2", as: PFN_cuModuleGetGlobal.self)
    cuFuncGetAttribute = try lib.function("cuFuncGetAttribute", as: PFN_cuFuncGetAttribute.self)
    cuFuncSetAttribute = try lib.function("cuFuncSetAttribute", as: PFN_cuFuncSetAttribute.self)
    cuFuncGetParamInfo = lib.optionalFunction("cuFuncGetParamInfo", as: PFN_cuFuncGetParamInfo.self)
    cuFuncGetParamCount = lib.optionalFunction("cuFuncGetParamCount", as: PFN_cuFuncGetParamCount.self)
    cuLaunchKernel = try lib.function("cuLaunchKernel", as: PFN_cuLaunchKernel.self)
    cuLaunchCooperativeKernel = try lib.function("cuLaunchCooperativeKernel", as: PFN_cuLaunchCooperativeKernel.self)
    cuOccupancyMaxActiveBlocksPerMultiprocessor = try lib.function(
      "cuOccupancyMaxActiveBlocksPerMultiprocessor", as: PFN_cuOccupancyMaxActiveBlocksPerMultiprocessor.self)
    cuTensorMapEncodeTiled = lib.optionalFunction("cuTensorMapEncodeTiled", as: PFN_cuTensorMapEncodeTiled.self)
    var v: Int32 = 0
    version = cuDriverGetVersion(&v) == CUDA_SUCCESS ? Int(v) : 0
  }

  /// The funnel every driver call goes through: `try driver.check(cuX(...), "cuX")`.
  func check(_ result: CUresult, _ call: @autoclosure () -> String) throws {
    guard result != CUDA_SUCCESS else { return }
    throw CUDAError.driver(code: result, name: errorName(result), message: errorMessage(result), call: call())
  }

  func errorName(_ result: CUresult) -> String {
    var text: UnsafePointer<CChar>? = nil
    guard cuGetErrorName(result, &text) == CUDA_SUCCESS, let text else { return "CUDA_ERROR_\(result)" }
    return String(cString: text)
  }

  func errorMessage(_ result: CUresult) -> String {
    var text: UnsafePointer<CChar>? = nil
    guard cuGetErrorString(result, &text) == CUDA_SUCCESS, let text else { return "unknown CUDA error \(result)" }
    return String(cString: text)
  }

  /// "13.0" for version 13000.
  public var versionString: String { "\(version / 1000).\((version % 1000) / 10)" }

  /// The number of CUDA devices visible to this process.
  public func deviceCount() throws -> Int {
    var count: Int32 = 0
    try check(cuDeviceGetCount(&count), "cuDeviceGetCount")
    return Int(count)
  }

  /// The device with the given ordinal, with its properties read once.
  public func device(_ index: Int) throws -> Device { try Device(driver: self, index: index) }

  /// Every visible device.
  public func devices() throws -> [Device] { try (0..<deviceCount()).map(device) }
}

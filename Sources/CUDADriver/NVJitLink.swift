internal import CCUDA
import Glibc

/// nvJitLink, the run-time device linker, opened with dlopen. It turns NVRTC's LTO-IR plus device
/// libraries (NVSHMEM's libnvshmem_device.a) into one cubin for cuModuleLoadData, with link-time
/// optimisation across them.
///
/// Found (first hit wins): `FLASHMOE_NVJITLINK` (the library's path; the only place looked at when
/// set), else `libnvJitLink.so.13` in `$CUDA_HOME/{lib64,targets/x86_64-linux/lib}`,
/// `/usr/local/cuda/...`, pip's `nvidia/cu13/lib` and `nvidia/nvjitlink/lib` in Python
/// site-packages folders, then on the loader path.
public final class NVJitLink: @unchecked Sendable {
  public let libraryPath: String
  /// nvJitLinkVersion (13.0 for CUDA 13.0).
  public let version: (major: Int, minor: Int)

  let library: DynamicLibrary
  let nvJitLinkCreate: PFN_nvJitLinkCreate
  let nvJitLinkDestroy: PFN_nvJitLinkDestroy
  let nvJitLinkAddData: PFN_nvJitLinkAddData
  let nvJitLinkAddFile: PFN_nvJitLinkAddFile
  let nvJitLinkComplete: PFN_nvJitLinkComplete
  let nvJitLinkGetLinkedCubinSize: PFN_nvJitLinkGetLinkedCubinSize
  let nvJitLinkGetLinkedCubin: PFN_nvJitLinkGetLinkedCubin
  let nvJitLinkGetErrorLogSize: PFN_nvJitLinkGetErrorLogSize
  let nvJitLinkGetErrorLog: PFN_nvJitLinkGetErrorLog
  let nvJitLinkGetInfoLogSize: PFN_nvJitLinkGetInfoLogSize
  let nvJitLinkGetInfoLog: PFN_nvJitLinkGetInfoLog

  private static let sharedResult = loadOnce("nvJitLink") { try NVJitLink.load(environment: CUDAPaths.nvshmemEnvironment()) }

  /// The process-wide nvJitLink, found and loaded on first use (thread-safe), then reused.
  public static func shared() throws -> NVJitLink { try sharedResult.get() }

  /// Finds and loads nvJitLink afresh from `environment`, without caching.
  /// - Throws: `CUDAError.unavailable` listing every place looked at.
  public static func load(environment: [String: String]) throws -> NVJitLink {
    if let override = environment.nonEmpty("FLASHMOE_NVJITLINK") {
      guard FileSystem.exists(override) else {
        throw CUDAError.unavailable(what: "nvJitLink (FLASHMOE_NVJITLINK)", searched: ["\(override) (no such file)"])
      }
      switch DynamicLibrary.open(override) {
      case .success(let library): return try NVJitLink(library: library)
      case .failure(let error):
        throw CUDAError.unavailable(what: "nvJitLink (FLASHMOE_NVJITLINK)", searched: ["\(override) (\(error.message))"])
      }
    }
    return try load(
      patterns: CUDAPaths.nvJitLinkFilePatterns(environment: environment), loaderName: CUDAPaths.nvJitLinkSoname)
  }

  /// Tries each path or glob pattern in order, then `loaderName` on the loader path.
  static func load(patterns: [String], loaderName: String) throws -> NVJitLink {
    var searched: [String] = []
    if let library = DynamicLibrary.openFirst(patterns, searched: &searched, open: { DynamicLibrary.open($0) }) {
      return try NVJitLink(library: library)
    }
    switch DynamicLibrary.open(loaderName) {
    case .success(let library): return try NVJitLink(library: library)
    case .failure(let error): searched.append("\(loaderName) on the loader path (\(error.message))")
    }
    throw CUDAError.unavailable(
      what: "nvJitLink (\(CUDAPaths.nvJitLinkSoname); pip install nvidia-nvjitlink, or set FLASHMOE_NVJITLINK to its path)",
      searched: searched)
  }

  private init(library: DynamicLibrary) throws {
    let lib = library
    self.library = library
    libraryPath = lib.fileContaining(symbol: "nvJitLinkVersion") ?? lib.path
    // The versioned names are what nvJitLink.h's inline wrappers call; the plain ones are fallbacks.
    nvJitLinkCreate = try lib.function("__nvJitLinkCreate_13_0", "nvJitLinkCreate", as: PFN_nvJitLinkCreate.self)
    nvJitLinkDestroy = try lib.function("__nvJitLinkDestroy_13_0", "nvJitLinkDestroy", as: PFN_nvJitLinkDestroy.self)
    nvJitLinkAddData = try lib.function("__nvJitLinkAddData_13_0", "nvJitLinkAddData", as: PFN_nvJitLinkAddData.self)
    nvJitLinkAddFile = try lib.function("__nvJitLinkAddFile_13_0", "nvJitLinkAddFile", as: PFN_nvJitLinkAddFile.self)
    nvJitLinkComplete = try lib.function("__nvJitLinkComplete_13_0", "nvJitLinkComplete", as: PFN_nvJitLinkComplete.self)
    nvJitLinkGetLinkedCubinSize = try lib.function(
      "__nvJitLinkGetLinkedCubinSize_13_0", "nvJitLinkGetLinkedCubinSize", as: PFN_nvJitLinkGetLinkedCubinSize.self)
    nvJitLinkGetLinkedCubin = try lib.function(
      "__nvJitLinkGetLinkedCubin_13_0", "nvJitLinkGetLinkedCubin", as: PFN_nvJitLinkGetLinkedCubin.self)
    nvJitLinkGetErrorLogSize = try lib.function(
      "__nvJitLinkGetErrorLogSize_13_0", "nvJitLinkGetErrorLogSize", as: PFN_nvJitLinkGetErrorLogSize.self)
    nvJitLinkGetErrorLog = try lib.function(
      "__nvJitLinkGetErrorLog_13_0", "nvJitLinkGetErrorLog", as: PFN_nvJitLinkGetErrorLog.self)
    nvJitLinkGetInfoLogSize = try lib.function(
      "__nvJitLinkGetInfoLogSize_13_0", "nvJitLinkGetInfoLogSize", as: PFN_nvJitLinkGetInfoLogSize.self)
    nvJitLinkGetInfoLog = try lib.function(
      "__nvJitLinkGetInfoLog_13_0", "nvJitLinkGetInfoLog", as: PFN_nvJitLinkGetInfoLog.self)
    let versionFunction = try lib.function("nvJitLinkVersion", as: PFN_nvJitLinkVersion.self)
    var major: UInt32 = 0, minor: UInt32 = 0
    version = versionFunction(&major, &minor) == NVJITLINK_SUCCESS ? (Int(major), Int(minor)) : (0, 0)
  }

  /// "13.0".
  public var versionString: String { "\(version.major).\(version.minor)" }

  /// The funnel every nvJitLink call goes through: `try linker.check(nvJitLinkX(...), "nvJitLinkX", log: ...)`.
  func check(_ result: nvJitLinkResult, _ call: @autoclosure () -> String, log: @autoclosure () -> String = "") throws {
    guard result != NVJITLINK_SUCCESS else { return }
    throw CUDAError.nvJitLink(code: result, message: Self.resultName(result), call: call(), log: log())
  }

  /// The enumerator's name for a result (nvJitLink has no error-string function).
  static func resultName(_ result: nvJitLinkResult) -> String {
    let names = [
      "NVJITLINK_SUCCESS", "NVJITLINK_ERROR_UNRECOGNIZED_OPTION", "NVJITLINK_ERROR_MISSING_ARCH",
      "NVJITLINK_ERROR_INVALID_INPUT", "NVJITLINK_ERROR_PTX_COMPILE", "NVJITLINK_ERROR_NVVM_COMPILE",
      "NVJITLINK_ERROR_INTERNAL", "NVJITLINK_ERROR_THREADPOOL", "NVJITLINK_ERROR_UNRECOGNIZED_INPUT",
      "NVJITLINK_ERROR_FINALIZE", "NVJITLINK_ERROR_NULL_INPUT", "NVJITLINK_ERROR_INCOMPATIBLE_OPTIONS",
      "NVJITLINK_ERROR_INCORRECT_INPUT_TYPE", "NVJITLINK_ERROR_ARCH_MISMATCH", "NVJITLINK_ERROR_OUTDATED_LIBRARY",
      "NVJITLINK_ERROR_MISSING_FATBIN", "NVJITLINK_ERROR_UNRECOGNIZED_ARCH", "NVJITLINK_ERROR_UNSUPPORTED_ARCH",
      "NVJITLINK_ERROR_LTO_NOT_ENABLED",
    ]
    return names.indices.contains(Int(result)) ? names[Int(result)] : "nvJitLink error \(result)"
  }

  /// The input type nvJitLink is told for a library file, from its name. nvJitLink 13.0 reads
  /// LTO-IR, cubins, PTX, fatbins and host objects / archives with embedded device code; it does
  /// NOT read raw LLVM bitcode such as libnvshmem_device.bc (that file is for libNVVM users).
  static func inputType(ofFile path: String) -> nvJitLinkInputType {
    let name = FileSystem.fileName(of: path)
    if name.hasSuffix(".a") { return NVJITLINK_INPUT_LIBRARY }
    if name.hasSuffix(".o") { return NVJITLINK_INPUT_OBJECT }
    if name.hasSuffix(".ltoir") { return NVJITLINK_INPUT_LTOIR }
    if name.hasSuffix(".cubin") { return NVJITLINK_INPUT_CUBIN }
    if name.hasSuffix(".fatbin") { return NVJITLINK_INPUT_FATBIN }
    if name.hasSuffix(".ptx") { return NVJITLINK_INPUT_PTX }
    return NVJITLINK_INPUT_ANY
  }

  /// Links `ltoIR` (from `NVRTC.compileToLTOIR`) with `libraries` into one cubin, with link-time
  /// optimisation (`-lto`). `-Xptxas=-v` is always passed so that `infoLog` carries ptxas's
  /// resource report, in the format `PTXASReport(parsing:)` reads.
  /// - Parameters:
  ///   - libraries: files to link (e.g. NVSHMEM's `lib/libnvshmem_device.a`), typed by extension.
  ///   - architecture: a real architecture, `sm_90a` for H100/H200.
  ///   - options: more nvJitLink options (`-maxrregcount=N`, `-lineinfo`, ...).
  /// - Throws: `CUDAError.nvJitLink` with nvJitLink's error log (e.g. an unresolved symbol),
  ///   `CUDAError.invalidArgument` for empty LTO-IR or a library file that does not exist.
  public func link(
    ltoIR: [UInt8], libraries: [String], architecture: String = "sm_90a", options: [String] = []
  ) throws -> (cubin: [UInt8], infoLog: String) {
    guard !ltoIR.isEmpty else {
      throw CUDAError.invalidArgument(call: "nvJitLinkAddData", message: "empty LTO-IR (expected NVRTC -dlto output)")
    }
    for path in libraries where !FileSystem.exists(path) {
      throw CUDAError.invalidArgument(call: "nvJitLinkAddFile(\(path))", message: "no such file")
    }
    let allOptions = ["-arch=\(architecture)", "-lto", "-Xptxas=-v"] + options
    let cOptions = allOptions.map { strdup($0) }
    defer { cOptions.forEach { free($0) } }
    let optionPointers = cOptions.map { UnsafePointer<CChar>($0) }

    var handle: nvJitLinkHandle? = nil
    let created = optionPointers.withUnsafeBufferPointer {
      nvJitLinkCreate(&handle, UInt32(allOptions.count), $0.baseAddress)
    }
    try check(created, "nvJitLinkCreate(\(allOptions.joined(separator: " ")))")
    defer { _ = nvJitLinkDestroy(&handle) }

    let added = ltoIR.withUnsafeBytes { nvJitLinkAddData(handle, NVJITLINK_INPUT_LTOIR, $0.baseAddress, $0.count, "program.ltoir") }
    try check(added, "nvJitLinkAddData(LTO-IR, \(ltoIR.count) bytes)", log: errorLog(handle))
    for path in libraries {
      let result = nvJitLinkAddFile(handle, Self.inputType(ofFile: path), path)
      var log = errorLog(handle)
      if result != NVJITLINK_SUCCESS, path.hasSuffix(".bc") {
        log += "\nnote: nvJitLink does not read raw LLVM bitcode; link NVSHMEM's lib/libnvshmem_device.a instead"
      }
      try check(result, "nvJitLinkAddFile(\(path))", log: log)
    }
    try check(nvJitLinkComplete(handle), "nvJitLinkComplete(\(architecture))", log: errorLog(handle))

    var size = 0
    try check(nvJitLinkGetLinkedCubinSize(handle, &size), "nvJitLinkGetLinkedCubinSize", log: errorLog(handle))
    var cubin = [UInt8](repeating: 0, count: size)
    try cubin.withUnsafeMutableBytes { raw in
      try check(nvJitLinkGetLinkedCubin(handle, raw.baseAddress), "nvJitLinkGetLinkedCubin", log: errorLog(handle))
    }
    return (cubin, infoLog(handle))
  }

  private func errorLog(_ handle: nvJitLinkHandle?) -> String {
    readLog(handle, size: nvJitLinkGetErrorLogSize, read: nvJitLinkGetErrorLog)
  }

  private func infoLog(_ handle: nvJitLinkHandle?) -> String {
    readLog(handle, size: nvJitLinkGetInfoLogSize, read: nvJitLinkGetInfoLog)
  }

  private func readLog(
    _ handle: nvJitLinkHandle?, size: PFN_nvJitLinkGetErrorLogSize, read: PFN_nvJitLinkGetErrorLog
  ) -> String {
    var count = 0
    guard size(handle, &count) == NVJITLINK_SUCCESS, count > 1 else { return "" }
    var bytes = [CChar](repeating: 0, count: count + 1)
    guard read(handle, &bytes) == NVJITLINK_SUCCESS else { return "" }
    return String(decoding: bytes.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
  }
}

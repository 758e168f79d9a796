internal import CCUDA
import Glibc

/// NVRTC, the run-time CUDA C++ compiler, opened with dlopen. Found (first hit wins):
/// `FLASHMOE_NVRTC` (the library's path; the only place looked at when set), else
/// `$CUDA_HOME/{lib64,targets/x86_64-linux/lib}`, `/usr/local/cuda/{lib64,targets/x86_64-linux/lib}`,
/// `/usr/local/cuda-13.0/targets/x86_64-linux/lib`, pip's `nvidia/cu13/lib` and `nvidia/cuda_nvrtc/lib`
/// in Python site-packages folders, then `libnvrtc.so.13` on the loader path. The builtins library
/// next to it is preloaded (RTLD_GLOBAL) so that no LD_LIBRARY_PATH is needed. The CUDA headers
/// folder (see `CUDAPaths.includeDirectory`) is added to every compilation's include path.
public final class NVRTC: @unchecked Sendable {
  public let libraryPath: String
  /// The libnvrtc-builtins preloaded from beside the library (nil: left to the loader).
  public let builtinsPath: String?
  /// The CUDA headers folder passed as `--include-path`, or nil when none was found.
  public let includeDirectory: String?
  /// Why `includeDirectory` is nil (the places searched), appended to failing compile logs.
  public let includeError: CUDAError?
  public let version: (major: Int, minor: Int)

  let library: DynamicLibrary
  let nvrtcGetErrorString: PFN_nvrtcGetErrorString
  let nvrtcVersion: PFN_nvrtcVersion
  let nvrtcGetNumSupportedArchs: PFN_nvrtcGetNumSupportedArchs
  let nvrtcGetSupportedArchs: PFN_nvrtcGetSupportedArchs
  let nvrtcCreateProgram: PFN_nvrtcCreateProgram
  let nvrtcDestroyProgram: PFN_nvrtcDestroyProgram
  let nvrtcCompileProgram: PFN_nvrtcCompileProgram
  let nvrtcGetProgramLogSize: PFN_nvrtcGetProgramLogSize
  let nvrtcGetProgramLog: PFN_nvrtcGetProgramLog
  let nvrtcGetPTXSize: PFN_nvrtcGetPTXSize
  let nvrtcGetPTX: PFN_nvrtcGetPTX
  let nvrtcGetCUBINSize: PFN_nvrtcGetCUBINSize
  let nvrtcGetCUBIN: PFN_nvrtcGetCUBIN
  let nvrtcAddNameExpression: PFN_nvrtcAddNameExpression
  let nvrtcGetLoweredName: PFN_nvrtcGetLoweredName

  private static let sharedResult = loadOnce("NVRTC") { try NVRTC.load(environment: CUDAEnvironment.current()) }

  /// The process-wide NVRTC, found and loaded on first use (thread-safe), then reused.
  public static func shared() throws -> NVRTC { try sharedResult.get() }

  /// Finds and loads NVRTC (and the headers folder) afresh from `environment`, without caching.
  /// - Throws: `CUDAError.unavailable` listing every place looked at.
  public static func load(environment: [String: String]) throws -> NVRTC {
    let include: Result<String, CUDAError>
    do { include = .success(try CUDAPaths.includeDirectory(environment: environment)) }
    catch let error as CUDAError { include = .failure(error) }
    catch { include = .failure(.unavailable(what: "CUDA headers (\(error))", searched: [])) }

    if let override = environment.nonEmpty("FLASHMOE_NVRTC") {
      guard FileSystem.exists(override) else {
        throw CUDAError.unavailable(what: "NVRTC (FLASHMOE_NVRTC)", searched: ["\(override) (no such file)"])
      }
      switch open(path: override) {
      case .success(let (library, builtins)): return try NVRTC(library: library, builtins: builtins, include: include)
      case .failure(let error):
        throw CUDAError.unavailable(what: "NVRTC (FLASHMOE_NVRTC)", searched: ["\(override) (\(error.message))"])
      }
    }
    return try load(
      patterns: CUDAPaths.nvrtcFilePatterns(environment: environment), loaderName: CUDAPaths.nvrtcSoname,
      include: include)
  }

  /// Tries each path or glob pattern in order, then `loaderName` on the loader path.
  static func load(patterns: [String], loaderName: String, include: Result<String, CUDAError>) throws -> NVRTC {
    var searched: [String] = []
    if let (library, builtins) = DynamicLibrary.openFirst(patterns, searched: &searched, open: open(path:)) {
      return try NVRTC(library: library, builtins: builtins, include: include)
    }
    switch DynamicLibrary.open(loaderName) {
    case .success(let library):
      let file = library.fileContaining(symbol: "nvrtcVersion")
      let builtins = file.flatMap(preloadBuiltins(nextTo:))
      return try NVRTC(library: library, builtins: builtins, include: include)
    case .failure(let error):
      searched.append("\(loaderName) on the loader path (\(error.message))")
    }
    throw CUDAError.unavailable(what: "NVRTC (\(CUDAPaths.nvrtcSoname); set FLASHMOE_NVRTC to its path)", searched: searched)
  }

  /// Preloads the builtins beside `path`, then opens `path`.
  private static func open(path: String) -> Result<(DynamicLibrary, String?), DynamicLibrary.DLError> {
    let builtins = preloadBuiltins(nextTo: path)
    return DynamicLibrary.open(path).map { ($0, builtins) }
  }

  /// NVRTC dlopens `libnvrtc-builtins.so.13.N` by soname; opening it first by full path with
  /// RTLD_GLOBAL makes that lookup succeed without LD_LIBRARY_PATH.
  static func preloadBuiltins(nextTo path: String) -> String? {
    var folders = [FileSystem.directory(of: path)]
    if let real = FileSystem.realPath(path) { folders.append(FileSystem.directory(of: real)) }
    for folder in CUDAPaths.unique(folders) {
      let candidates = FileSystem.glob("\(folder)/libnvrtc-builtins.so.13.*").sorted { $0.count < $1.count }
      for candidate in candidates {
        if case .success = DynamicLibrary.open(candidate, global: true) { return candidate }
      }
    }
    return nil
  }

  private init(library: DynamicLibrary, builtins: String?, include: Result<String, CUDAError>) throws {
    let lib = library
    self.library = library
    libraryPath = lib.fileContaining(symbol: "nvrtcVersion") ?? lib.path
    builtinsPath = builtins
    switch include {
    case .success(let folder): includeDirectory = folder; includeError = nil
    case .failure(let error): includeDirectory = nil; includeError = error
    }
    nvrtcGetErrorString = try lib.function("nvrtcGetErrorString", as: PFN_nvrtcGetErrorString.self)
    nvrtcVersion = try lib.function("nvrtcVersion", as: PFN_nvrtcVersion.self)
    nvrtcGetNumSupportedArchs = try lib.function("nvrtcGetNumSupportedArchs", as: PFN_nvrtcGetNumSupportedArchs.self)
    nvrtcGetSupportedArchs = try lib.function("nvrtcGetSupportedArchs", as: PFN_nvrtcGetSupportedArchs.self)
    nvrtcCreateProgram = try lib.function("nvrtcCreateProgram", as: PFN_nvrtcCreateProgram.self)
    nvrtcDestroyProgram = try lib.function("nvrtcDestroyProgram", as: PFN_nvrtcDestroyProgram.self)
    nvrtcCompileProgram = try lib.function("nvrtcCompileProgram", as: PFN_nvrtcCompileProgram.self)
    nvrtcGetProgramLogSize = try lib.function("nvrtcGetProgramLogSize", as: PFN_nvrtcGetProgramLogSize.self)
    nvrtcGetProgramLog = try lib.function("nvrtcGetProgramLog", as: PFN_nvrtcGetProgramLog.self)
    nvrtcGetPTXSize = try lib.function("nvrtcGetPTXSize", as: PFN_nvrtcGetPTXSize.self)
    nvrtcGetPTX = try lib.function("nvrtcGetPTX", as: PFN_nvrtcGetPTX.self)
    nvrtcGetCUBINSize = try lib.function("nvrtcGetCUBINSize", as: PFN_nvrtcGetCUBINSize.self)
    nvrtcGetCUBIN = try lib.function("nvrtcGetCUBIN", as: PFN_nvrtcGetCUBIN.self)
    nvrtcAddNameExpression = try lib.function("nvrtcAddNameExpression", as: PFN_nvrtcAddNameExpression.self)
    nvrtcGetLoweredName = try lib.function("nvrtcGetLoweredName", as: PFN_nvrtcGetLoweredName.self)
    var major: Int32 = 0, minor: Int32 = 0
    let result = nvrtcVersion(&major, &minor)
    version = result == NVRTC_SUCCESS ? (Int(major), Int(minor)) : (0, 0)
  }

  /// The funnel every NVRTC call goes through: `try nvrtc.check(nvrtcX(...), "nvrtcX")`.
  func check(_ result: nvrtcResult, _ call: @autoclosure () -> String, log: @autoclosure () -> String = "") throws {
    guard result != NVRTC_SUCCESS else { return }
    throw CUDAError.nvrtc(code: result, message: errorMessage(result), call: call(), log: log())
  }

  func errorMessage(_ result: nvrtcResult) -> String {
    guard let text = nvrtcGetErrorString(result) else { return "NVRTC error \(result)" }
    return String(cString: text)
  }

  /// "13.0".
  public var versionString: String { "\(version.major).\(version.minor)" }

  /// The real architectures this NVRTC can target (e.g. 75, 80, ..., 90, 100, ...).
  public func supportedArchitectures() throws -> [Int] {
    var count: Int32 = 0
    try check(nvrtcGetNumSupportedArchs(&count), "nvrtcGetNumSupportedArchs")
    var archs = [Int32](repeating: 0, count: Int(count))
    try check(nvrtcGetSupportedArchs(&archs), "nvrtcGetSupportedArchs")
    return archs.map(Int.init)
  }

  /// Compiles CUDA C++ `source` to a cubin (with `--gpu-architecture=sm_XX`) or PTX (compute_XX).
  /// - Parameters:
  ///   - name: the program's file name in diagnostics.
  ///   - headers: in-memory headers, `#include`d by name.
  ///   - options: NVRTC options, e.g. `["--gpu-architecture=sm_90a", "--ptxas-options=-v", "-std=c++17"]`.
  ///     The CUDA headers folder is appended as `--include-path` when it was found.
  ///   - nameExpressions: C++ names (e.g. `"moe<128>"`) whose mangled names to return.
  /// - Throws: `CUDAError.nvrtc` with the program log when compilation fails.
  public func compile(
    source: String, name: String = "kernel.cu", headers: [(name: String, contents: String)] = [],
    options: [String] = [], nameExpressions: [String] = []
  ) throws -> CompiledProgram {
    try withCompiledProgram(source: source, name: name, headers: headers, options: options, nameExpressions: nameExpressions) {
      program, log, _ in
      var loweredNames: [String: String] = [:]
      for expression in nameExpressions {
        var lowered: UnsafePointer<CChar>? = nil
        try check(nvrtcGetLoweredName(program, expression, &lowered), "nvrtcGetLoweredName(\(expression))", log: log)
        if let lowered { loweredNames[expression] = String(cString: lowered) }
      }
      return CompiledProgram(name: name, cubin: cubin(program), ptx: ptx(program), log: log, loweredNames: loweredNames)
    }
  }

  /// Creates the program (in-memory headers; the CUDA headers folder appended as `--include-path`
  /// when found), compiles it, and hands `body` the compiled program, its log and the options
  /// used; the program is destroyed afterwards. Throws `CUDAError.nvrtc` with the log on failure.
  func withCompiledProgram<R>(
    source: String, name: String, headers: [(name: String, contents: String)], options: [String],
    nameExpressions: [String] = [], _ body: (nvrtcProgram?, String, [String]) throws -> R
  ) throws -> R {
    var allOptions = options
    if let includeDirectory { allOptions.append("--include-path=\(includeDirectory)") }

    let cHeaderContents = headers.map { strdup($0.contents) }
    let cHeaderNames = headers.map { strdup($0.name) }
    let cOptions = allOptions.map { strdup($0) }
    defer { (cHeaderContents + cHeaderNames + cOptions).forEach { free($0) } }
    let headerContents = cHeaderContents.map { UnsafePointer<CChar>($0) }
    let headerNames = cHeaderNames.map { UnsafePointer<CChar>($0) }
    let optionPointers = cOptions.map { UnsafePointer<CChar>($0) }

    var program: nvrtcProgram? = nil
    try headerContents.withUnsafeBufferPointer { contents in
      try headerNames.withUnsafeBufferPointer { names in
        try check(
          nvrtcCreateProgram(&program, source, name, Int32(headers.count), contents.baseAddress, names.baseAddress),
          "nvrtcCreateProgram(\(name))")
      }
    }
    defer { _ = nvrtcDestroyProgram(&program) }
    for expression in nameExpressions {
      try check(nvrtcAddNameExpression(program, expression), "nvrtcAddNameExpression(\(expression))")
    }

    let compileResult = optionPointers.withUnsafeBufferPointer {
      nvrtcCompileProgram(program, Int32(allOptions.count), $0.baseAddress)
    }
    var log = programLog(program)
    if compileResult != NVRTC_SUCCESS, let includeError {
      log += (log.isEmpty || log.hasSuffix("\n") ? "" : "\n") + "note: no CUDA include path was added: \(includeError)\n"
    }
    try check(compileResult, "nvrtcCompileProgram(\(name))", log: log)
    return try body(program, log, allOptions)
  }

  private func programLog(_ program: nvrtcProgram?) -> String {
    var size = 0
    guard nvrtcGetProgramLogSize(program, &size) == NVRTC_SUCCESS, size > 1 else { return "" }
    var bytes = [CChar](repeating: 0, count: size + 1)
    guard nvrtcGetProgramLog(program, &bytes) == NVRTC_SUCCESS else { return "" }
    return String(decoding: bytes.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
  }

  private func cubin(_ program: nvrtcProgram?) -> [UInt8] {
    var size = 0
    guard nvrtcGetCUBINSize(program, &size) == NVRTC_SUCCESS, size > 0 else { return [] }
    var bytes = [UInt8](repeating: 0, count: size)
    let ok = bytes.withUnsafeMutableBytes { raw in
      nvrtcGetCUBIN(program, raw.baseAddress!.assumingMemoryBound(to: CChar.self)) == NVRTC_SUCCESS
    }
    return ok ? bytes : []
  }

  private func ptx(_ program: nvrtcProgram?) -> String? {
    var size = 0
    guard nvrtcGetPTXSize(program, &size) == NVRTC_SUCCESS, size > 1 else { return nil }
    var bytes = [CChar](repeating: 0, count: size + 1)
    guard nvrtcGetPTX(program, &bytes) == NVRTC_SUCCESS else { return nil }
    return String(decoding: bytes.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
  }
}

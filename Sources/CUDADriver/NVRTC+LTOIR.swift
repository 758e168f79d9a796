internal import CCUDA
import Glibc

/// The result of `NVRTC.compileToLTOIR`: NVVM LTO-IR for nvJitLink, not yet machine code.
public struct LTOIRProgram: Sendable {
  /// The program name given to NVRTC (used in diagnostics).
  public let name: String
  /// The LTO-IR bytes (nvrtcGetLTOIR), to pass to `NVJitLink.link(ltoIR:...)`.
  public let ltoIR: [UInt8]
  /// NVRTC's program log (warnings; no ptxas report: ptxas runs at link time).
  public let log: String
  /// The options NVRTC was given, the include paths it added included.
  public let options: [String]
}

extension NVRTC {
  /// The options `compileToLTOIR` adds when they are missing: LTO-IR output needs `-dlto`, and code
  /// that refers to device symbols of another input (NVSHMEM's state in libnvshmem_device) needs
  /// relocatable device code.
  public static let ltoIROptions = ["-dlto", "--relocatable-device-code=true"]

  /// Compiles CUDA C++ `source` to LTO-IR (`-dlto`) for linking with nvJitLink.
  ///
  /// Kept apart from `compile` (which returns cubin/PTX) so that the NVSHMEM path does not change
  /// the main kernel's compile; it creates the program the same way (in-memory headers, the CUDA
  /// headers folder appended as `--include-path`).
  /// - Parameters:
  ///   - options: e.g. `["--gpu-architecture=sm_90a", "-std=c++17"]`; `ltoIROptions` are added.
  /// - Throws: `CUDAError.nvrtc` with the program log when compilation fails;
  ///   `CUDAError.unavailable` when this NVRTC has no nvrtcGetLTOIR (older than 12.0).
  public func compileToLTOIR(
    source: String, name: String = "kernel.cu", headers: [(name: String, contents: String)] = [],
    options: [String] = []
  ) throws -> LTOIRProgram {
    let getSize = try library.function("nvrtcGetLTOIRSize", as: PFN_nvrtcGetLTOIRSize.self)
    let get = try library.function("nvrtcGetLTOIR", as: PFN_nvrtcGetLTOIR.self)
    var allOptions = options
    for option in Self.ltoIROptions where !allOptions.contains(option) { allOptions.append(option) }
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

    let compileResult = optionPointers.withUnsafeBufferPointer {
      nvrtcCompileProgram(program, Int32(allOptions.count), $0.baseAddress)
    }
    var log = ltoProgramLog(program)
    if compileResult != NVRTC_SUCCESS, let includeError {
      log += (log.isEmpty || log.hasSuffix("\n") ? "" : "\n") + "note: no CUDA include path was added: \(includeError)\n"
    }
    try check(compileResult, "nvrtcCompileProgram(\(name))", log: log)

    var size = 0
    try check(getSize(program, &size), "nvrtcGetLTOIRSize(\(name))", log: log)
    var bytes = [UInt8](repeating: 0, count: size)
    try bytes.withUnsafeMutableBytes { raw in
      try check(get(program, raw.baseAddress?.assumingMemoryBound(to: CChar.self)), "nvrtcGetLTOIR(\(name))", log: log)
    }
    return LTOIRProgram(name: name, ltoIR: bytes, log: log, options: allOptions)
  }

  /// The program log (`programLog` of NVRTC.swift is private to that file).
  private func ltoProgramLog(_ program: nvrtcProgram?) -> String {
    var size = 0
    guard nvrtcGetProgramLogSize(program, &size) == NVRTC_SUCCESS, size > 1 else { return "" }
    var bytes = [CChar](repeating: 0, count: size + 1)
    guard nvrtcGetProgramLog(program, &bytes) == NVRTC_SUCCESS else { return "" }
    return String(decoding: bytes.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
  }
}

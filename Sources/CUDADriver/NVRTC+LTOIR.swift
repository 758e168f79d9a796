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
  /// The program is created and compiled as by `compile` (`withCompiledProgram`); what is read
  /// back is LTO-IR instead of cubin and PTX.
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
    var ltoOptions = options
    for option in Self.ltoIROptions where !ltoOptions.contains(option) { ltoOptions.append(option) }
    return try withCompiledProgram(source: source, name: name, headers: headers, options: ltoOptions) { program, log, allOptions in
      var size = 0
      try check(getSize(program, &size), "nvrtcGetLTOIRSize(\(name))", log: log)
      var bytes = [UInt8](repeating: 0, count: size)
      try bytes.withUnsafeMutableBytes { raw in
        try check(get(program, raw.baseAddress?.assumingMemoryBound(to: CChar.self)), "nvrtcGetLTOIR(\(name))", log: log)
      }
      return LTOIRProgram(name: name, ltoIR: bytes, log: log, options: allOptions)
    }
  }
}

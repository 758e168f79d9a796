import CUDADriver

/// A kernel that calls NVSHMEM's device API, compiled by NVRTC to LTO-IR and linked by nvJitLink
/// with NVSHMEM's device library: a cubin to load with cuModuleLoadData and then hand to
/// `NVSHMEMLibrary.initializeModule` before its first launch.
public struct NVSHMEMKernelBuild: Sendable {
  /// The program name given to NVRTC.
  public let name: String
  /// The real architecture linked for, e.g. "sm_90a".
  public let architecture: String
  /// The linked cubin (an ELF image).
  public let cubin: [UInt8]
  /// NVRTC's program log (warnings).
  public let compileLog: String
  /// nvJitLink's info log: ptxas's verbose report of the linked code.
  public let linkLog: String
  /// ptxas's report parsed from `linkLog` (registers, spills, stack per function).
  public let resources: PTXASReport
  /// The NVRTC options used, include paths included.
  public let compileOptions: [String]
  /// The files linked with the program's LTO-IR.
  public let libraries: [String]
}

import CUDADriver

/// A kernel that calls NVSHMEM's device API, compiled header-only by NVRTC
/// (`KernelCompiler.compileNVSHMEM`): a cubin to load with cuModuleLoadData and then hand to
/// `NVSHMEMLibrary.initializeModule` before its first launch.
public struct NVSHMEMKernelBuild: Sendable {
  /// The program name given to NVRTC.
  public let name: String
  /// The real architecture compiled for, e.g. "sm_90a".
  public let architecture: String
  /// The cubin (an ELF image).
  public let cubin: [UInt8]
  /// NVRTC's program log: warnings and ptxas's verbose report.
  public let compileLog: String
  /// ptxas's report parsed from `compileLog` (registers, spills, stack per function).
  public let resources: PTXASReport
  /// The NVRTC options used, include paths included.
  public let compileOptions: [String]
}

/// Where the NVSHMEM transport looks for nvJitLink, NVSHMEM and the CCCL headers (cuda/std/...), in
/// order. Like `CUDAPaths`' other lists, each is what an `.unavailable` error reports as "searched".
extension CUDAPaths {
  /// The soname of the nvJitLink this package is pinned to (the same CUDA 13.0 as NVRTC: nvJitLink
  /// must be at least as new as the NVRTC whose LTO-IR it links).
  public static let nvJitLinkSoname = "libnvJitLink.so.13"
  /// NVSHMEM's host library (NVSHMEM 3.x) inside an NVSHMEM folder.
  public static let nvshmemHostLibrary = "lib/libnvshmem_host.so.3"

  /// The environment variables of the NVSHMEM path, read on top of `CUDAEnvironment.keys` (that
  /// list belongs to Environment.swift; these are added here so the NVSHMEM files stay separate).
  public static let nvshmemEnvironmentKeys = [
    "FLASHMOE_NVJITLINK", "FLASHMOE_NVSHMEM_HOME", "NVSHMEM_HOME", "FLASHMOE_CCCL_INCLUDE",
  ]

  /// `CUDAEnvironment.current()` plus `nvshmemEnvironmentKeys` from the process environment.
  public static func nvshmemEnvironment() -> [String: String] {
    var environment = CUDAEnvironment.current()
    for key in nvshmemEnvironmentKeys {
      if let value = CUDAEnvironment.value(key) { environment[key] = value }
    }
    return environment
  }

  /// The places nvJitLink is looked for, in order (paths or glob patterns), before the loader path:
  /// the CUDA toolkit folders, then pip's `nvidia/cu13/lib` (nvidia-nvjitlink 13.x) and
  /// `nvidia/nvjitlink/lib` (its 12.x layout).
  static func nvJitLinkFilePatterns(environment: [String: String]) -> [String] {
    var patterns = toolkitLibraryFolders(environment: environment).map { "\($0)/\(nvJitLinkSoname)" }
    for site in sitePackagesPatterns(environment: environment) {
      patterns.append("\(site)/nvidia/cu13/lib/\(nvJitLinkSoname)")
      patterns.append("\(site)/nvidia/nvjitlink/lib/\(nvJitLinkSoname)")
    }
    return unique(patterns)
  }

  /// Candidate NVSHMEM folders (each holding `lib/libnvshmem_host.so.3` and `include/`), in order:
  /// `NVSHMEM_HOME` (NVSHMEM's own convention for an install), then pip's `nvidia/nvshmem`
  /// (nvidia-nvshmem-cu13) in the Python site-packages folders, /opt/*/.venv ones included.
  /// `FLASHMOE_NVSHMEM_HOME`, when set, is the only place looked at (see `nvshmemHome`).
  static func nvshmemHomePatterns(environment: [String: String]) -> [String] {
    var patterns: [String] = []
    if let home = environment.nonEmpty("NVSHMEM_HOME") { patterns.append(home) }
    for site in sitePackagesPatterns(environment: environment) {
      patterns.append("\(site)/nvidia/nvshmem")
    }
    return unique(patterns)
  }

  /// The NVSHMEM folder: the first candidate that holds `lib/libnvshmem_host.so.3`.
  /// - Throws: `CUDAError.unavailable` listing every folder (or pattern) looked at.
  public static func nvshmemHome(environment: [String: String] = nvshmemEnvironment()) throws -> String {
    if let override = environment.nonEmpty("FLASHMOE_NVSHMEM_HOME") {
      if FileSystem.exists("\(override)/\(nvshmemHostLibrary)") { return override }
      throw CUDAError.unavailable(
        what: "NVSHMEM (\(nvshmemHostLibrary)) in FLASHMOE_NVSHMEM_HOME", searched: [override])
    }
    return try firstFolder(
      holding: nvshmemHostLibrary, patterns: nvshmemHomePatterns(environment: environment),
      what: "NVSHMEM (\(nvshmemHostLibrary); pip install nvidia-nvshmem-cu13, or set FLASHMOE_NVSHMEM_HOME to the nvshmem folder)")
  }

  /// The header that marks a folder as the root of the CCCL headers (libcu++ and friends).
  static let ccclMarker = "cuda/std/cstdint"

  /// Candidate CCCL include folders, in order. CUDA 13 keeps CCCL in `include/cccl` (toolkit and
  /// pip's nvidia-cuda-cccl alike); CUDA 12 kept it directly in `include`.
  static func ccclFolderPatterns(environment: [String: String], cudaInclude: String?) -> [String] {
    var patterns: [String] = []
    if let cudaInclude { patterns += ["\(cudaInclude)/cccl", cudaInclude] }
    for folder in includeFolderPatterns(environment: environment) { patterns += ["\(folder)/cccl", folder] }
    for site in sitePackagesPatterns(environment: environment) {
      patterns.append("\(site)/nvidia/cuda_cccl/include")
    }
    return unique(patterns)
  }

  /// The CCCL include folder. NVSHMEM's device headers include `<cuda/std/cstdint>` and friends
  /// under NVRTC, which ships no C++ library of its own. `FLASHMOE_CCCL_INCLUDE`, when set, is the
  /// only place looked at.
  /// - Parameter cudaInclude: the CUDA headers folder NVRTC uses (`NVRTC.includeDirectory`), looked
  ///   at first so that the CCCL of the same toolkit wins.
  /// - Throws: `CUDAError.unavailable` listing every folder (or pattern) looked at.
  public static func ccclIncludeDirectory(
    environment: [String: String] = nvshmemEnvironment(), cudaInclude: String? = nil
  ) throws -> String {
    if let override = environment.nonEmpty("FLASHMOE_CCCL_INCLUDE") {
      if FileSystem.exists("\(override)/\(ccclMarker)") { return override }
      throw CUDAError.unavailable(what: "CCCL headers (\(ccclMarker)) in FLASHMOE_CCCL_INCLUDE", searched: [override])
    }
    return try firstFolder(
      holding: ccclMarker, patterns: ccclFolderPatterns(environment: environment, cudaInclude: cudaInclude),
      what: "CCCL headers (\(ccclMarker); pip install nvidia-cuda-cccl, or set FLASHMOE_CCCL_INCLUDE)")
  }

  /// The first folder (path or glob pattern) holding `marker`, a path relative to it.
  static func firstFolder(holding marker: String, patterns: [String], what: String) throws -> String {
    var searched: [String] = []
    for pattern in patterns {
      searched.append(pattern)
      if FileSystem.hasGlobCharacters(pattern) {
        if let file = FileSystem.glob("\(pattern)/\(marker)").first {
          return String(file.dropLast(marker.count + 1))
        }
      } else if FileSystem.exists("\(pattern)/\(marker)") {
        return pattern
      }
    }
    throw CUDAError.unavailable(what: what, searched: searched)
  }
}

/// Where the CUDA layer looks for NVRTC and the CUDA headers, in order. Every list here is what an
/// `.unavailable` error reports as "searched".
public enum CUDAPaths {
  /// The soname of the NVRTC this package is pinned to (CUDA 13.0 drivers reject newer PTX).
  public static let nvrtcSoname = "libnvrtc.so.13"
  /// The soname of the driver library.
  public static let libcudaSoname = "libcuda.so.1"

  /// Folders that contain NVRTC in a CUDA toolkit (not yet checked for existence).
  static func toolkitLibraryFolders(environment: [String: String]) -> [String] {
    var folders: [String] = []
    if let home = environment.nonEmpty("CUDA_HOME") {
      folders += ["\(home)/lib64", "\(home)/targets/x86_64-linux/lib"]
    }
    folders += [
      "/usr/local/cuda/lib64",
      "/usr/local/cuda/targets/x86_64-linux/lib",
      "/usr/local/cuda-13.0/targets/x86_64-linux/lib",
    ]
    return unique(folders)
  }

  /// glob(3) patterns of Python site-packages folders where pip puts NVIDIA's wheels: the active
  /// virtual environment / conda prefix, the prefixes of the `bin` folders on PATH, then the
  /// usual system, user, pyenv and /opt locations.
  static func sitePackagesPatterns(environment: [String: String]) -> [String] {
    var patterns: [String] = []
    for variable in ["VIRTUAL_ENV", "CONDA_PREFIX"] {
      if let prefix = environment.nonEmpty(variable) {
        patterns.append("\(prefix)/lib/python3*/site-packages")
      }
    }
    if let path = environment.nonEmpty("PATH") {
      for entry in path.split(separator: ":") where entry.hasSuffix("/bin") && entry.count > 4 {
        let prefix = entry.dropLast(4)
        patterns.append("\(prefix)/lib/python3*/site-packages")
      }
    }
    patterns += [
      "/usr/lib/python3*/site-packages",
      "/usr/lib/python3*/dist-packages",
      "/usr/lib/python3/dist-packages",
      "/usr/local/lib/python3*/site-packages",
      "/usr/local/lib/python3*/dist-packages",
    ]
    if let home = environment.nonEmpty("HOME") {
      patterns.append("\(home)/.local/lib/python3*/site-packages")
    }
    if let pyenv = environment.nonEmpty("PYENV_ROOT") {
      patterns.append("\(pyenv)/versions/*/lib/python3*/site-packages")
    }
    if let home = environment.nonEmpty("HOME") {
      patterns.append("\(home)/.pyenv/versions/*/lib/python3*/site-packages")
    }
    patterns += [
      "/root/.local/lib/python3*/site-packages",
      "/root/.pyenv/versions/*/lib/python3*/site-packages",
      "/opt/*/.venv/lib/python3*/site-packages",
      "/opt/*/lib/python3*/site-packages",
    ]
    return unique(patterns)
  }

  /// The places NVRTC is looked for, in order, each a file path or a glob pattern of one. The
  /// loader-path fallback (`libnvrtc.so.13` by soname) comes after these.
  static func nvrtcFilePatterns(environment: [String: String]) -> [String] {
    var patterns = toolkitLibraryFolders(environment: environment).map { "\($0)/\(nvrtcSoname)" }
    for site in sitePackagesPatterns(environment: environment) {
      patterns.append("\(site)/nvidia/cu13/lib/\(nvrtcSoname)")
      patterns.append("\(site)/nvidia/cuda_nvrtc/lib/\(nvrtcSoname)")
    }
    return unique(patterns)
  }

  /// Candidate folders of the CUDA headers (cuda_fp16.h, cuda_bf16.h, ...), each a path or glob
  /// pattern, in order.
  static func includeFolderPatterns(environment: [String: String]) -> [String] {
    var patterns: [String] = []
    if let home = environment.nonEmpty("CUDA_HOME") { patterns.append("\(home)/include") }
    patterns += ["/usr/local/cuda/include", "/usr/local/cuda-13.0/targets/x86_64-linux/include"]
    for site in sitePackagesPatterns(environment: environment) {
      patterns.append("\(site)/nvidia/cu13/include")
      patterns.append("\(site)/nvidia/cuda_runtime/include")
    }
    return unique(patterns)
  }

  /// The header a folder must hold to count as the CUDA include folder.
  static let includeMarker = "cuda_fp16.h"

  /// The folder of the CUDA headers, to pass to NVRTC as an include path.
  /// `FLASHMOE_CUDA_INCLUDE`, when set, is the only place looked at.
  /// - Throws: `CUDAError.unavailable` listing every folder (or pattern) looked at.
  public static func includeDirectory(environment: [String: String] = CUDAEnvironment.current()) throws -> String {
    if let override = environment.nonEmpty("FLASHMOE_CUDA_INCLUDE") {
      if FileSystem.exists("\(override)/\(includeMarker)") { return override }
      throw CUDAError.unavailable(
        what: "CUDA headers (\(includeMarker)) in FLASHMOE_CUDA_INCLUDE",
        searched: [override])
    }
    return try includeDirectory(patterns: includeFolderPatterns(environment: environment))
  }

  /// The first folder (path or glob pattern) holding `includeMarker`.
  static func includeDirectory(patterns: [String]) throws -> String {
    var searched: [String] = []
    for pattern in patterns {
      searched.append(pattern)
      let matches = FileSystem.hasGlobCharacters(pattern)
        ? FileSystem.glob("\(pattern)/\(includeMarker)").map(FileSystem.directory(of:))
        : (FileSystem.exists("\(pattern)/\(includeMarker)") ? [pattern] : [])
      if let first = matches.first { return first }
    }
    throw CUDAError.unavailable(
      what: "CUDA headers (\(includeMarker); set FLASHMOE_CUDA_INCLUDE)", searched: searched)
  }

  static func unique(_ items: [String]) -> [String] {
    var seen = Set<String>()
    return items.filter { seen.insert($0).inserted }
  }
}

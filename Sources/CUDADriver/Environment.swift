import Glibc

/// The environment variables the CUDA layer consults, as a plain dictionary so that tests (and
/// callers) can pass their own instead of mutating the process environment.
public enum CUDAEnvironment {
  /// Variables that steer where libraries and headers are looked for.
  public static let keys: [String] = [
    "FLASHMOE_LIBCUDA", "FLASHMOE_NVRTC", "FLASHMOE_CUDA_INCLUDE",
    "CUDA_HOME", "HOME", "PYENV_ROOT", "VIRTUAL_ENV", "CONDA_PREFIX", "PATH",
  ]

  /// A variable of the process environment when it is set and not empty (the settings of every
  /// module read through here).
  public static func value(_ name: String) -> String? {
    guard let raw = getenv(name) else { return nil }
    let text = String(cString: raw)
    return text.isEmpty ? nil : text
  }

  /// A snapshot of `keys` from the process environment (unset variables are absent).
  public static func current() -> [String: String] {
    var result: [String: String] = [:]
    for key in keys {
      if let value = getenv(key) { result[key] = String(cString: value) }
    }
    return result
  }
}

extension Dictionary where Key == String, Value == String {
  /// The value of a variable when it is set and not empty.
  func nonEmpty(_ key: String) -> String? {
    guard let value = self[key], !value.isEmpty else { return nil }
    return value
  }
}

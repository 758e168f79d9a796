import CUDADriver
import Glibc

/// When tests that need NVRTC or a GPU run.
enum Gate {
  /// CI (`CI=true`) or `FLASHMOE_REQUIRE_NVRTC=1`: NVRTC must be found, so its tests run and fail
  /// when it is missing instead of being skipped.
  static let nvrtcRequired: Bool = {
    func value(_ name: String) -> String? { getenv(name).map { String(cString: $0).lowercased() } }
    return value("CI") == "true" || value("FLASHMOE_REQUIRE_NVRTC") == "1"
  }()
  static let nvrtcFound: Bool = (try? NVRTC.shared()) != nil
  static let runNVRTCTests: Bool = nvrtcFound || nvrtcRequired
  /// Visible CUDA devices (0 when libcuda or a GPU is missing).
  static let gpuCount: Int = (try? Driver.shared().deviceCount()) ?? 0
  static let hasGPU: Bool = gpuCount > 0
  static let hasTwoGPUs: Bool = gpuCount > 1
}

/// The options every test compilation uses.
func options(_ arch: String, _ extra: [String] = []) -> [String] {
  ["--gpu-architecture=\(arch)", "--ptxas-options=-v", "-std=c++17"] + extra
}

import CUDADriver
import Glibc

/// When tests that need NVRTC or a GPU run. Shared by every test target that compiles kernels.
public enum Gate {
  /// CI (`CI=true`) or `FLASHMOE_REQUIRE_NVRTC=1`: NVRTC must be found, so its tests run and fail
  /// when it is missing instead of being skipped.
  public static let nvrtcRequired: Bool = {
    func value(_ name: String) -> String? { getenv(name).map { String(cString: $0).lowercased() } }
    return value("CI") == "true" || value("FLASHMOE_REQUIRE_NVRTC") == "1"
  }()
  public static let nvrtcFound: Bool = (try? NVRTC.shared()) != nil
  public static let runNVRTCTests: Bool = nvrtcFound || nvrtcRequired
  /// nvdisasm, for the SASS checks (`CUDAPaths.nvdisasm`); `FLASHMOE_REQUIRE_NVDISASM=1` (CI) makes
  /// its absence a failure instead of a skip.
  public static let nvdisasm: String? = CUDAPaths.nvdisasm()
  public static let nvdisasmRequired: Bool = getenv("FLASHMOE_REQUIRE_NVDISASM").map { String(cString: $0) == "1" } ?? false
  /// Visible CUDA devices (0 when libcuda or a GPU is missing).
  public static let gpuCount: Int = (try? Driver.shared().deviceCount()) ?? 0
  public static let hasGPU: Bool = gpuCount > 0
  public static let hasTwoGPUs: Bool = gpuCount > 1
}

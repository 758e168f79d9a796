import CUDADriver
import Glibc

/// When the NVSHMEM build tests run: NVSHMEM (pip's nvidia-nvshmem-cu13), nvJitLink
/// (nvidia-nvjitlink) and the CCCL headers (nvidia-cuda-cccl) found next to NVRTC, or
/// `FLASHMOE_REQUIRE_NVSHMEM=1`, which makes them fail when something is missing instead of skipping.
extension Gate {
  public static let nvshmemRequired: Bool = getenv("FLASHMOE_REQUIRE_NVSHMEM").map { String(cString: $0) } == "1"
  /// Why the NVSHMEM tests cannot run here (nil when everything was found).
  public static let nvshmemMissing: String? = {
    var missing: [String] = []
    do { _ = try NVRTC.shared() } catch { missing.append("\(error)") }
    do { _ = try NVSHMEMPaths.find().checkDeviceFiles() } catch { missing.append("\(error)") }
    do { _ = try NVJitLink.shared() } catch { missing.append("\(error)") }
    let cudaInclude = (try? NVRTC.shared())?.includeDirectory
    do { _ = try CUDAPaths.ccclIncludeDirectory(cudaInclude: cudaInclude) } catch { missing.append("\(error)") }
    return missing.isEmpty ? nil : missing.joined(separator: "\n")
  }()
  public static let runNVSHMEMTests: Bool = nvshmemMissing == nil || nvshmemRequired
  /// The skip message of the NVSHMEM tests: what is missing and how to get it.
  public static let nvshmemSkipNote: String =
    "NVSHMEM build tools not found (pip install nvidia-nvshmem-cu13==3.4.5 nvidia-nvjitlink==13.0.* nvidia-cuda-cccl==13.0.*); "
    + "FLASHMOE_REQUIRE_NVSHMEM=1 makes this a failure. Missing: "
    + (nvshmemMissing?.split(separator: "\n").first.map(String.init) ?? "nothing")
}

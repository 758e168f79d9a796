import CUDADriver
import MoEKernels
import TestSupport
import Testing

/// fingerprint.cu (the soak's on-GPU output check) compiles for every architecture the layer
/// runs on, with no local memory; its arithmetic is checked on a GPU by `flashmoe soak`.
@Suite("Fingerprint kernel", .enabled(if: Gate.runNVRTCTests))
struct FingerprintKernelTests {
  @Test("compiles without spills or a stack frame", arguments: ["sm_80", "sm_90"])
  func compiles(architecture: String) throws {
    let source = try #require(KernelSources.contents(of: "fingerprint.cu"))
    let program = try NVRTC.shared().compile(
      source: source, name: "fingerprint.cu", options: ["--gpu-architecture=\(architecture)", "-std=c++17", "--ptxas-options=-v"])
    #expect(program.cubin.starts(with: [0x7F, 0x45, 0x4C, 0x46]))
    #expect(program.log.contains("flashmoe_fingerprint"))
    #expect(program.log.contains("0 bytes stack frame, 0 bytes spill stores, 0 bytes spill loads"))
  }
}

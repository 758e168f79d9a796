import ArgumentParser
import FlashMoE
import MoEJIT

struct Info: ParsableCommand {
  static let configuration = CommandConfiguration(abstract: "Which backends can run here, and why one cannot.")

  @OptionGroup var display: DisplayOptions

  func run() throws {
    let backends = Backends.status()
    if display.json {
      print(try jsonString(["backends": backends]))
      return
    }
    print(table([["backend", "available", "detail"]] + backends.map { [$0.name, $0.available ? "yes" : "no", $0.detail] }))
    print("cores: \(CPUFeatures.activeCores), AVX2+FMA: \(CPUFeatures.hasAVX2FMA ? "yes" : "no")")
    if let cuda = backends.first(where: { $0.name == "cuda" }), cuda.available {
      // Expert parallelism needs every pair of GPUs to reach each other.
      do {
        let group = try DeviceGroup.all()
        if group.count > 1 {
          print("peer access enabled between all \(group.count) GPUs (\(group.devices.map { String($0.index) }.joined(separator: ", ")))")
        }
      } catch {
        print("peer access: \(error)")
      }
      // Hopper kernels are read for wgmma accumulator hazards where nvdisasm is found (KernelCompiler).
      if let nvdisasm = KernelCompiler.sassCheckTool() {
        print("SASS check: on (\(nvdisasm))")
      } else {
        print("SASS check: off (\(KernelCompiler.sassCheckVariable)=0, or no nvdisasm: FLASHMOE_NVDISASM, or pip's nvidia-cuda-nvdisasm)")
      }
    }
  }
}

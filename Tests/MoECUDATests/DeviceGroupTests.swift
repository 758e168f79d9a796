import Testing
@testable import MoECUDA

@Suite struct DeviceGroupTests {
  /// Expert e lives on GPU ⌊e·P/E⌋: contiguous blocks of E/P experts, every GPU the same number.
  @Test(arguments: [(8, 1), (8, 2), (32, 2), (32, 4), (128, 8)])
  func ownersAreContiguousBlocks(experts: Int, gpus: Int) {
    let owners = (0..<experts).map { DeviceGroup.owner(ofExpert: $0, experts: experts, gpus: gpus) }
    #expect(owners == owners.sorted())
    for g in 0..<gpus {
      #expect(owners.filter { $0 == g }.count == experts / gpus)
      #expect(owners.firstIndex(of: g) == g * experts / gpus)
    }
  }

  @Test func problemsNameTheGPUs() {
    #expect(DeviceGroup.Problem.noPeerAccess(from: 0, to: 3, fromName: "A", toName: "B").description.contains("GPU 0 (A) cannot access GPU 3 (B)"))
    #expect(DeviceGroup.Problem.noSuchGPU(index: 5, count: 2).description.contains("GPU 5 does not exist"))
    #expect(DeviceGroup.Problem.duplicate(index: 1).description.contains("GPU 1 is listed twice"))
    #expect(DeviceGroup.Problem.expertsNotDivisible(experts: 6, gpus: 4).description.contains("experts = 6"))
  }
}

import MoECore
import Testing
@testable import MoECUDA

/// The buffers a multi-process job takes from NVSHMEM's symmetric heap must be exactly those the
/// peer table points into: one missing would leave a peer storing into memory NVSHMEM never mapped.
@Suite("workspace: symmetric buffers")
struct WorkspaceSymmetricTests {
  @Test("the symmetric buffers are the peer table's five, all in the expert-parallel plan", arguments: [2, 4, 8])
  func symmetricAreThePeerTable(ranks: Int) {
    let config = MoEConfig(tokens: 1000, hidden: 256, ffn: 512, experts: 8, topK: 2, dtype: .bf16)
    let plan = Workspace.plan(config: config, maxTokens: 1000, processors: 263, ranks: ranks)
    let names = Set(plan.map(\.name))
    #expect(Workspace.symmetricNames.isSubset(of: names))
    #expect(Workspace.symmetricNames.count * 8 == PeerEntry.size)
    #expect(Workspace.symmetricNames == ["dispatchIn", "combineIn", "dispatchSignal", "combineCount", "abortEpoch"])
    let bytes = plan.filter { Workspace.symmetricNames.contains($0.name) }.reduce(0) { $0 + $1.bytes }
    #expect(Workspace.symmetricBytes(config: config, maxTokens: 1000, processors: 1, ranks: ranks) == bytes)
    // The cells dominate: E · C' rows of H values, in and out.
    let cells = config.experts * Workspace.cellRows(config: config, maxTokens: 1000)
    #expect(bytes >= 2 * cells * config.hidden * config.dtype.size)
  }

  @Test("one GPU: of the five, only the abort word exists")
  func singleGPU() {
    let config = MoEConfig(tokens: 64, hidden: 128, ffn: 128, experts: 4, topK: 2)
    let names = Set(Workspace.plan(config: config, maxTokens: 64, processors: 10, ranks: 1).map(\.name))
    #expect(names.intersection(Workspace.symmetricNames) == ["abortEpoch"])
  }
}

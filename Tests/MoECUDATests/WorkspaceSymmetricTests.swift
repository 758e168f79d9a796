import MoECore
import MoEJIT
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

  @Test("the put transport adds the arrival counts, the staging buffer and the tokens to the symmetric heap")
  func putTransport() {
    let config = MoEConfig(tokens: 1000, hidden: 256, ffn: 512, experts: 8, topK: 2, dtype: .bf16)
    let plan = Workspace.plan(config: config, maxTokens: 1000, processors: 263, ranks: 2, transport: .nvshmem)
    let bytes = Dictionary(uniqueKeysWithValues: plan.map { ($0.name, $0.bytes) })
    let cells = Workspace.cellRows(config: config, maxTokens: 1000)
    #expect(bytes["dispatchArrive"] == config.experts * 8)
    #expect(bytes["combineArrive"] == config.experts * (cells / Workspace.tileM) * 8)
    #expect(bytes["stageOut"] == config.experts * cells * config.hidden * config.dtype.size)
    let names = Workspace.symmetricBufferNames(.nvshmem)
    #expect(names.isSuperset(of: Workspace.symmetricNames) && names.isSubset(of: Set(bytes.keys)))
    #expect(names.subtracting(Workspace.symmetricNames) == ["dispatchArrive", "combineArrive", "stageOut", "input", "xRounded"])
    // Only tf32 math gives the rounded tokens room.
    #expect(bytes["xRounded"] == 8)
    var tf32 = config
    tf32.dtype = .fp32
    tf32.math = .tf32
    let tf32Bytes = Dictionary(uniqueKeysWithValues: Workspace.plan(config: tf32, maxTokens: 1000, processors: 263, ranks: 2).map { ($0.name, $0.bytes) })
    #expect(tf32Bytes["xRounded"] == 1000 * config.hidden * 4)
    #expect(Workspace.symmetricBytes(config: config, maxTokens: 1000, processors: 1, ranks: 2, transport: .nvshmem)
      == plan.filter { names.contains($0.name) }.reduce(0) { $0 + $1.bytes })
    // The peer transport's plan has none of them.
    let peerNames = Set(Workspace.plan(config: config, maxTokens: 1000, processors: 263, ranks: 2).map(\.name))
    #expect(peerNames.isDisjoint(with: ["dispatchArrive", "combineArrive", "stageOut"]))
  }
}

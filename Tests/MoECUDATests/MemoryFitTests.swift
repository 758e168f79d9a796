import CUDADriver
import MoECore
import TestSupport
import Testing
@testable import MoECUDA

/// A layer that does not fit fails before anything is allocated, naming what it needs (issue #7 §3).
@Suite("GPU memory: checked before allocation")
struct MemoryFitTests {
  static let configs: [MoEConfig] = [
    MoEConfig(tokens: 64, hidden: 256, ffn: 512, experts: 8, topK: 2),
    MoEConfig(tokens: 64, hidden: 128, ffn: 256, experts: 4, topK: 1, expertForm: .gated, biases: true, dtype: .bf16),
    MoEConfig(tokens: 64, hidden: 64, ffn: 192, experts: 6, topK: 2, expertForm: .gated, biases: false, dtype: .fp16),
  ]

  @Test("weight bytes = the gate plus this GPU's block of experts, counted from the arrays themselves",
        arguments: configs, [1, 2])
  func weightBytes(config: MoEConfig, ranks: Int) {
    guard config.experts % ranks == 0 else { return }
    let w = MoEWeights.random(config, seed: 5)
    let perExpert = [w.w1, w.w2, w.w3 ?? [], w.b1 ?? [], w.b2 ?? [], w.b3 ?? []].reduce(0) { $0 + $1.count } / config.experts
    let elements = w.gate.count + perExpert * config.experts / ranks
    #expect(CUDAMoE.weightBytes(config: config, ranks: ranks) == elements * config.dtype.size)
  }

  @Test("the workspace plan grows with the token count and holds the peer buffers only for P > 1")
  func plan() {
    let c = Self.configs[0]
    func total(_ tokens: Int, _ ranks: Int) -> Int {
      Workspace.plan(config: c, maxTokens: tokens, processors: 263, ranks: ranks).reduce(0) { $0 + $1.bytes }
    }
    #expect(total(2048, 1) > total(1024, 1))
    let names = Set(Workspace.plan(config: c, maxTokens: 64, processors: 7, ranks: 2).map(\.name))
    #expect(names.isSuperset(of: ["dispatchIn", "combineIn", "dispatchSignal", "combineCount", "dispatchSent", "peers"]))
    #expect(!Workspace.plan(config: c, maxTokens: 64, processors: 7, ranks: 1).contains { $0.name == "dispatchIn" })
    #expect(Workspace.plan(config: c, maxTokens: 64, processors: 7, ranks: 1).allSatisfy { $0.bytes >= 8 })
  }

  @Test("the largest layer the configuration allows is planned without overflow (bytes fit in Int)")
  func extremes() {
    let m = MoEConfig.maxDimension
    let c = MoEConfig(tokens: m, hidden: m, ffn: m, experts: 256, topK: 16, capacity: .dropless)
    for ranks in [1, 2, 8] {
      let plan = Workspace.plan(config: c, maxTokens: m, processors: 263, ranks: ranks)
      let total = plan.reduce(0) { $0 + $1.bytes }
      #expect(total > 1 << 50 && total < Int.max / 4, "P = \(ranks): \(total) bytes")
    }
    #expect(CUDAMoE.weightBytes(config: c, ranks: 1) > 1 << 50)
  }

  @Test("max-tokens past the configuration's limit (or below tokens) is refused before any GPU work", arguments: [
    MoEConfig.maxDimension + 1, Int.max, 63, 0,
  ])
  func maxTokensBounds(maxTokens: Int) {
    let c = Self.configs[0]  // tokens = 64
    let error = #expect(throws: ConfigError.self) {
      _ = try CUDAMoE(config: c, weights: .random(c, seed: 2), maxTokens: maxTokens)
    }
    #expect(error?.description.contains("max-tokens") == true, "\(String(describing: error))")
  }

  @Test("too little free memory: the error names the GPU, the bytes needed (both parts) and the bytes free")
  func refusal() {
    let error = #expect(throws: CUDABackendError.self) {
      try CUDAMoE.checkFits(gpu: 1, weights: 3_000_000_000, workspace: 500_000_000, free: 2_000_000_000)
    }
    let text = error?.description ?? ""
    #expect(text.contains("GPU 1") && text.contains("3500000000") && text.contains("2000000000"), "\(text)")
    #expect(text.contains("3000000000") && text.contains("500000000"), "\(text)")
    #expect(throws: Never.self) { try CUDAMoE.checkFits(gpu: 0, weights: 1 << 30, workspace: 1 << 30, free: 80 << 30) }
  }
  // On a GPU: `flashmoe verify` (full battery) checks that a 275 GB workspace is refused without
  // changing device memory (Verify+Host.swift), since the GPU machine runs the CLI, not swift test.
}

import MoECore
import MoEJIT
import Testing
@testable import MoECUDA

/// What the CUDA backend decides on the host: shapes it refuses, the grouped buffers' size, and
/// how a watchdog report reads. None of it needs a GPU.
@Suite("CUDA backend host logic")
struct BackendTests {
  static func config(hidden: Int = 256, ffn: Int = 256, experts: Int = 8, topK: Int = 2, tokens: Int = 16) -> MoEConfig {
    MoEConfig(tokens: tokens, hidden: hidden, ffn: ffn, experts: experts, topK: topK)
  }

  @Test("unsupported shapes are rejected naming the field and the value", arguments: [
    (config(hidden: 96), "hidden", "96"),
    (config(hidden: 1000), "hidden", "1000"),
    (config(hidden: 32), "hidden", "32"),
    (config(ffn: 32), "ffn", "32"),
    (config(ffn: 200), "ffn", "200"),
    (config(experts: 257), "experts", "257"),
    (config(experts: 512, topK: 8), "experts", "512"),
    (config(experts: 32, topK: 17), "topk", "17"),
  ])
  func unsupportedShapes(config: MoEConfig, field: String, value: String) {
    let error = #expect(throws: CUDABackendError.self) { try CUDAMoE.checkSupported(config) }
    guard case .unsupported(let f, let v, let expected)? = error else {
      Issue.record("expected .unsupported, got \(String(describing: error))")
      return
    }
    #expect(f == field)
    #expect(v == value)
    #expect(!expected.isEmpty)
    let description = error?.description ?? ""
    #expect(description.contains("\(field) = \(value)"), "\(description)")
  }

  @Test("supported shapes pass", arguments: [
    config(hidden: 64, ffn: 64, experts: 1, topK: 1),
    config(hidden: 64, ffn: 64, experts: 256, topK: 16),
    config(hidden: 4096, ffn: 14336, experts: 8, topK: 2),
    config(hidden: 2048, ffn: 1408, experts: 64, topK: 6),
  ])
  func supportedShapes(config: MoEConfig) throws {
    try CUDAMoE.checkSupported(config)
  }

  @Test("maxRows holds every kept pair plus each expert's tile padding, in whole tiles", arguments: [
    (1, 1, 1), (1, 8, 2), (7, 8, 2), (127, 3, 1), (128, 1, 1), (129, 1, 1), (1000, 8, 2), (4097, 8, 2),
    (4096, 32, 2), (4096, 128, 2), (8192, 64, 6), (16384, 256, 16), (1, 256, 16),
  ])
  func maxRows(maxTokens: Int, experts: Int, topK: Int) {
    let config = Self.config(experts: experts, topK: topK, tokens: maxTokens)
    let rows = Workspace.maxRows(config: config, maxTokens: maxTokens)
    let tile = Workspace.tileM
    #expect(tile == 128)
    #expect(rows % tile == 0, "\(rows)")
    // Worst case: every pair kept, and every expert's last tile holds a single row.
    #expect(rows >= maxTokens * topK + experts * (tile - 1), "\(rows)")
    // And not more than one tile beyond that worst case plus a full tile per expert.
    #expect(rows < maxTokens * topK + experts * tile + tile, "\(rows)")
    #expect(rows <= Int(Int32.max), "the kernel takes maxRows as an int")
  }

  @Test("FLASHMOE_WARPGROUPS: 2 where two warpgroups apply (also by default), else 1; anything else names the variable")
  func warpgroups() throws {
    var bf16 = Self.config(hidden: 2048, ffn: 2048)
    bf16.dtype = .bf16
    #expect(try CUDAMoE.warpgroups(config: bf16, architecture: "sm_90a", tf32OnWGMMA: true, text: nil) == 2)
    #expect(try CUDAMoE.warpgroups(config: bf16, architecture: "sm_90a", tf32OnWGMMA: true, text: "2") == 2)
    #expect(try CUDAMoE.warpgroups(config: bf16, architecture: "sm_90a", tf32OnWGMMA: true, text: "1") == 1)
    // Ampere, fp32 FMA, and H not a multiple of 256 cannot take two: they keep one.
    let fp32 = Self.config(hidden: 2048, ffn: 2048)
    var narrow = Self.config(hidden: 1152, ffn: 2048)
    narrow.dtype = .bf16
    for (config, arch) in [(bf16, "sm_80"), (fp32, "sm_90a"), (narrow, "sm_90a")] {
      #expect(try CUDAMoE.warpgroups(config: config, architecture: arch, tf32OnWGMMA: true, text: "2") == 1)
      #expect(try CUDAMoE.warpgroups(config: config, architecture: arch, tf32OnWGMMA: true, text: nil) == 1)
    }
    for bad in ["0", "3", "two", " 2"] {
      do {
        _ = try CUDAMoE.warpgroups(config: bf16, architecture: "sm_90a", tf32OnWGMMA: true, text: bad)
        Issue.record("'\(bad)' accepted")
      } catch {
        #expect(error.field == CUDAMoE.warpgroupsVariable && error.value == "'\(bad)'")
      }
    }
  }

  @Test("FLASHMOE_TMA: on (also by default) where the tiles are on wgmma, off with 0; any other word names the variable")
  func tmaSetting() throws {
    let bf16 = KernelSpec(hidden: 2048, ffn: 2048, experts: 32, topK: 2, dtype: .bf16, tileN: 128)
    #expect(try CUDAMoE.tmaOperands(spec: bf16, text: nil) == true)
    #expect(try CUDAMoE.tmaOperands(spec: bf16, text: "0") == false)
    #expect(try CUDAMoE.tmaOperands(spec: bf16, text: "1") == true)
    var ampere = bf16
    ampere.architecture = "sm_80"
    var narrowGated = bf16
    narrowGated.form = .gated
    narrowGated.tileN = 64
    for spec in [ampere, narrowGated] {
      #expect(try CUDAMoE.tmaOperands(spec: spec, text: "1") == false)
      #expect(try CUDAMoE.tmaOperands(spec: spec, text: nil) == false)
    }
    for bad in ["yes", "2", ""] {
      do {
        _ = try CUDAMoE.tmaOperands(spec: bf16, text: bad)
        Issue.record("'\(bad)' accepted")
      } catch {
        #expect(error.field == CUDAMoE.tmaVariable && error.value == "'\(bad)'")
      }
    }
  }

  @Test("a watchdog error names the GPU, the role and the phase")
  func watchdogDescription() {
    let error = CUDABackendError.watchdog(
      gpu: 3, role: CUDABackendError.roleName(3), phase: CUDABackendError.phaseName(3), block: 131,
      awaited: 0x1_0000_0002, observed: 0x1_0000_0001, elapsedMs: 10_000.4)
    let text = error.description
    #expect(text.contains("GPU 3"), "\(text)")
    #expect(text.contains("Scheduler"), "\(text)")
    #expect(text.contains("slot assignment"), "\(text)")
    #expect(text.contains("block 131"), "\(text)")
    #expect(text.contains("10000 ms"), "\(text)")
    #expect(text.contains("\(0x1_0000_0002 as UInt64)") && text.contains("\(0x1_0000_0001 as UInt64)"), "\(text)")
  }

  @Test("role and phase codes are named as layout.cuh numbers them")
  func roleAndPhaseNames() {
    // enum Role { kRoleGate = 1, kRoleProcessor, kRoleScheduler, kRoleSubscriber, kRoleBarrier }
    #expect((1...5).map(CUDABackendError.roleName) == ["gate", "Processor", "Scheduler", "Subscriber", "grid barrier"])
    // enum Phase { kPhaseGate = 1, kPhaseScan, kPhaseSlots, kPhaseTasks, kPhaseDrain, kPhaseDispatch, kPhaseCombine, kPhaseStall, kPhaseOperands }
    #expect((1...9).map(CUDABackendError.phaseName) == [
      "gate", "capacity scan", "slot assignment", "tasks", "drain", "dispatch", "combine", "stall (FLASHMOE_DEBUG_STALL)",
      "operand arrival (TMA)",
    ])
    #expect(CUDABackendError.roleName(9) == "actor 9")
    #expect(CUDABackendError.phaseName(0) == "phase 0")
  }
}

/// FLASHMOE_DEBUG_STALL (issue #7 §6): parsed before any GPU work, bad values named.
@Suite("debug stall setting")
struct DebugStallTests {
  @Test(arguments: [
    ("processor", UInt32(2), 0), ("Scheduler", 3, 0), ("gate@1", 1, 1), ("subscriber@0", 4, 0), ("processor@7", 2, 7),
  ] as [(String, UInt32, Int)])
  func parses(text: String, role: UInt32, rank: Int) throws {
    #expect(try DebugStall.parse(text) == DebugStall(role: role, rank: rank))
  }

  @Test func offWhenUnset() throws {
    #expect(try DebugStall.parse(nil) == nil)
    #expect(try DebugStall.parse("") == nil)
  }

  @Test func aRankOutsideTheGroupIsRefusedBeforeAnyGPUWork() {
    let config = MoEConfig(tokens: 16, hidden: 256, ffn: 256, experts: 8, topK: 2)
    let error = #expect(throws: ConfigError.self) {
      _ = try CUDAMoE(config: config, weights: .random(config, seed: 1), debugStall: DebugStall(role: 2, rank: 1))
    }
    #expect(error?.description.contains(DebugStall.variable) == true && error?.description.contains("rank 1") == true,
            "\(String(describing: error))")
  }

  @Test(arguments: ["combine", "processor@", "processor@-1", "processor@x", "gate@1@2", "@1"])
  func rejects(text: String) {
    let error = #expect(throws: ConfigError.self) { try DebugStall.parse(text) }
    #expect(error?.description.contains(DebugStall.variable) == true, "\(String(describing: error))")
    #expect(error?.description.contains(text) == true, "\(String(describing: error))")
  }
}

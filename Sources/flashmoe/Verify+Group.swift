import ArgumentParser
import FlashMoE

extension Verify {
  /// The expert-parallel battery: the whole layer over all P·S tokens against the CPU backend with
  /// capacity counted per source GPU (`groups: P`).
  func runGroup(_ indices: [Int]) throws {
    let firstSeed = seed ?? UInt64.random(in: 1...UInt64(UInt32.max))
    let group = try DeviceGroup(indices: indices)
    let p = group.count
    print("verify: CUDA backend on GPUs \(indices.map(String.init).joined(separator: ",")) (expert parallelism, P = \(p)) against the CPU backend, first seed \(firstSeed)")
    var tally = Tally()
    var caseSeed = firstSeed
    let threads = try backendOptions.threadCount()
    for c in GroupCase.battery(gpus: p) {
      caseSeed &+= 1
      let seed = caseSeed
      guard selected(c.name) else { continue }
      tally.check("\(c.name) seed \(seed)") {
        let outcome = try c.run(seed: seed, group: group, threads: threads)
        return (outcome.ok, outcome.line)
      }
    }
    let lastSeed = caseSeed &+ 1
    if selected("repeat") { tally.check("repeat \(repeats) on \(p) GPUs") { try groupDeterminism(group: group, seed: lastSeed) } }
    try requireSelection(tally)
    try tally.finish()
  }

  /// `repeats` forwards in a row on P GPUs: bitwise identical, device memory flat, and equal to the
  /// single-GPU kernel's output for the same tokens and weights (dropless, so capacity per source
  /// does not matter).
  func groupDeterminism(group: DeviceGroup, seed: UInt64) throws -> (ok: Bool, text: String) {
    let p = group.count
    let config = MoEConfig(tokens: 1000, hidden: 256, ffn: 512, experts: 8, topK: 2, capacity: .dropless, dtype: .bf16)
    let weights = MoEWeights.random(config, seed: seed)
    let engine = try CUDAMoEGroup(config: config, weights: weights, group: group)
    var rng = SeededGenerator(seed: seed &+ 7)
    var input = rng.normals(p * config.tokens * config.hidden)
    input.round(to: .bf16)
    let first = try engine.forward(input, tokensPerGPU: config.tokens, poison: true)
    let before = try engine.engines.map { try $0.memoryInUse() }
    var differing = 0
    for _ in 1..<repeats where try engine.forward(input, tokensPerGPU: config.tokens, poison: true) != first { differing += 1 }
    let after = try engine.engines.map { try $0.memoryInUse() }
    var single = config
    single.tokens = p * config.tokens
    let one = try CUDAMoE(config: single, weights: weights, deviceIndex: group.devices[0].index)
    let reference = try one.forward(input, tokens: single.tokens, poison: true)
    let sameAsOne = reference == first
    let ok = differing == 0 && zip(before, after).allSatisfy { $1 <= $0 } && sameAsOne
    return (ok, "\(ok ? "PASS" : "FAIL")  repeat \(repeats) forwards on \(p) GPUs (S=1000/GPU bf16 dropless): \(differing) differ from the first; equal to the single-GPU kernel on all \(single.tokens) tokens: \(sameAsOne ? "yes" : "NO"); device memory \(before) → \(after)")
  }
}

/// One expert-parallel verification case.
struct GroupCase {
  var name: String
  var config: MoEConfig
  /// Tokens of every GPU go to the last GPU's experts only (the other GPUs receive nothing).
  var allToLastGPU = false

  static func base(_ name: String, tokens: Int = 1000, hidden: Int = 256, ffn: Int = 256, experts: Int = 8, topK: Int = 2,
                   dtype: DType = .bf16, math: Math = .fp32, form: ExpertForm = .plain, activation: Activation = .gelu,
                   capacity: Capacity = .factor(1.0)) -> GroupCase {
    GroupCase(name: name, config: MoEConfig(
      tokens: tokens, hidden: hidden, ffn: ffn, experts: experts, topK: topK, capacity: capacity,
      activation: activation, expertForm: form, dtype: dtype, math: math))
  }

  static func battery(gpus: Int) -> [GroupCase] {
    [
      .base("bf16"),
      .base("tokens 1 per GPU", tokens: 1),
      .base("tokens 4097 per GPU", tokens: 4097),
      .base("fp32 (FMA)", dtype: .fp32),
      .base("fp32 with tf32 math", dtype: .fp32, math: .tf32),
      .base("fp16 gated relu", dtype: .fp16, form: .gated, activation: .relu),
      .base("gated silu bf16", form: .gated, activation: .silu),
      .base("k = 4, E = 8", topK: 4),
      .base("E = 32, S = 4096", tokens: 4096, experts: 32),
      .base("capacity factor 0.1 (almost every pair dropped)", capacity: .factor(0.1)),
      .base("dropless", capacity: .dropless),
      { var c = GroupCase.base("every GPU's tokens to GPU \(gpus - 1)'s experts; the others receive nothing"); c.allToLastGPU = true; return c }(),
      { var c = GroupCase.base("every GPU's tokens to GPU \(gpus - 1)'s experts, dropless", capacity: .dropless); c.allToLastGPU = true; return c }(),
      // H = D = 512: two column tiles of 256 in each GEMM (the 256-wide tiles of two warpgroups),
      // S = 4096: cells of 8 or 9 row tiles.
      .base("H = D = 512, S = 4096 (two column tiles per GEMM)", tokens: 4096, hidden: 512, ffn: 512),
      .base("gated silu bf16, H = D = 512", tokens: 2048, hidden: 512, ffn: 512, form: .gated, activation: .silu),
      .base("fp32 with tf32 math, H = D = 512, S = 4096", tokens: 4096, hidden: 512, ffn: 512, dtype: .fp32, math: .tf32),
      { var c = GroupCase.base("H = D = 512, every GPU's tokens to GPU \(gpus - 1)'s experts", tokens: 2048, hidden: 512, ffn: 512); c.allToLastGPU = true; return c }(),
    ]
  }

  /// The case's weights and all P·S tokens (rounded to the dtype), the same on every rank.
  func inputs(seed: UInt64, gpus p: Int) -> (weights: MoEWeights, input: [Float]) {
    let s = config.tokens, h = config.hidden
    var weights = MoEWeights.random(config, seed: seed)
    var rng = SeededGenerator(seed: seed &+ 0x5EED)
    var input = rng.normals(p * s * h)
    if allToLastGPU {
      // A large common feature that only the last GPU's experts respond to.
      for e in 0..<config.experts where DeviceGroup.owner(ofExpert: e, experts: config.experts, gpus: p) == p - 1 {
        weights.gate[e * h] = 4
      }
      for t in 0..<(p * s) { input[t * h] = 4 }
    }
    weights.round(to: config.dtype)
    input.round(to: config.dtype)
    return (weights, input)
  }

  func run(seed: UInt64, group: DeviceGroup, threads: Int?) throws -> (ok: Bool, line: String) {
    let p = group.count, s = config.tokens
    let (weights, input) = inputs(seed: seed, gpus: p)
    let cpu = try MoELayer(config: config, weights: weights, backend: .cpu, threads: threads)
    let reference = try cpu.forward(input, groups: p)
    let engine = try CUDAMoEGroup(config: config, weights: cpu.weights, group: group)
    let gpuValues = try engine.forward(input, tokensPerGPU: s, poison: true)
    let routing = try engine.lastRouting(tokensPerGPU: s)
    let comparison = Comparison(
      config: config, cpu: reference.values, cpuRouting: reference.routing, logits: reference.logits, gpu: gpuValues,
      gpuRouting: Routing(gpuExperts: routing.expert, rows: routing.row, tokens: p * s, config: config))
    var ok = comparison.passes(config)
    var extra = ""
    if allToLastGPU {
      let senders = (0..<config.experts).filter { e in reference.routing.expert.contains(Int32(e)) }
      let owners = Set(senders.map { DeviceGroup.owner(ofExpert: $0, experts: config.experts, gpus: p) })
      ok = ok && owners == [p - 1]
      extra = " experts used on GPUs \(owners.sorted())"
    }
    let c = config
    let line = "\(ok ? "PASS" : "FAIL")  \(name) [P=\(p) S=\(s)/GPU H=\(c.hidden) D=\(c.ffn) E=\(c.experts) k=\(c.topK) \(c.dtype.rawValue)\(c.math == .tf32 ? "/tf32" : "") \(c.expertForm.rawValue), seed \(seed)]\n"
      + "      relL2 \(scientific(comparison.relativeL2)) max|Δ| \(scientific(comparison.maxAbsolute)) kept \(reference.routing.keptPairs)/\(reference.routing.pairs)"
      + (comparison.routingMismatches > 0 ? " near-ties \(comparison.nearTieMismatches)/\(comparison.routingMismatches)" : "")
      + (comparison.nonFinite > 0 ? " NON-FINITE \(comparison.nonFinite)" : "")
      + (comparison.dropMismatches > 0 ? " drop-mismatch \(comparison.dropMismatches)" : "") + extra
    return (ok, line)
  }
}

import ArgumentParser
import CUDADriver
import FlashMoE
import MoELaunch

/// `verify --launcher env`: one process per GPU over NVSHMEM (issue #6 §4). Every rank draws the
/// same weights and all P·S tokens from the seed, runs the CPU oracle over all of them (capacity
/// per source GPU, as on one host), and checks its own S tokens' outputs and routing; the other
/// ranks check theirs. `flashmoe launch -n P -- verify --launcher env` runs the job on one host.
extension Verify {
  func runRanked(_ place: LaunchEnvironment) throws {
    let firstSeed = seed ?? 20_261_128
    let gpu = try place.gpuIndex(visibleGPUs: try Driver.shared().deviceCount())
    let p = place.worldSize
    let heap = GroupCase.battery(gpus: p).reduce(0) { $0 + CUDAMoERank.symmetricBytes(config: $1.config, ranks: p) }
    let timeout = try launcherOptions.timeout()
    let job = try NVSHMEMJob.start(rank: place.rank, worldSize: p, gpu: gpu, heapBytes: 2 * heap, barrierTimeout: timeout) { payload in
      try Rendezvous.exchange(place, payload: payload, timeout: timeout)
    }
    try runInJob(job) {
      print("verify: rank \(place.rank) of \(p) on GPU \(gpu), NVSHMEM \(job.nvshmemVersion) (one process per GPU, launcher \(place.launcher.rawValue)), against the CPU backend, first seed \(firstSeed)")
      var tally = Tally()
      var caseSeed = firstSeed
      let threads = try backendOptions.threadCount()
      // The put transport on its own first (every rank runs it: it is collective), so that a
      // transport fault is told apart from a fault of the layer built on it.
      for (staged, epoch) in [(false, UInt32(1)), (true, 2), (true, 3)] {
        let probe = Result { try job.probePutTransport(staged: staged, epoch: epoch) }
        guard selected("transport probe") else { continue }
        tally.check("NVSHMEM put transport probe, epoch \(epoch)") {
          let r = try probe.get()
          return (r.ok, "\(r.ok ? "PASS" : "FAIL")  NVSHMEM put transport probe, epoch \(epoch) [rank \(place.rank) of \(p)]: \(r)")
        }
      }
      for c in GroupCase.battery(gpus: p) {
        caseSeed &+= 1
        let seed = caseSeed
        // Every rank builds every case's layer (NVSHMEM's allocations are collective), so the
        // filter applies to what is checked and printed, not to what runs.
        let outcome = Result { try c.runRanked(seed: seed, job: job, threads: threads) }
        guard selected(c.name) else { continue }
        tally.check("\(c.name) seed \(seed)") {
          let result = try outcome.get()
          return (result.ok, result.line)
        }
      }
      let lastSeed = caseSeed &+ 1
      let determinism = Result { try rankedDeterminism(job: job, gpu: gpu, seed: lastSeed) }
      if selected("repeat") { tally.check("repeat \(repeats) on \(p) processes") { try determinism.get() } }
      try job.finish()
      try requireSelection(tally)
      try tally.finish()
    }
  }

  /// `repeats` forwards: this rank's outputs bitwise identical each time and equal to its slice of
  /// the single-GPU kernel's output over all P·S tokens (dropless), device memory flat.
  func rankedDeterminism(job: NVSHMEMJob, gpu: Int, seed: UInt64) throws -> (ok: Bool, text: String) {
    let p = job.worldSize, r = job.rank
    let config = MoEConfig(tokens: 1000, hidden: 256, ffn: 512, experts: 8, topK: 2, capacity: .dropless, dtype: .bf16)
    let weights = MoEWeights.random(config, seed: seed)
    var rng = SeededGenerator(seed: seed &+ 7)
    var input = rng.normals(p * config.tokens * config.hidden)
    input.round(to: .bf16)
    let mine = Array(input[r * config.tokens * config.hidden..<(r + 1) * config.tokens * config.hidden])
    let engine = try CUDAMoERank(config: config, weights: weights, job: job)
    let first = try engine.forward(mine, tokens: config.tokens, poison: true)
    let before = try engine.engine.memoryInUse()
    var differing = 0
    for _ in 1..<repeats where try engine.forward(mine, tokens: config.tokens, poison: true) != first { differing += 1 }
    let after = try engine.engine.memoryInUse()
    var single = config
    single.tokens = p * config.tokens
    let one = try CUDAMoE(config: single, weights: weights, deviceIndex: gpu)
    let reference = try one.forward(input, tokens: single.tokens, poison: true)
    let sameAsOne = Array(reference[r * config.tokens * config.hidden..<(r + 1) * config.tokens * config.hidden]) == first
    let ok = differing == 0 && after <= before && sameAsOne
    return (ok, "\(ok ? "PASS" : "FAIL")  repeat \(repeats) forwards, rank \(r) of \(p), \(engine.transport == .nvshmem ? "NVSHMEM puts" : "peer pointers") (S=1000/GPU bf16 dropless): \(differing) differ from the first; equal to the single-GPU kernel on this rank's \(config.tokens) tokens: \(sameAsOne ? "yes" : "NO"); device memory \(before) → \(after)")
  }
}

extension GroupCase {
  /// This case on rank `job.rank` of a multi-process job: its S tokens against its slice of the
  /// CPU oracle's output over all P·S tokens.
  func runRanked(seed: UInt64, job: NVSHMEMJob, threads: Int?) throws -> (ok: Bool, line: String) {
    let p = job.worldSize, r = job.rank, s = config.tokens, h = config.hidden, e = config.experts, k = config.topK
    let (weights, input) = inputs(seed: seed, gpus: p)
    let cpu = try MoELayer(config: config, weights: weights, backend: .cpu, threads: threads)
    let reference = try cpu.forward(input, groups: p)
    let engine = try CUDAMoERank(config: config, weights: cpu.weights, job: job)
    let gpuValues = try engine.forward(Array(input[r * s * h..<(r + 1) * s * h]), tokens: s, poison: true)
    let routing = try engine.lastRouting(tokens: s)
    var mine = config
    mine.tokens = s
    let pairs = r * s * k..<(r + 1) * s * k
    let cpuRouting = Routing(
      tokens: s, experts: e, topK: k, expert: Array(reference.routing.expert[pairs]),
      weight: Array(reference.routing.weight[pairs]), slot: Array(reference.routing.slot[pairs]))
    let comparison = Comparison(
      config: mine, cpu: Array(reference.values[r * s * h..<(r + 1) * s * h]), cpuRouting: cpuRouting,
      logits: Array(reference.logits[r * s * e..<(r + 1) * s * e]), gpu: gpuValues,
      gpuRouting: Routing(gpuExperts: routing.expert, rows: routing.row, tokens: s, config: mine))
    let ok = comparison.passes(mine)
    let c = config
    let line = "\(ok ? "PASS" : "FAIL")  \(name) [rank \(r) of \(p)\(engine.transport == .nvshmem ? " puts" : ""), S=\(s)/GPU H=\(c.hidden) D=\(c.ffn) E=\(c.experts) k=\(c.topK) \(c.dtype.rawValue)\(c.math == .tf32 ? "/tf32" : "") \(c.expertForm.rawValue), seed \(seed)]\n"
      + "      relL2 \(scientific(comparison.relativeL2)) max|Δ| \(scientific(comparison.maxAbsolute)) kept \(cpuRouting.keptPairs)/\(cpuRouting.pairs)"
      + (comparison.routingMismatches > 0 ? " near-ties \(comparison.nearTieMismatches)/\(comparison.routingMismatches)" : "")
      + (comparison.nonFinite > 0 ? " NON-FINITE \(comparison.nonFinite)" : "")
      + (comparison.dropMismatches > 0 ? " drop-mismatch \(comparison.dropMismatches)" : "")
    return (ok, line)
  }
}

import ArgumentParser
import FlashMoE

extension Verify {
  /// `--faults` (issue #7 §6): each actor made to stall (FLASHMOE_DEBUG_STALL's mechanism) on one
  /// GPU — or, with `--gpus`, on the last GPU of the group — must make the forward fail within the
  /// watchdog bound with an error naming that actor and that GPU; a fresh layer must then run and
  /// match the CPU backend.
  func runFaults(_ indices: [Int]?) throws {
    let boundMs = 2000
    let config = MoEConfig(tokens: 1000, hidden: 256, ffn: 256, experts: 8, topK: 2, dtype: .bf16)
    var weights = MoEWeights.random(config, seed: seed ?? 7)
    weights.round(to: config.dtype)
    let group = try indices.map { try DeviceGroup(indices: $0) }
    let p = group?.count ?? 1
    var rng = SeededGenerator(seed: (seed ?? 7) &+ 1)
    var input = rng.normals(p * config.tokens * config.hidden)
    input.round(to: .bf16)
    let placement = group.map { "GPUs \($0.devices.map { String($0.index) }.joined(separator: ",")), stalls on rank \(p - 1)" } ?? "GPU \(gpu)"
    print("verify --faults: \(placement), watchdog bound \(boundMs) ms")

    // A fresh layer (compiled or loaded from the cache, weights uploaded) and the call that runs one
    // forward on it, returning the output and the GPU's routing of all P·S tokens; only the call is
    // timed against the watchdog bound.
    func layer(stall: DebugStall?) throws -> () throws -> (values: [Float], routing: Routing) {
      let wrap = { (values: [Float], raw: (expert: [Int32], row: [Int32])) in
        (values, Routing(gpuExperts: raw.expert, rows: raw.row, tokens: p * config.tokens, config: config))
      }
      if let group {
        let engine = try CUDAMoEGroup(config: config, weights: weights, group: group, debugStall: stall, watchdogMs: boundMs)
        return { wrap(try engine.forward(input, tokensPerGPU: config.tokens, poison: true), try engine.lastRouting(tokensPerGPU: config.tokens)) }
      }
      let engine = try CUDAMoE(config: config, weights: weights, deviceIndex: gpu, debugStall: stall, watchdogMs: boundMs)
      return { wrap(try engine.forward(input, tokens: config.tokens, poison: true), try engine.lastRouting(tokens: config.tokens)) }
    }
    let reference = try MoELayer(config: config, weights: weights, backend: .cpu).forward(input, groups: p)

    var tally = Tally()
    let actors: [(name: String, role: String)] =
      [("gate", "gate"), ("processor", "Processor"), ("scheduler", "Scheduler")] + (p > 1 ? [("subscriber", "Subscriber")] : [])
    for actor in actors {
      tally.check("stall \(actor.name)") {
        let stall = try DebugStall.parse("\(actor.name)@\(p - 1)")
        let run = try layer(stall: stall)
        let clock = ContinuousClock()
        let start = clock.now
        do {
          _ = try run()
          return (false, "FAIL  stall \(actor.name): the forward returned without an error")
        } catch CUDABackendError.watchdog(let failedGPU, let role, let phase, _, _, _, _) {
          let elapsed = (clock.now - start).components
          let seconds = Double(elapsed.seconds) + Double(elapsed.attoseconds) / 1e18
          let expectedGPU = group?.devices[p - 1].index ?? gpu
          // The stalled actor gives up at half the bound; allow the whole bound plus 1 s for the
          // host's synchronisation and error read-back.
          let ok = role == actor.role && failedGPU == expectedGPU && seconds < Double(boundMs) / 1000 + 1
          // The next forward, on a fresh layer, must work and match the CPU backend.
          let fresh = try layer(stall: nil)()
          let close = Comparison(
            config: config, cpu: reference.values, cpuRouting: reference.routing, logits: reference.logits,
            gpu: fresh.values, gpuRouting: fresh.routing
          ).passes(config)
          let pass = ok && close
          return (pass, "\(pass ? "PASS" : "FAIL")  stall \(actor.name)@GPU \(expectedGPU): error after \(formatFixed(seconds, 2)) s naming the \(role) in phase \(phase) on GPU \(failedGPU); the next forward on a fresh layer \(close ? "matches" : "does NOT match") the CPU")
        }
      }
    }
    try tally.finish()
  }
}

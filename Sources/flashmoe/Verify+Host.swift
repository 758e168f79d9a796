import Dispatch
import FlashMoE
import Synchronization

extension Verify {
  /// A layer whose workspace cannot fit (2M tokens of 8192 fp32 values: about 270 GB, of which
  /// input and output are 134 GB) is refused with `outOfMemory` before anything is allocated:
  /// device memory in use is unchanged. The token count keeps the Scheduler's shared-memory row
  /// bitmap (one byte per 128-row tile, 31 KB here) within the block's limit, so that the memory
  /// check is what refuses it.
  func memoryRefusal() throws -> (ok: Bool, text: String) {
    let config = MoEConfig(tokens: 64, hidden: 8192, ffn: 256, experts: 8, topK: 2)
    let maxTokens = 2_000_000
    let probe = try CUDAMoE(config: config, weights: .random(config, seed: 1), deviceIndex: gpu)
    let before = try probe.memoryInUse()
    do {
      _ = try CUDAMoE(config: config, weights: .random(config, seed: 1), maxTokens: maxTokens, deviceIndex: gpu)
      return (false, "FAIL  out-of-memory refusal: a \(maxTokens)-token fp32 workspace of H = 8192 was accepted")
    } catch let error as CUDABackendError {
      guard case .outOfMemory = error else { return (false, "FAIL  out-of-memory refusal: \(error)") }
      let after = try probe.memoryInUse()
      let ok = after <= before + (1 << 20)
      return (ok, "\(ok ? "PASS" : "FAIL")  out-of-memory refusal: \(error) — device memory in use \(before) → \(after) bytes")
    }
  }

  /// 32 forwards from 8 threads at once on one layer, 8 distinct inputs: each result must equal
  /// that input's sequential result (the engine serialises forwards on its shared buffers).
  func concurrentForwards() throws -> (ok: Bool, text: String) {
    let config = MoEConfig(tokens: 256, hidden: 256, ffn: 256, experts: 8, topK: 2, dtype: .bf16)
    let engine = try CUDAMoE(config: config, weights: .random(config, seed: 8), deviceIndex: gpu)
    let inputs = (0..<8).map { i -> [Float] in
      var rng = SeededGenerator(seed: 100 + UInt64(i))
      var x = rng.normals(config.tokens * config.hidden)
      x.round(to: .bf16)
      return x
    }
    let expected = try inputs.map { try engine.forward($0, tokens: config.tokens) }
    let wrong = Mutex(0)
    DispatchQueue.concurrentPerform(iterations: 32) { j in
      let i = j % inputs.count
      let values = try? engine.forward(inputs[i], tokens: config.tokens)
      if values != expected[i] { wrong.withLock { $0 += 1 } }
    }
    let distinct = Set(expected.map { $0.map(\.bitPattern) }).count == inputs.count
    let failures = wrong.withLock { $0 }
    let ok = failures == 0 && distinct
    return (ok, "\(ok ? "PASS" : "FAIL")  32 forwards from 8 threads at once, 8 distinct inputs: \(failures) wrong results")
  }
}

import ArgumentParser
import CUDADriver
import FlashMoE
import MoELaunch

/// `run --launcher env`: one forward of a multi-process job (one process per GPU over NVSHMEM).
/// The batch is P·S tokens — `--input`'s rows (P must divide them) or P·`--tokens` random ones from
/// `--seed` — and rank r runs rows r·S ..< (r+1)·S on GPU LOCAL_RANK, then prints its own report.
extension Run {
  func runRanked(_ place: LaunchEnvironment, timeout: Duration) throws {
    guard output == nil else {
      throw ConfigError(field: "output", value: "'\(output!)'", expected: "not with --launcher env yet (each rank holds only its own rows)")
    }
    let p = place.worldSize, r = place.rank
    let prepared = try prepare()
    var config = prepared.config
    let all: [Float]
    if input != nil {
      guard config.tokens % p == 0 else {
        throw ConfigError(field: "input", value: "\(config.tokens) rows", expected: "a multiple of the \(p) ranks (each runs an equal share)")
      }
      config.tokens /= p
      all = prepared.input
    } else {
      var rng = SeededGenerator(seed: seed &+ 1)
      all = rng.normals(p * config.tokens * config.hidden)
    }
    let h = config.hidden, s = config.tokens
    let mine = Array(all[r * s * h..<(r + 1) * s * h])
    let gpu = try place.gpuIndex(visibleGPUs: try Driver.shared().deviceCount())
    let job = try NVSHMEMJob.start(
      rank: r, worldSize: p, gpu: gpu, heapBytes: CUDAMoERank.symmetricBytes(config: config, ranks: p), barrierTimeout: timeout
    ) { payload in try Rendezvous.exchange(place, payload: payload, timeout: timeout) }
    try runInJob(job) {
      let engine = try CUDAMoERank(config: config, weights: prepared.weights, job: job)
      let clock = ContinuousClock()
      let start = clock.now
      let values = try engine.forward(mine, tokens: s)
      let elapsed = (clock.now - start).components
      let routing = try engine.lastRouting(tokens: s)
      try job.finish()
      let kept = routing.row.filter { $0 >= 0 }.count
      print("""
        rank \(r) of \(p): GPU \(gpu) \(engine.engine.device.name), NVSHMEM \(job.nvshmemVersion), tokens \(r * s)..<\((r + 1) * s) of \(p * s): S=\(s) H=\(h) D=\(config.ffn) E=\(config.experts) k=\(config.topK) \(config.dtype.rawValue)
        time \(formatFixed((Double(elapsed.seconds) + Double(elapsed.attoseconds) / 1e18) * 1e3, 3)) ms (one forward, host to host: upload, kernel, barrier, download)
        pairs kept \(kept), dropped \(routing.row.count - kept)
        checksum \(Checksum(values))
        """)
    }
  }
}

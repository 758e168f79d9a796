import ArgumentParser
import CUDADriver
import FlashMoE
import MoELaunch

/// `bench --launcher env`: one process per GPU over NVSHMEM (issue #6 §5). Every rank times its own
/// kernel with CUDA events (a barrier after each forward, outside the timed span) and prints its
/// median; the job's forward time is the slowest rank's, which rank 0 cannot see: read every
/// rank's line (`flashmoe launch` prefixes them).
extension Bench {
  func runRanked(_ place: LaunchEnvironment, config: MoEConfig, tokenCounts: [Int], timeout: Duration) throws {
    let gpu = try place.gpuIndex(visibleGPUs: try Driver.shared().deviceCount())
    let p = place.worldSize
    let job = try NVSHMEMJob.start(
      rank: place.rank, worldSize: p, gpu: gpu, heapBytes: CUDAMoERank.symmetricBytes(config: config, ranks: p), barrierTimeout: timeout
    ) { payload in try Rendezvous.exchange(place, payload: payload, timeout: timeout) }
    try runInJob(job) {
      let weights = MoEWeights.random(config, seed: seed)
      let engine = try CUDAMoERank(config: config, weights: weights, job: job)
      let warmup = self.warmup ?? 32, runs = self.runs ?? 32
      // The same tokens as `bench --gpus P` draws: rank r's block of the P·S.
      var rng = SeededGenerator(seed: seed &+ 1)
      let input = rng.normals(p * config.tokens * config.hidden)
      var rows: [[String]] = [["S/GPU", "median ms", "mean ms", "min ms"]]
      for tokens in tokenCounts {
        let start = place.rank * config.tokens * config.hidden
        let mine = Array(input[start..<start + tokens * config.hidden])
        let times = try engine.time(mine, tokens: tokens, warmup: warmup, runs: runs).sorted()
        let median = times.count % 2 == 1 ? times[times.count / 2] : (times[times.count / 2 - 1] + times[times.count / 2]) / 2
        rows.append([String(tokens), formatFixed(median, 3), formatFixed(times.reduce(0, +) / Double(times.count), 3), formatFixed(times[0], 3)])
      }
      try job.finish()
      print("rank \(place.rank) of \(p): GPU \(gpu) \(engine.engine.device.name), NVSHMEM \(job.nvshmemVersion), \(engine.transport == .nvshmem ? "NVSHMEM puts" : "peer pointers (nvshmem_ptr)"), one process per GPU, \(warmup) warm-up + \(runs) timed, CUDA events on this rank")
      print(table(rows))
    }
  }
}

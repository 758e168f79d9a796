import CUDADriver
import FlashMoE
import MoELaunch

#if canImport(Glibc)
import Glibc
#endif

extension Verify {
  /// `verify --launcher env --faults` (issue #6 §3, issue #7 §6 with processes): each actor made to
  /// stall on the last rank must make every rank's forward fail within the watchdog bound — the
  /// stalled rank with an error naming that actor, the others stopped by its abort word — and a
  /// fresh layer must then run and match the CPU backend on every rank. Last, the last rank leaves
  /// the job without a word: every other rank must report the lost rank within
  /// `--rendezvous-timeout` at its next barrier, never hang.
  func runRankedFaults(_ place: LaunchEnvironment) throws {
    let boundMs = 2000
    let gpu = try place.gpuIndex(visibleGPUs: try Driver.shared().deviceCount())
    let p = place.worldSize, r = place.rank, last = p - 1
    let config = MoEConfig(tokens: 1000, hidden: 256, ffn: 256, experts: 8, topK: 2, dtype: .bf16)
    var weights = MoEWeights.random(config, seed: seed ?? 7)
    weights.round(to: config.dtype)
    var rng = SeededGenerator(seed: (seed ?? 7) &+ 1)
    var input = rng.normals(p * config.tokens * config.hidden)
    input.round(to: .bf16)
    let mine = Array(input[r * config.tokens * config.hidden..<(r + 1) * config.tokens * config.hidden])
    let timeout = try launcherOptions.timeout()
    let heap = 4 * CUDAMoERank.symmetricBytes(config: config, ranks: p)
    let job = try NVSHMEMJob.start(rank: r, worldSize: p, gpu: gpu, heapBytes: heap, barrierTimeout: timeout) { payload in
      try Rendezvous.exchange(place, payload: payload, timeout: timeout)
    }
    let seconds = { (d: Duration) in Double(d.components.seconds) + Double(d.components.attoseconds) / 1e18 }
    try runInJob(job) {
      print("verify --faults: rank \(r) of \(p) on GPU \(gpu), NVSHMEM \(job.nvshmemVersion), stalls on rank \(last), watchdog bound \(boundMs) ms")
      var tally = Tally()
      var caseSeed = (seed ?? 7) &+ 100
      let actors: [(name: String, role: String)] =
        [("gate", "gate"), ("processor", "Processor"), ("scheduler", "Scheduler"), ("subscriber", "Subscriber")]
      for actor in actors {
        caseSeed &+= 1
        let freshSeed = caseSeed
        tally.check("stall \(actor.name)@\(last)") {
          let engine = try CUDAMoERank(
            config: config, weights: weights, job: job, debugStall: try DebugStall.parse("\(actor.name)@\(last)"), watchdogMs: boundMs)
          let clock = ContinuousClock()
          let start = clock.now
          var what = "the forward returned without an error"
          var ok = false
          do {
            _ = try engine.forward(mine, tokens: config.tokens, poison: true)
          } catch CUDABackendError.watchdog(let failedGPU, let role, let phase, _, _, _, _) {
            what = "an error naming the \(role) in phase \(phase) on GPU \(failedGPU)"
            ok = r == last && role == actor.role && failedGPU == gpu
          } catch CUDABackendError.peerAborted(let stoppedGPU) {
            what = "stopped by a peer's abort on GPU \(stoppedGPU)"
            ok = r != last && stoppedGPU == gpu
          } catch {
            what = "an unexpected error (\(error))"
          }
          let elapsed = seconds(clock.now - start)
          ok = ok && elapsed < Double(boundMs) / 1000 + 1
          // The fresh layer's own failure is reported beside what the stalled forward did, not
          // instead of it.
          let fresh = Result { try GroupCase.base("fresh layer").runRanked(seed: freshSeed, job: job, threads: nil) }
          let freshOK = (try? fresh.get().ok) ?? false
          let freshText: String
          switch fresh {
          case .success(let f): freshText = f.ok ? "matches the CPU" : "does NOT match the CPU"
          case .failure(let error): freshText = "failed: \(error)"
          }
          let pass = ok && freshOK
          return (pass, "\(pass ? "PASS" : "FAIL")  stall \(actor.name)@rank \(last), seen on rank \(r): \(what) after \(formatFixed(elapsed, 2)) s; the next forward on a fresh layer \(freshText)")
        }
      }
      // The last rank leaves without finalizing (as a killed process would); the others must
      // report it at their next barrier within the bound.
      try job.barrier("the barrier before a rank leaves")
      if r == last {
        print("rank \(r) leaves the job now (exit 0, NVSHMEM not finalized)")
        try tally.finish()
        fflush(nil)
        _exit(0)
      }
      tally.check("rank \(last) leaves") {
        let clock = ContinuousClock()
        let start = clock.now
        do {
          try job.barrier("the barrier after rank \(last) left")
          return (false, "FAIL  rank \(last) left the job; rank \(r)'s barrier returned: the lost rank was not noticed")
        } catch CUDABackendError.ranksLost(let rank, let worldSize, let step, let bound) {
          let elapsed = seconds(clock.now - start)
          let ok = rank == r && worldSize == p && elapsed < bound + 5
          return (ok, "\(ok ? "PASS" : "FAIL")  rank \(last) left the job; rank \(r) reported that not every rank reached \(step) after \(formatFixed(elapsed, 1)) s (bound \(formatFixed(bound, 0)) s)")
        }
      }
      try tally.finish()
      // NVSHMEM is stuck at the lost barrier on another thread: leave without finalizing it.
      fflush(nil)
      _exit(0)
    }
  }
}

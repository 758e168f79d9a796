import FlashMoE

#if canImport(Glibc)
import Glibc
#endif

/// The multi-process subcommands' work, with one rule on the way out: once a barrier timed out
/// (`NVSHMEMJob.isBroken`) NVSHMEM is blocked in another thread, so a normal exit — whose atexit
/// handlers may call into NVSHMEM — could hang; the process reports and leaves with _exit(1).
func runInJob<R>(_ job: NVSHMEMJob, _ body: () throws -> R) throws -> R {
  do {
    let result = try body()
    if job.isBroken { leaveBroken(nil) }
    return result
  } catch {
    if job.isBroken { leaveBroken(error) }
    throw error
  }
}

private func leaveBroken(_ error: (any Error)?) -> Never {
  if let error { writeStandardError("Error: \(error)\n") }
  writeStandardError("flashmoe: the job lost a rank; leaving without finalizing NVSHMEM\n")
  fflush(nil)  // every C stream: what verify and bench printed so far
  _exit(1)
}

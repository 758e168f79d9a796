import MoECore

/// Why the CUDA backend failed or refused a layer.
public enum CUDABackendError: Error, CustomStringConvertible, Sendable, Equatable {
  /// A spin-wait in the kernel passed its bound: which GPU, which actor, in which phase, what it
  /// waited for and what it saw.
  case watchdog(gpu: Int, role: String, phase: String, block: Int, awaited: UInt64, observed: UInt64, elapsedMs: Double)
  /// The layer's shape is one the kernel does not support.
  case unsupported(field: String, value: String, expected: String)
  /// The kernel's layout does not match what the host computed (a build inconsistency).
  case layoutMismatch(String)
  /// This GPU's kernel stopped because a peer GPU gave up (its error is the one to report).
  case peerAborted(gpu: Int)
  /// The layer does not fit in the GPU's free memory (checked before anything is allocated).
  case outOfMemory(gpu: Int, needed: Int, available: Int, weights: Int, workspace: Int)
  /// A multi-process job: the other ranks did not reach a collective step in time.
  case ranksLost(rank: Int, worldSize: Int, step: String, seconds: Double)

  public var description: String {
    switch self {
    case .watchdog(let gpu, let role, let phase, let block, let awaited, let observed, let ms):
      return "GPU \(gpu): the \(role) (block \(block)) waited \(formatMs(ms)) ms in phase \(phase) for \(awaited) and saw \(observed); the kernel was stopped by its watchdog"
    case .unsupported(let field, let value, let expected):
      return "the CUDA backend cannot run \(field) = \(value): expected \(expected)"
    case .layoutMismatch(let message):
      return "kernel/host layout mismatch: \(message)"
    case .peerAborted(let gpu):
      return "GPU \(gpu): stopped because another GPU of the group gave up (that GPU's error names the actor)"
    case .outOfMemory(let gpu, let needed, let available, let weights, let workspace):
      return "GPU \(gpu): the layer needs \(needed) bytes (weights \(weights), workspace \(workspace)) but \(available) bytes are free; use fewer tokens per call (max-tokens), fewer experts per GPU (more GPUs) or a capacity factor instead of dropless"
    case .ranksLost(let rank, let worldSize, let step, let seconds):
      return "rank \(rank) of \(worldSize): not every rank reached \(step) within \(Int(seconds.rounded())) s (a rank stopped, stalled or failed); this process leaves the job"
    }
  }
}

private func formatMs(_ ms: Double) -> String { String(Int(ms.rounded())) }

extension CUDABackendError {
  static func roleName(_ code: UInt32) -> String {
    switch code {
    case 1: return "gate"
    case 2: return "Processor"
    case 3: return "Scheduler"
    case 4: return "Subscriber"
    case 5: return "grid barrier"
    default: return "actor \(code)"
    }
  }

  static func phaseName(_ code: UInt32) -> String {
    switch code {
    case 1: return "gate"
    case 2: return "capacity scan"
    case 3: return "slot assignment"
    case 4: return "tasks"
    case 5: return "drain"
    case 6: return "dispatch"
    case 7: return "combine"
    case 8: return "stall (FLASHMOE_DEBUG_STALL)"
    case 9: return "operand arrival (TMA)"
    default: return "phase \(code)"
    }
  }
}

import MoECPU

/// Which engine runs the layer.
public enum BackendChoice: String, NamedOption {
  /// CUDA where a usable GPU exists, else the CPU.
  case auto
  case cpu
  case cuda
}

/// Why a backend can or cannot run on this machine.
public struct BackendStatus: Sendable, Codable, Equatable {
  public let name: String
  public let available: Bool
  public let detail: String
}

/// A backend that was asked for and cannot run here.
public struct BackendUnavailable: Error, CustomStringConvertible, Sendable {
  public let backend: String
  public let reason: String
  public var description: String { "backend \(backend) is not available: \(reason)" }
}

public enum Backends {
  /// Every backend and whether it can run here, with the reason when it cannot.
  public static func status(threads: Int? = nil) -> [BackendStatus] {
    let cpu: BackendStatus
    do {
      let backend = try CPUBackend(threads: threads ?? CPUFeatures.activeCores)
      cpu = BackendStatus(name: "cpu", available: true, detail: "pure Swift, AVX2+FMA GEMMs on \(backend.threads) thread(s)")
    } catch {
      cpu = BackendStatus(name: "cpu", available: false, detail: error.description)
    }
    return [cpu, cudaStatus]
  }

  static let cudaStatus = BackendStatus(
    name: "cuda", available: false,
    detail: "this build has no CUDA backend yet (the persistent-kernel backend is FlashMoE issue #3)")

  /// Resolves `auto` to the best backend that can run here.
  static func resolve(_ choice: BackendChoice) throws -> BackendChoice {
    switch choice {
    case .cpu: return .cpu
    case .cuda: throw BackendUnavailable(backend: "cuda", reason: cudaStatus.detail)
    case .auto: return cudaStatus.available ? .cuda : .cpu
    }
  }
}

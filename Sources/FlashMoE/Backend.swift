import CUDADriver
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

  /// Whether the CUDA backend can run: libcuda loads, a GPU is visible, NVRTC and the CUDA headers
  /// are found. The detail says what is missing and where it was looked for.
  static var cudaStatus: BackendStatus {
    do {
      let driver = try Driver.shared()
      let count = try driver.deviceCount()
      guard count > 0 else {
        return BackendStatus(name: "cuda", available: false, detail: "libcuda loaded (\(driver.libraryPath)) but no GPU is visible")
      }
      let nvrtc = try NVRTC.shared()
      if let problem = nvrtc.includeError {
        return BackendStatus(name: "cuda", available: false, detail: "CUDA headers not found: \(problem)")
      }
      let names = try driver.devices().map { "\($0.index): \($0.name) (\($0.multiprocessorCount) SMs, cc \($0.computeCapability))" }
      return BackendStatus(
        name: "cuda", available: true,
        detail: "driver \(driver.versionString), NVRTC \(nvrtc.version) at \(nvrtc.libraryPath); GPUs \(names.joined(separator: ", "))")
    } catch {
      return BackendStatus(name: "cuda", available: false, detail: "\(error)")
    }
  }

  /// Resolves `auto` to the best backend that can run here.
  public static func resolve(_ choice: BackendChoice) throws -> BackendChoice {
    switch choice {
    case .cpu: return .cpu
    case .cuda:
      let status = cudaStatus
      if !status.available { throw BackendUnavailable(backend: "cuda", reason: status.detail) }
      return .cuda
    case .auto: return cudaStatus.available ? .cuda : .cpu
    }
  }
}

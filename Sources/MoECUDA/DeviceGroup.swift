import CUDADriver
import MoECore

/// The GPUs one process drives for expert parallelism (issue #4): one context per GPU, peer access
/// enabled between every ordered pair so kernels can store into each other's memory over NVLink.
///
/// Expert e lives on GPU ⌊e · P / E⌋ (contiguous blocks of E / P experts); E must divide by P.
public final class DeviceGroup: @unchecked Sendable {
  public let devices: [Device]
  let contexts: [Context]

  /// Why a group cannot be formed.
  public enum Problem: Error, CustomStringConvertible, Equatable, Sendable {
    case noSuchGPU(index: Int, count: Int)
    case duplicate(index: Int)
    case noPeerAccess(from: Int, to: Int, fromName: String, toName: String)
    case expertsNotDivisible(experts: Int, gpus: Int)

    public var description: String {
      switch self {
      case .noSuchGPU(let index, let count):
        return "GPU \(index) does not exist: \(count) GPU(s) are visible (indices 0...\(max(count - 1, 0)))"
      case .duplicate(let index):
        return "GPU \(index) is listed twice in --gpus"
      case .noPeerAccess(let from, let to, let fromName, let toName):
        return "GPU \(from) (\(fromName)) cannot access GPU \(to) (\(toName)) as a peer (cuDeviceCanAccessPeer = 0): the layer needs every pair connected (NVLink or PCIe P2P)"
      case .expertsNotDivisible(let experts, let gpus):
        return "invalid experts = \(experts) for \(gpus) GPUs: expected a multiple of \(gpus) (each GPU holds E / P experts)"
      }
    }
  }

  /// - Parameter indices: the GPUs to use, in rank order (rank r is `indices[r]`).
  public init(indices: [Int]) throws {
    let driver = try Driver.shared()
    let count = try driver.deviceCount()
    var seen = Set<Int>()
    for index in indices {
      guard index >= 0, index < count else { throw Problem.noSuchGPU(index: index, count: count) }
      guard seen.insert(index).inserted else { throw Problem.duplicate(index: index) }
    }
    let devices = try indices.map { try driver.device($0) }
    for a in devices {
      for b in devices where a.index != b.index {
        guard try a.canAccessPeer(b) else {
          throw Problem.noPeerAccess(from: a.index, to: b.index, fromName: a.name, toName: b.name)
        }
      }
    }
    let contexts = try devices.map { try Context(device: $0) }
    for a in contexts {
      for b in contexts where a !== b { try a.enablePeerAccess(to: b) }
    }
    self.devices = devices
    self.contexts = contexts
  }

  /// Every visible GPU.
  public static func all() throws -> DeviceGroup {
    try DeviceGroup(indices: Array(0..<Driver.shared().deviceCount()))
  }

  public var count: Int { devices.count }

  /// The rank (position in the group) of the GPU that owns expert `e`.
  public static func owner(ofExpert e: Int, experts: Int, gpus: Int) -> Int { e * gpus / experts }

  /// Checks that `config` can be spread over this group.
  public func check(_ config: MoEConfig) throws {
    if config.experts % count != 0 { throw Problem.expertsNotDivisible(experts: config.experts, gpus: count) }
  }
}

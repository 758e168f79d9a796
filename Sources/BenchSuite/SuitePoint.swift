import MoECore

/// Which of the paper's sweeps a point belongs to (one point can serve several).
public enum Sweep: String, Codable, CaseIterable, Comparable, Sendable {
  /// Latency vs tokens per GPU (Figure 8).
  case tokens
  /// Latency vs experts (Figure 12).
  case experts
  /// Latency, throughput and weak-scaling efficiency vs GPUs (Figures 10 and 11).
  case gpus

  public static func < (a: Sweep, b: Sweep) -> Bool {
    allCases.firstIndex(of: a)! < allCases.firstIndex(of: b)!
  }
}

/// One measurement: a layer shape, its dtype and the GPUs it is spread over.
public struct SuitePoint: Codable, Hashable, Sendable, CustomStringConvertible {
  public var dtype: DType
  public var gpus: Int
  public var tokensPerGPU: Int
  public var experts: Int

  public init(dtype: DType, gpus: Int, tokensPerGPU: Int, experts: Int) {
    self.dtype = dtype
    self.gpus = gpus
    self.tokensPerGPU = tokensPerGPU
    self.experts = experts
  }

  /// The engine a point needs: points that share it are timed with one compiled layer.
  public var layer: LayerKey { LayerKey(dtype: dtype, gpus: gpus, experts: experts) }

  public var description: String { "\(dtype.rawValue) P=\(gpus) T=\(tokensPerGPU) E=\(experts)" }
}

/// What a compiled layer (or expert-parallel group) is specialised for; tokens are a run-time
/// argument up to the largest token count of its points.
public struct LayerKey: Hashable, Sendable {
  public var dtype: DType
  public var gpus: Int
  public var experts: Int

  public init(dtype: DType, gpus: Int, experts: Int) {
    self.dtype = dtype
    self.gpus = gpus
    self.experts = experts
  }
}

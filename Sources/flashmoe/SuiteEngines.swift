import BenchSuite
import FlashMoE

/// Times FlashMoE at the suite's points with the backend that runs here.
///
/// One engine lives at a time: the plan orders points so that those sharing a layer (dtype, GPUs,
/// experts) come together, and a GPU layer serves every token count up to its `maxTokens`, so each
/// shape is compiled once and the previous engine's device memory is freed before the next.
final class SuiteEngines {
  enum Engine {
    case cpu(MoEWeights)
    case gpu(CUDAMoE)
    case group(CUDAMoEGroup)
  }

  let backend: BackendChoice
  /// The layer's semantics (activation, form, biases, capacity, fp32 math); sizes come from `grid`.
  let template: MoEConfig
  let grid: SuiteGrid
  /// P-GPU points run on the first P of these.
  let gpuIndices: [Int]
  let threads: Int?
  let seed: UInt64
  let warmup: Int, runs: Int
  private var current: (key: LayerKey, maxTokens: Int, engine: Engine, input: [Float])?
  /// A layer whose engine could not be built fails its other points at once, without a rebuild.
  private var failed: (key: LayerKey, error: any Error)?

  init(
    backend: BackendChoice, template: MoEConfig, grid: SuiteGrid, gpuIndices: [Int], threads: Int?, seed: UInt64,
    warmup: Int, runs: Int
  ) {
    self.backend = backend
    self.template = template
    self.grid = grid
    self.gpuIndices = gpuIndices
    self.threads = threads
    self.seed = seed
    self.warmup = warmup
    self.runs = runs
  }

  /// The configuration of `layer` at `tokens` per GPU; tf32 math only where the storage is fp32.
  func config(_ layer: LayerKey, tokens: Int) throws(ConfigError) -> MoEConfig {
    var c = template
    c.tokens = tokens
    c.hidden = grid.hidden
    c.ffn = grid.ffn
    c.experts = layer.experts
    c.topK = grid.topK
    c.dtype = layer.dtype
    c.math = layer.dtype == .fp32 ? template.math : .fp32
    try c.validate()
    return c
  }

  /// Every layer of `plan` checked before any work: a shape the backend cannot take fails here.
  func check(_ plan: SuitePlan) throws {
    for planned in plan.points {
      let c = try config(planned.point.layer, tokens: plan.maxTokens(for: planned.point.layer))
      if backend == .cuda { try CUDAMoE.checkSupported(c) }
    }
  }

  func measure(_ point: SuitePoint, maxTokens: Int) throws -> Measurement {
    let (engine, input, rows) = try prepare(point.layer, maxTokens: maxTokens)
    let t = point.tokensPerGPU, h = grid.hidden
    switch engine {
    case .cpu(let weights):
      let layer = try MoELayer(config: try config(point.layer, tokens: t), weights: weights, backend: .cpu, threads: threads)
      let slice = Array(input[0..<(t * h)])
      var times: [Double] = []
      for i in 0..<(warmup + runs) {
        let seconds = try layer.forward(slice).seconds
        if i >= warmup { times.append(seconds * 1e3) }
      }
      return Measurement(milliseconds: times, card: "CPU (\(threads ?? CPUFeatures.activeCores) threads)")
    case .gpu(let engine):
      let times = try engine.time(Array(input[0..<(t * h)]), tokens: t, warmup: warmup, runs: runs)
      return Measurement(milliseconds: times, card: engine.device.name)
    case .group(let engine):
      // GPU r's tokens are rows r·rows ..< r·rows + T of the layer's input.
      var slice: [Float] = []
      for r in 0..<point.gpus { slice += input[(r * rows) * h..<(r * rows + t) * h] }
      let times = try engine.time(slice, tokensPerGPU: t, warmup: warmup, runs: runs)
      return Measurement(milliseconds: times, card: engine.engines[0].device.name)
    }
  }

  /// Frees the current engine's device memory (before the baseline runs on the same GPUs).
  func release() {
    current = nil
  }

  /// The engine for `layer`, built when the layer changes (the old one released first).
  private func prepare(_ layer: LayerKey, maxTokens: Int) throws -> (engine: Engine, input: [Float], rows: Int) {
    if let current, current.key == layer, current.maxTokens >= maxTokens {
      return (current.engine, current.input, current.maxTokens)
    }
    if let failed, failed.key == layer { throw failed.error }
    current = nil
    do {
      let built = try build(layer, maxTokens: maxTokens)
      current = (layer, maxTokens, built.0, built.1)
      return (built.0, built.1, maxTokens)
    } catch {
      failed = (layer, error)
      throw error
    }
  }

  private func build(_ layer: LayerKey, maxTokens: Int) throws -> (Engine, [Float]) {
    let c = try config(layer, tokens: maxTokens)
    let weights = MoEWeights.random(c, seed: seed)
    var rng = SeededGenerator(seed: seed &+ 1)
    let input = rng.normals(layer.gpus * maxTokens * c.hidden)
    let engine: Engine
    switch (backend, layer.gpus) {
    case (.cuda, 1): engine = .gpu(try CUDAMoE(config: c, weights: weights, maxTokens: maxTokens, deviceIndex: gpuIndices[0]))
    case (.cuda, let p):
      let group = try DeviceGroup(indices: Array(gpuIndices[0..<p]))
      engine = .group(try CUDAMoEGroup(config: c, weights: weights, group: group, maxTokens: maxTokens))
    case (_, 1): engine = .cpu(weights)
    case (_, let p): throw ConfigError(field: "gpus", value: p, expected: "1 on the CPU backend")
    }
    return (engine, input)
  }
}

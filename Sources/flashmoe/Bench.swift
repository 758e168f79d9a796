import ArgumentParser
import FlashMoE

struct Bench: ParsableCommand {
  static let configuration = CommandConfiguration(
    abstract: "Time the forward pass: warm-up, then the median of timed runs, with achieved GFLOP/s.",
    discussion: """
      GFLOP/s counts 2 FLOPs per multiply-add of the gate and of the expert GEMMs on the kept pairs.
      scripts/cpu_vs_numpy.sh runs this next to numpy's sgemm and prints the ratio.
      """)

  @OptionGroup var shape: ShapeOptions
  @OptionGroup var layer: LayerOptions
  @OptionGroup var backendOptions: BackendOptions
  @OptionGroup var display: DisplayOptions
  @Option(help: "Seed for random weights and tokens.") var seed: UInt64 = 1
  @Option(help: "Untimed runs first.") var warmup: Int = 2
  @Option(help: "Timed runs.") var runs: Int = 10

  func validate() throws {
    guard warmup >= 0 else { throw ConfigError(field: "warmup", value: warmup, expected: "≥ 0") }
    guard runs >= 1 else { throw ConfigError(field: "runs", value: runs, expected: "≥ 1") }
    _ = try layer.config(
      tokens: shape.tokens, hidden: shape.hidden, ffn: shape.ffn, experts: shape.experts, topK: shape.topk)
  }

  func run() throws {
    let config = try layer.config(
      tokens: shape.tokens, hidden: shape.hidden, ffn: shape.ffn, experts: shape.experts, topK: shape.topk)
    let progress = Progress(quiet: display.quiet)
    progress.update("drawing random weights…")
    let moe = try MoELayer(
      config: config, weights: .random(config, seed: seed), backend: try backendOptions.choice(),
      threads: try backendOptions.threadCount())
    var rng = SeededGenerator(seed: seed &+ 1)
    let input = rng.normals(config.tokens * config.hidden)

    var times: [Double] = []
    var kept = 0
    for i in 0..<(warmup + runs) {
      progress.update(i < warmup ? "warm-up \(i + 1)/\(warmup)" : "run \(i - warmup + 1)/\(runs)")
      let result = try moe.forward(input)
      kept = result.routing.keptPairs
      if i >= warmup { times.append(result.seconds) }
    }
    progress.finish()
    let report = BenchReport(backend: moe.backend.rawValue, config: config, threads: try backendOptions.threadCount() ?? CPUFeatures.activeCores, times: times, keptPairs: kept)
    print(display.json ? try jsonString(report) : report.text)
  }
}

struct BenchReport: Encodable {
  let backend: String
  let config: MoEConfig
  let threads: Int
  let runs: Int
  let medianMs: Double
  let meanMs: Double
  let minMs: Double
  let gflops: Double
  let tokensPerSecond: Double
  let keptPairs: Int

  init(backend: String, config: MoEConfig, threads: Int, times: [Double], keptPairs: Int) {
    let sorted = times.sorted()
    let median = sorted.count % 2 == 1 ? sorted[sorted.count / 2] : (sorted[sorted.count / 2 - 1] + sorted[sorted.count / 2]) / 2
    self.backend = backend
    self.config = config
    self.threads = threads
    runs = times.count
    medianMs = median * 1e3
    meanMs = times.reduce(0, +) / Double(times.count) * 1e3
    minMs = sorted[0] * 1e3
    gflops = config.flops(routedPairs: keptPairs) / median / 1e9
    tokensPerSecond = Double(config.tokens) / median
    self.keptPairs = keptPairs
  }

  var text: String {
    let head = "\(backend), \(threads) thread(s): S=\(config.tokens) H=\(config.hidden) D=\(config.ffn) E=\(config.experts) k=\(config.topK) \(config.dtype.rawValue)\(config.math == .tf32 ? "/tf32" : "") \(config.expertForm.rawValue)"
    return head + "\n" + table([
      ["runs", "median ms", "mean ms", "min ms", "GFLOP/s", "tokens/s"],
      ["\(runs)", formatFixed(medianMs, 3), formatFixed(meanMs, 3), formatFixed(minMs, 3), formatFixed(gflops, 1), formatFixed(tokensPerSecond, 0)],
    ])
  }
}

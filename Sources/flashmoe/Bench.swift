import ArgumentParser
import BenchSuite
import FlashMoE
import MoELaunch

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
  @OptionGroup var suite: SuiteOptions
  @OptionGroup var launcherOptions: LauncherOptions
  @Option(help: "Seed for random weights and tokens.") var seed: UInt64 = 1
  @Option(help: "Untimed runs first (default: 2 on the CPU, 32 on a GPU, the paper's protocol).") var warmup: Int?
  @Option(help: "Timed runs (default: 10 on the CPU, 32 on a GPU).") var runs: Int?
  @Option(parsing: .upToNextOption, help: "Token counts to sweep with one GPU layer (e.g. 4096 8192 16384).")
  var sweepTokens: [Int] = []
  @Option(help: "GPU index.") var gpu: Int = 0
  @Option(help: "Expert parallelism: a GPU count (2 = GPUs 0,1) or a list such as 0,1; S is then per GPU.")
  var gpus: String?
  @Flag(help: "After timing, run one more forward per size with the kernel's timeline recorded and print it (CUDA).")
  var trace = false
  @Flag(help: "Diagnostic (one GPU): also time the forwards enqueued back to back, each launched while the one before runs, and the host's launch call.")
  var pipelined = false

  func validate() throws {
    if let warmup, warmup < 0 { throw ConfigError(field: "warmup", value: warmup, expected: "≥ 0") }
    if let runs, runs < 1 { throw ConfigError(field: "runs", value: runs, expected: "≥ 1") }
    for s in sweepTokens where s < 1 { throw ConfigError(field: "sweep-tokens", value: s, expected: "≥ 1") }
    _ = try parseGPUList(gpus)
    if pipelined, gpus != nil || suite.suite {
      throw ConfigError(field: "pipelined", value: "set", expected: "one GPU, outside the suite (not with --gpus or --suite)")
    }
    try validateSuite()
    _ = try layer.config(
      tokens: shape.tokens, hidden: shape.hidden, ffn: shape.ffn, experts: shape.experts, topK: shape.topk)
  }

  func run() throws {
    if suite.suite { return try runSuite() }
    let tokenCounts = sweepTokens.isEmpty ? [shape.tokens] : sweepTokens
    let config = try layer.config(
      tokens: tokenCounts.max()!, hidden: shape.hidden, ffn: shape.ffn, experts: shape.experts, topK: shape.topk)
    let progress = Progress(quiet: display.quiet)
    if let place = try launcherOptions.resolve(environment: LaunchEnvironment.processEnvironment()) {
      guard gpus == nil, !suite.suite, !trace else {
        throw ConfigError(field: gpus != nil ? "gpus" : suite.suite ? "suite" : "trace", value: "set", expected: "not with --launcher env")
      }
      return try runRanked(place, config: config, tokenCounts: tokenCounts, timeout: try launcherOptions.timeout())
    }
    if try Backends.resolve(backendOptions.choice()) == .cuda {
      try runGPU(config: config, tokenCounts: tokenCounts, progress: progress)
      return
    }
    let warmup = self.warmup ?? 2, runs = self.runs ?? 10
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

extension Bench {
  /// CUDA events around each forward (one cooperative launch), after warm-up; one layer serves
  /// every token count (S is a run-time argument).
  func runGPU(config: MoEConfig, tokenCounts: [Int], progress: Progress) throws {
    let warmup = self.warmup ?? 32, runs = self.runs ?? 32
    progress.update("compiling / loading the kernel…")
    let weights = MoEWeights.random(config, seed: seed)
    if let list = try parseGPUList(gpus) {
      try runGroup(config: config, weights: weights, indices: list, tokenCounts: tokenCounts, warmup: warmup, runs: runs, progress: progress)
      return
    }
    let engine = try CUDAMoE(config: config, weights: weights, deviceIndex: gpu)
    var reports: [BenchReport] = []
    var traces: [(Int, [KernelTrace])] = []
    var pipelinedLines: [String] = []
    var rng = SeededGenerator(seed: seed &+ 1)
    let input = rng.normals(config.tokens * config.hidden)
    let cpu = try CPUBackend(threads: try backendOptions.threadCount() ?? CPUFeatures.activeCores)
    for tokens in tokenCounts {
      progress.update("S=\(tokens): \(warmup) warm-up + \(runs) timed forwards")
      var c = config
      c.tokens = tokens
      let slice = Array(input[0..<(tokens * config.hidden)])
      let times = try engine.time(slice, tokens: tokens, warmup: warmup, runs: runs)
      if trace { traces.append((tokens, [try engine.trace(slice, tokens: tokens)])) }
      if pipelined {
        let (back, host) = try engine.timePipelined(slice, tokens: tokens, warmup: warmup, runs: runs)
        let mid = { (v: [Double]) in Timing(milliseconds: v)?.medianMs ?? .nan }
        pipelinedLines.append(
          "S=\(tokens) back to back: median \(formatFixed(mid(back), 3)) ms per forward (waiting for each: \(formatFixed(mid(times), 3)));"
            + " the host's launch call median \(formatFixed(mid(host), 1)) µs, max \(formatFixed(host.max() ?? .nan, 1))")
      }
      let kept = keptPairs(slice, config: c, weights: engine.roundedWeights, groups: 1, cpu: cpu)
      reports.append(BenchReport(backend: "cuda \(engine.device.name)", config: c, threads: engine.gridBlocks, times: times.map { $0 / 1e3 }, keptPairs: kept))
    }
    progress.finish()
    if display.json {
      print(try jsonString(reports))
    } else {
      print("GPU \(engine.gpuIndex): \(engine.device.name), grid \(engine.gridBlocks) blocks (\(engine.blocksPerSM)/SM) of \(engine.blockThreads / 128) warpgroup(s)\(engine.compile.kernel.spec.producer == true ? " (one a producer)" : "")\(engine.compile.kernel.spec.tmaOperands == true ? ", TMA operands" : ""), \(engine.registers) registers, \(engine.sharedBytes) B shared, kernel \(engine.compile.cacheHit ? "from cache" : "compiled in \(formatFixed(engine.compile.seconds, 1)) s")")
      print(table([["S", "median ms", "mean ms", "min ms", "TFLOP/s", "tokens/s"]] + reports.map {
        [String($0.config.tokens), formatFixed($0.medianMs, 3), formatFixed($0.meanMs, 3), formatFixed($0.minMs, 3), formatFixed($0.gflops / 1e3, 1), formatFixed($0.tokensPerSecond, 0)]
      }))
      printTraces(traces)
      for line in pipelinedLines { print(line) }
    }
  }
}

extension Bench {
  /// P GPUs, S tokens per GPU: the slowest GPU's CUDA-event time per forward.
  func runGroup(config: MoEConfig, weights: MoEWeights, indices: [Int], tokenCounts: [Int], warmup: Int, runs: Int, progress: Progress) throws {
    let group = try DeviceGroup(indices: indices)
    let engine = try CUDAMoEGroup(config: config, weights: weights, group: group)
    let p = group.count
    var rng = SeededGenerator(seed: seed &+ 1)
    let input = rng.normals(p * config.tokens * config.hidden)
    var reports: [BenchReport] = []
    var traces: [(Int, [KernelTrace])] = []
    let cpu = try CPUBackend(threads: try backendOptions.threadCount() ?? CPUFeatures.activeCores)
    for tokens in tokenCounts {
      progress.update("S=\(tokens) per GPU × \(p) GPUs: \(warmup) warm-up + \(runs) timed forwards")
      var slice: [Float] = []
      for r in 0..<p { slice += input[(r * config.tokens) * config.hidden..<(r * config.tokens + tokens) * config.hidden] }
      let times = try engine.time(slice, tokensPerGPU: tokens, warmup: warmup, runs: runs)
      if trace { traces.append((tokens, try engine.trace(tokensPerGPU: tokens))) }
      var c = config
      c.tokens = tokens
      // FLOPs per GPU: its share of the kept pairs.
      let kept = keptPairs(slice, config: c, weights: engine.engines[0].roundedWeights, groups: p, cpu: cpu)
      reports.append(BenchReport(backend: "cuda \(p)× \(engine.engines[0].device.name)", config: c, threads: engine.engines[0].gridBlocks,
                                 times: times.map { $0 / 1e3 }, keptPairs: kept / p))
    }
    progress.finish()
    if display.json {
      print(try jsonString(reports))
    } else {
      print("GPUs \(indices.map(String.init).joined(separator: ",")): \(p) × \(engine.engines[0].device.name), grid \(engine.engines[0].gridBlocks) blocks per GPU, S tokens per GPU")
      print(table([["S/GPU", "median ms", "mean ms", "min ms", "TFLOP/s/GPU", "tokens/s (all GPUs)"]] + reports.map {
        [String($0.config.tokens), formatFixed($0.medianMs, 3), formatFixed($0.meanMs, 3), formatFixed($0.minMs, 3), formatFixed($0.gflops / 1e3, 1), formatFixed($0.tokensPerSecond * Double(p), 0)]
      }))
      printTraces(traces)
    }
  }
}

extension Bench {
  func printTraces(_ traces: [(Int, [KernelTrace])]) {
    for (tokens, perGPU) in traces {
      print("timeline at S=\(tokens) (one traced forward):")
      for t in perGPU { print(t.lines.joined(separator: "\n")) }
      if let skew = KernelTrace.skewLine(perGPU) { print(skew) }
    }
  }

  /// Kept pairs under the CPU's routing rule for `input` (`groups` · S tokens, capacity per source
  /// GPU): the gate alone is cheap, and it counts the FLOPs a GPU forward did.
  func keptPairs(_ input: [Float], config: MoEConfig, weights: MoEWeights, groups: Int, cpu: CPUBackend) -> Int {
    let tokens = input.count / config.hidden
    let logits = cpu.gateLogitsForCounting(input: input.map { $0.rounded(to: config.dtype) }, tokens: tokens, weights: weights)
    return Router.route(
      logits: logits, tokens: tokens, experts: config.experts, topK: config.topK, renormalize: config.renormalize,
      capacity: config.expertCapacity, groups: groups
    ).keptPairs
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

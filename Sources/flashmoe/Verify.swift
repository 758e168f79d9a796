import ArgumentParser
import FlashMoE
import MoELaunch

#if canImport(Glibc)
import Glibc
#endif

struct Verify: ParsableCommand {
  static let configuration = CommandConfiguration(
    abstract: "Check the GPU backend against the CPU backend on a battery of cases.",
    discussion: """
      Every case draws fresh random weights and tokens (the seed is printed), poisons the GPU output
      with NaN, runs both backends and checks every element: routing identical except near-ties,
      relative L2 error within the dtype's bound (fp32 1e-5, tf32 2e-3, bf16/fp16 1e-2).
      Prints one line per case and 'N passed, N failed' last; exits non-zero on any failure.
      """)

  @OptionGroup var backendOptions: BackendOptions
  @OptionGroup var launcherOptions: LauncherOptions
  @Option(help: "Seed of the first case (default: random, printed).") var seed: UInt64?
  @Option(help: "Forwards in a row for the determinism and memory case.") var repeats: Int = 1000
  @Option(help: "GPU index (single-GPU battery).") var gpu: Int = 0
  @Option(help: "Expert parallelism: a GPU count (2 = GPUs 0,1) or a list such as 0,1.") var gpus: String?
  @Flag(help: "Only the first few cases (a smoke test).") var quick = false
  @Option(help: "Only the cases whose name contains this text (case-insensitive); seeds stay those of the whole battery.")
  var only: String?
  @Flag(help: "Instead of the battery: make each actor stall in turn (FLASHMOE_DEBUG_STALL) and check the watchdog's error and recovery; with --launcher env, on the last rank, then that rank leaves the job and the others must report it.")
  var faults = false

  func validate() throws {
    _ = try gpuList()
    guard repeats >= 2 else { throw ConfigError(field: "repeats", value: repeats, expected: "at least 2") }
    if let only, only.isEmpty { throw ConfigError(field: "only", value: "''", expected: "some text of a case's name") }
    let choice = try backendOptions.choice()
    guard choice != .cpu else {
      throw ConfigError(field: "backend", value: "cpu", expected: "cuda (the CPU backend is the oracle; its own tests check it against a float64 reference)")
    }
  }

  /// Whether the case called `name` is checked (`--only`).
  func selected(_ name: String) -> Bool { only.map { name.lowercased().contains($0.lowercased()) } ?? true }

  /// Refuses an `--only` that matched no case (a filter that checks nothing must not pass).
  func requireSelection(_ tally: Tally) throws {
    if let only, tally.passed + tally.failed == 0 {
      throw ConfigError(field: "only", value: "'\(only)'", expected: "text found in a case's name (none matched)")
    }
  }

  /// The GPUs of `--gpus`, nil for the single-GPU battery.
  func gpuList() throws -> [Int]? { try parseGPUList(gpus) }

  func run() throws {
    if let place = try launcherOptions.resolve(environment: LaunchEnvironment.processEnvironment()) {
      guard gpus == nil else {
        throw ConfigError(field: "gpus", value: "'\(gpus!)'", expected: "not with --launcher env (each process has one GPU: its local rank)")
      }
      if faults { return try runRankedFaults(place) }
      return try runRanked(place)
    }
    if faults { return try runFaults(try gpuList()) }
    if let group = try gpuList() {
      try runGroup(group)
      return
    }
    let firstSeed = seed ?? UInt64.random(in: 1...UInt64(UInt32.max))
    print("verify: CUDA backend against the CPU backend, first seed \(firstSeed)")
    var tally = Tally()
    var caseSeed = firstSeed
    let threads = try backendOptions.threadCount()
    for c in VerifyCase.battery(quick: quick) {
      caseSeed &+= 1
      let seed = caseSeed
      guard selected(c.name) else { continue }
      tally.check("\(c.name) seed \(seed)") {
        do {
          let outcome = try c.run(seed: seed, gpu: gpu, threads: threads)
          return (outcome.ok, outcome.line)
        } catch let error where c.expectError.map({ "\(error)".contains($0) }) == true {
          return (true, "PASS  \(c.name): rejected as expected: \(error)")
        }
      }
    }
    let lastSeed = caseSeed &+ 1
    if selected("repeat") { tally.check("repeat \(repeats)") { try determinism(seed: lastSeed) } }
    if !quick {
      if selected("out-of-memory refusal") { tally.check("out-of-memory refusal") { try memoryRefusal() } }
      if selected("concurrent forwards") { tally.check("concurrent forwards") { try concurrentForwards() } }
    }
    try requireSelection(tally)
    try tally.finish()
  }

  /// `repeats` forwards in a row: bitwise-identical outputs, device memory flat.
  func determinism(seed: UInt64) throws -> (ok: Bool, text: String) {
    let config = MoEConfig(tokens: 1000, hidden: 256, ffn: 512, experts: 8, topK: 2, dtype: .bf16)
    let weights = MoEWeights.random(config, seed: seed)
    let engine = try CUDAMoE(config: config, weights: weights, deviceIndex: gpu)
    var rng = SeededGenerator(seed: seed &+ 7)
    var input = rng.normals(config.tokens * config.hidden)
    input.round(to: .bf16)
    let first = try engine.forward(input, tokens: config.tokens, poison: true)
    let memoryBefore = try engine.memoryInUse()
    var differing = 0
    for _ in 1..<repeats {
      let again = try engine.forward(input, tokens: config.tokens, poison: true)
      if again != first { differing += 1 }
    }
    let memoryAfter = try engine.memoryInUse()
    let ok = differing == 0 && memoryAfter <= memoryBefore
    return (ok, "\(ok ? "PASS" : "FAIL")  repeat \(repeats) forwards (S=1000 bf16): \(differing) differ from the first; device memory in use \(memoryBefore) → \(memoryAfter) bytes")
  }
}

/// One verification case: a configuration, how its inputs are drawn, and the token counts it runs.
struct VerifyCase {
  var name: String
  var config: MoEConfig
  var tokens: [Int]
  var allToOneExpert = false
  /// NaN, +inf and −inf in a few tokens and NaN in one expert's W1 (issue #7 §2): the GPU must give
  /// the same non-finite elements and the same routing as the CPU, and finish.
  var badNumbers = false
  /// fp32 storage with tf32 math on Hopper's wgmma (the default) or, false, on mma.sync: the
  /// battery checks both paths whatever FLASHMOE_TF32_WGMMA says.
  var tf32OnWGMMA = false
  /// Hopper's Processor blocks for this case (1 or 2 warpgroups) and whether dense operands come by
  /// TMA; nil: the defaults (FLASHMOE_WARPGROUPS, FLASHMOE_TMA). The battery keeps the older path
  /// (one warpgroup, cp.async) checked at real size whatever the defaults are.
  var warpgroups: Int?
  var tma: Bool?
  /// When set, the case passes only if the GPU layer is rejected with a message containing this.
  var expectError: String?

  static func base(_ name: String, tokens: [Int] = [1000], hidden: Int = 256, ffn: Int = 256, experts: Int = 8, topK: Int = 2,
                   dtype: DType = .bf16, math: Math = .fp32, form: ExpertForm = .plain, activation: Activation = .gelu,
                   capacity: Capacity = .factor(1.0), biases: Bool = true, renormalize: Bool = true) -> VerifyCase {
    VerifyCase(
      name: name,
      config: MoEConfig(
        tokens: tokens.max()!, hidden: hidden, ffn: ffn, experts: experts, topK: topK, capacity: capacity,
        activation: activation, expertForm: form, biases: biases, renormalize: renormalize, dtype: dtype, math: math),
      tokens: tokens)
  }

  static func battery(quick: Bool) -> [VerifyCase] {
    var cases: [VerifyCase] = [
      .base("tokens 1, 7, 1000, 4097 (one layer, no recompile)", tokens: [1, 7, 1000, 4097]),
      .base("fp32 (FMA)", dtype: .fp32),
      .base("fp32 with tf32 math", dtype: .fp32, math: .tf32),
      .base("fp16", dtype: .fp16),
    ]
    if quick { return cases }
    cases += [
      .base("H = D = 64 (smallest alignment)", hidden: 64, ffn: 64),
      {
        var c = VerifyCase.base("H = 96 rejected (alignment 64)", hidden: 96, ffn: 64)
        c.expectError = "multiple of 64"
        return c
      }(),
      .base("E = 1, k = 1", experts: 1, topK: 1),
      .base("E = 32", tokens: [4096], experts: 32),
      .base("E = 128", tokens: [4096], experts: 128),
      .base("k = 1", topK: 1),
      .base("k = 3", topK: 3),
      .base("k = 4, E = 8", topK: 4),
      .base("capacity factor 0.25 (drops many pairs)", capacity: .factor(0.25)),
      .base("capacity factor 0.5, k = 4", topK: 4, capacity: .factor(0.5)),
      { var c = VerifyCase.base("all tokens to expert 0"); c.allToOneExpert = true; return c }(),
      { var c = VerifyCase.base("all tokens to expert 0, dropless", capacity: .dropless); c.allToOneExpert = true; return c }(),
      { var c = VerifyCase.base("NaN / ±inf tokens, a NaN weight (IEEE results, routing in range)"); c.badNumbers = true; return c }(),
      .base("dropless", capacity: .dropless),
      .base("gated silu bf16", form: .gated, activation: .silu),
      .base("gated relu fp16", dtype: .fp16, form: .gated, activation: .relu),
      .base("gated gelu_tanh fp32", dtype: .fp32, form: .gated, activation: .geluTanh),
      .base("gated silu tf32", dtype: .fp32, math: .tf32, form: .gated, activation: .silu),
      { var c = VerifyCase.base("tf32 on wgmma (Hopper), plain", tokens: [1, 1000, 4097], dtype: .fp32, math: .tf32); c.tf32OnWGMMA = true; return c }(),
      { var c = VerifyCase.base("tf32 on wgmma asked, gated silu, H = 192 (narrow tile: stays on mma.sync)", hidden: 192, ffn: 192, dtype: .fp32, math: .tf32, form: .gated, activation: .silu); c.tf32OnWGMMA = true; return c }(),
      .base("relu, no biases, raw weights", activation: .relu, biases: false, renormalize: false),
      .base("gelu_tanh, H = 512, D = 1024", hidden: 512, ffn: 1024, activation: .geluTanh),
      // A real size where ptxas serialised wgmma in the first build: the rebuild with the k loop
      // drained per k tile is what runs here (KernelCompiler), checked like every other case.
      .base("gated silu bf16, H = D = 2048, no biases (real size)", tokens: [512], hidden: 2048, ffn: 2048, form: .gated, activation: .silu, biases: false),
      .base("silu bf16, H = D = 2048, no biases (real size)", tokens: [512], hidden: 2048, ffn: 2048, activation: .silu, biases: false),
      .base("gelu bf16, H = D = 2048, E = 32, biases (real size: the benchmark's layer)", tokens: [2048], hidden: 2048, ffn: 2048, experts: 32),
      {
        var c = VerifyCase.base("fp32 with tf32 math on wgmma, H = D = 2048, E = 32 (real size)", tokens: [1024], hidden: 2048, ffn: 2048, experts: 32, dtype: .fp32, math: .tf32)
        c.tf32OnWGMMA = true
        return c
      }(),
      .base("fp32 with tf32 math on mma.sync, H = D = 2048, E = 32 (real size)", tokens: [1024], hidden: 2048, ffn: 2048, experts: 32, dtype: .fp32, math: .tf32),
      {
        var c = VerifyCase.base("gelu bf16, H = D = 2048, E = 32, one warpgroup, cp.async (real size)", tokens: [2048], hidden: 2048, ffn: 2048, experts: 32)
        c.warpgroups = 1
        c.tma = false
        return c
      }(),
    ]
    return cases
  }

  func run(seed: UInt64, gpu: Int, threads: Int?) throws -> (ok: Bool, line: String) {
    var weights = MoEWeights.random(config, seed: seed)
    if allToOneExpert {
      weights.gate[0] = 4
      weights.round(to: config.dtype)
    }
    if badNumbers { weights.w1[2 * config.ffn * config.hidden + 7] = .nan }
    let cpu = try MoELayer(config: config, weights: weights, backend: .cpu, threads: threads)
    let engine = try CUDAMoE(
      config: config, weights: cpu.weights, deviceIndex: gpu, tf32OnWGMMA: tf32OnWGMMA, warpgroups: warpgroups, tmaOperands: tma)
    var rng = SeededGenerator(seed: seed &+ 0x5EED)
    var parts: [String] = []
    var ok = true
    for tokens in self.tokens {
      var input = rng.normals(tokens * config.hidden)
      if allToOneExpert { for t in 0..<tokens { input[t * config.hidden] = 4 } }
      if badNumbers {
        for (t, v) in [(3, Float.nan), (5, .infinity), (8, -.infinity)] where t < tokens { input[t * config.hidden + 1] = v }
      }
      input.round(to: config.dtype)
      var cpuConfig = config
      cpuConfig.tokens = tokens
      let reference = try MoELayer(config: cpuConfig, weights: cpu.weights, backend: .cpu, threads: threads).forward(input)
      let gpuValues = try engine.forward(input, tokens: tokens, poison: true)
      let routing = try engine.lastRouting(tokens: tokens)
      let comparison = Comparison(
        config: config, cpu: reference.values, cpuRouting: reference.routing, logits: reference.logits, gpu: gpuValues,
        gpuRouting: Routing(gpuExperts: routing.expert, rows: routing.row, tokens: tokens, config: config))
      let pass = comparison.passes(config)
      ok = ok && pass
      parts.append("S=\(tokens) relL2 \(scientific(comparison.relativeL2)) max|Δ| \(scientific(comparison.maxAbsolute)) kept \(reference.routing.keptPairs)/\(reference.routing.pairs)"
        + (comparison.routingMismatches > 0 ? " near-ties \(comparison.nearTieMismatches)/\(comparison.routingMismatches)" : "")
        + (comparison.nonFinite > 0 ? " NON-FINITE \(comparison.nonFinite)" : "")
        + (comparison.dropMismatches > 0 ? " drop-mismatch \(comparison.dropMismatches)" : ""))
    }
    let c = config
    let head = "\(ok ? "PASS" : "FAIL")  \(name) [H=\(c.hidden) D=\(c.ffn) E=\(c.experts) k=\(c.topK) \(c.dtype.rawValue)\(c.math == .tf32 ? "/tf32" : "") \(c.expertForm.rawValue) \(c.activation.rawValue), bound \(scientific(Comparison.bound(c))), seed \(seed), \(engine.compile.cacheHit ? "cached" : "compiled \(formatFixed(engine.compile.seconds, 1)) s")\(engine.compile.kernel.rebuiltDrained ? ", wgmma drained per k tile (rebuild)" : "")\(engine.blockThreads == 256 ? ", two warpgroups" : "")\(engine.compile.kernel.spec.producer == true ? ", a producer warpgroup and two computing" : "")\(engine.compile.kernel.spec.tmaOperands == true ? ", TMA operands" : "")]"
    return (ok, head + "\n      " + parts.joined(separator: "\n      "))
  }
}

/// `value` as d.ddde±x (no Foundation formatting in this binary).
func scientific(_ value: Double) -> String {
  guard value.isFinite, value != 0 else { return "\(value)" }
  var exponent = 0
  var mantissa = abs(value)
  while mantissa >= 10 { mantissa /= 10; exponent += 1 }
  while mantissa < 1 { mantissa *= 10; exponent -= 1 }
  return (value < 0 ? "-" : "") + formatFixed(mantissa, 2) + "e" + (exponent < 0 ? "-" : "+") + String(abs(exponent))
}

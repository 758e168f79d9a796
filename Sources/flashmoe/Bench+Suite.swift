import ArgumentParser
import BenchSuite
import CUDADriver
import FlashMoE

extension Bench {
  /// Flags of the single-layer bench that the suite does not use, rejected rather than ignored.
  func validateSuite() throws {
    guard suite.suite else { return }
    if !sweepTokens.isEmpty {
      throw ConfigError(
        field: "sweep-tokens", value: sweepTokens.map(String.init).joined(separator: " "),
        expected: "no sweep with --suite (it sweeps the sizes of --sizes)")
    }
    if trace { throw ConfigError(field: "trace", value: "given", expected: "not with --suite (trace one size with bench --trace)") }
    if gpu != 0 { throw ConfigError(field: "gpu", value: gpu, expected: "not with --suite (use --gpus: P-GPU points run on the first P)") }
    // Sizes and the dtype come from --sizes and --dtypes; a layer flag that differs from its
    // default would otherwise be ignored.
    let d = try ShapeOptions.parse([])
    let sizes = [
      ("tokens", shape.tokens, d.tokens), ("hidden", shape.hidden, d.hidden), ("ffn", shape.ffn, d.ffn),
      ("experts", shape.experts, d.experts), ("topk", shape.topk, d.topk),
    ]
    for (flag, value, standard) in sizes where value != standard {
      throw ConfigError(field: flag, value: value, expected: "not with --suite (its sizes come from --sizes)")
    }
    if layer.dtype != (try LayerOptions.parse([])).dtype {
      throw ConfigError(field: "dtype", value: "'\(layer.dtype)'", expected: "--dtypes with --suite")
    }
  }

  /// The suite: plan, check every layer, measure every point (with the baseline if asked), write
  /// the files, print the table. Exits 1 when FlashMoE failed at any point (after writing).
  func runSuite() throws {
    let backend = try Backends.resolve(backendOptions.choice())
    let grid = try suite.sizes.map { try SuiteGrid.named($0, field: "sizes") } ?? (backend == .cuda ? .paper : .small)
    if backend != .cuda, let list = try parseGPUList(gpus) {
      throw ConfigError(field: "gpus", value: "'\(gpus!)' (\(list.count) GPUs)", expected: "one device on the CPU backend")
    }
    let indices = backend == .cuda ? try suiteGPUIndices() : [0]
    let plan = try SuitePlan(grid: grid, dtypes: suite.parsedDTypes(), gpusAvailable: indices.count)
    let (warmup, runs) = suite.protocolRuns(warmup: warmup, runs: runs)
    let template = try layer.config(tokens: 1, hidden: grid.hidden, ffn: grid.ffn, experts: grid.baseExperts, topK: grid.topK)
    let engines = SuiteEngines(
      backend: backend, template: template, grid: grid, gpuIndices: indices, threads: try backendOptions.threadCount(),
      seed: seed, warmup: warmup, runs: runs)
    try engines.check(plan)
    try SuiteOutput.createDirectory(suite.out)

    var notes: [String] = []
    var baseline: Baseline?
    if let script = suite.baseline {
      if backend == .cuda {
        baseline = Baseline(
          python: suite.baselinePython, script: script, grid: grid, warmup: warmup, runs: runs,
          tf32: template.math == .tf32, timeoutSeconds: Double(suite.baselineTimeout), gpuIndices: indices)
      } else {
        notes.append("PyTorch baseline not run: torch_moe.py needs CUDA GPUs and this run is on the CPU backend")
      }
    }
    if warmup != 32 || runs != 32 { notes.append("protocol \(warmup) warm-up + \(runs) timed runs, not the paper's 32 + 32") }

    let progress = Progress(quiet: display.quiet)
    let runner = SuiteRunner(
      plan: plan, measure: engines.measure, release: engines.release, baseline: baseline.map { b in { b.run($0) } },
      report: { event in Self.show(event, progress: progress, warmup: warmup, runs: runs) })
    let results = runner.run()
    progress.finish()

    let report = SuiteReport(
      plan: plan, backend: backend.rawValue, gpusAvailable: indices.count, layer: Self.describe(template),
      fp32Math: template.math.rawValue, warmup: warmup, runs: runs,
      baseline: baseline.map { Subprocess.quoted([$0.python, $0.script]) }, results: results, notes: notes)
    let files = try SuiteOutput.write(report, to: suite.out)
    if display.json {
      print(try JSONWriter.text(report), terminator: "")
    } else {
      print(
        "benchmark suite: \(backend.rawValue) on \(report.card), \(plan.points.count) points, grid '\(grid.name)'"
          + " (H = \(grid.hidden), D = \(grid.ffn), top-\(grid.topK)), \(report.layer);"
          + " \(warmup) warm-up + \(runs) timed runs, median and mean")
      print(table(SuiteTable.rows(report)))
      for note in SuiteTable.notes(report) { print("note: \(note)") }
      print("wrote:")
      for file in files { print("  \(file)") }
    }
    if results.contains(where: { $0.flashmoe == nil }) { throw ExitCode(1) }
  }

  /// The GPUs of `--gpus` (a count or a list; default every visible GPU), each checked to exist.
  func suiteGPUIndices() throws -> [Int] {
    let count = try Driver.shared().deviceCount()
    guard let text = gpus else { return Array(0..<count) }
    let indices: [Int]
    if let list = try parseGPUList(text) {
      indices = list
    } else {
      // One GPU: "1" is a count, "3," names GPU 3.
      indices = text.contains(",") ? text.split(separator: ",").compactMap { Int($0.filter { $0 != " " }) } : [0]
    }
    for i in indices where i >= count {
      throw ConfigError(field: "gpus", value: "'\(text)'", expected: "GPUs among the \(count) visible (indices 0...\(count - 1))")
    }
    guard Set(indices).count == indices.count else {
      throw ConfigError(field: "gpus", value: "'\(text)'", expected: "each GPU once")
    }
    return indices
  }

  static func show(_ event: SuiteRunner.Event, progress: Progress, warmup: Int, runs: Int) {
    switch event {
    case .measuring(let i, let n, let point):
      progress.update("[\(i)/\(n)] \(point): FlashMoE, \(warmup) warm-up + \(runs) timed")
    case .measured(let i, let n, let r):
      let ours = r.flashmoe.map { "median \(formatFixed($0.medianMs, 3)) ms, mean \(formatFixed($0.meanMs, 3)) ms" } ?? "failed"
      line("[\(i)/\(n)] \(r.point): FlashMoE \(ours)", progress)
    case .baseline(let i, let n, let point):
      progress.update("[\(i)/\(n)] \(point): PyTorch baseline")
    case .baselineDone(let i, let n, let point, let outcome):
      switch outcome {
      case .measured(let b): line("[\(i)/\(n)] \(point): PyTorch \(formatFixed(b.medianMs, 3)) ms (\(b.impl))", progress)
      case .missing: line("[\(i)/\(n)] \(point): PyTorch missing (reason in the notes)", progress)
      }
    }
  }

  /// A line that stays on the terminal above the progress line.
  static func line(_ text: String, _ progress: Progress) {
    guard progress.enabled else { return }
    progress.finish()
    writeStandardError(text + "\n")
  }

  /// The layer's semantics in a few words, for the report and the charts.
  static func describe(_ c: MoEConfig) -> String {
    let capacity: String
    switch c.capacity {
    case .dropless: capacity = "dropless"
    case .factor(let f): capacity = "capacity factor \(f)"
    }
    return "\(c.expertForm.rawValue) \(c.activation.rawValue), \(c.biases ? "biases" : "no biases"), \(capacity)"
      + (c.renormalize ? "" : ", raw top-k weights")
  }
}

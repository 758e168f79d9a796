import ArgumentParser
import FlashMoE
import MoELaunch

struct Run: ParsableCommand {
  static let configuration = CommandConfiguration(
    abstract: "Run the layer once: random weights and tokens from --seed, or real files.",
    discussion: """
      Random:  flashmoe run --tokens 4096 --hidden 1024 --ffn 1024 --experts 8 --topk 2 --seed 7
      Files:   flashmoe run --weights W.safetensors --input X.npy --output Y.npy [--names mixtral --prefix model.layers.0.]
      With --weights, H, D, E, the expert form and biases come from the tensors; with --input, S and H
      come from the array.
      """)

  @OptionGroup var shape: ShapeOptions
  @OptionGroup var layer: LayerOptions
  @OptionGroup var backendOptions: BackendOptions
  @OptionGroup var display: DisplayOptions
  @OptionGroup var launcherOptions: LauncherOptions
  @Option(help: "Seed for random weights and tokens.") var seed: UInt64 = 1
  @Option(help: "Weights: a .safetensors file, a model.safetensors.index.json, or a folder holding one.")
  var weights: String?
  @Option(help: "Tensor names: \(NamePreset.allowedNames).") var names: String = NamePreset.canonical.rawValue
  @Option(help: "Prefix of the layer's tensor names inside a whole-model checkpoint, e.g. model.layers.3.")
  var prefix: String = ""
  @Option(help: "Input tokens: a .npy array [S, H] of float32 or float16.") var input: String?
  @Option(help: "Write the output [S, H] here as .npy (atomically, after the forward pass succeeded).")
  var output: String?
  @Option(help: "dtype of the output file: float32 or float16.") var outputDtype: String = "float32"

  func validate() throws {
    _ = try NamePreset.parse(names, field: "names")
    _ = try npyDType(outputDtype)
    if weights == nil && input == nil {
      _ = try layer.config(
        tokens: shape.tokens, hidden: shape.hidden, ffn: shape.ffn, experts: shape.experts, topK: shape.topk)
    }
  }

  func run() throws {
    if let place = try launcherOptions.resolve(environment: LaunchEnvironment.processEnvironment()) {
      return try runRanked(place, timeout: try launcherOptions.timeout())
    }
    let progress = Progress(quiet: display.quiet)
    progress.update("preparing the layer…")
    let prepared = try prepare()
    let layer = try MoELayer(
      config: prepared.config, weights: prepared.weights, backend: try backendOptions.choice(),
      threads: try backendOptions.threadCount())
    progress.update("running \(layer.backend.rawValue) forward pass…")
    let result = try layer.forward(prepared.input)
    progress.finish()
    if let output {
      try NPY.write(result.values, shape: [prepared.config.tokens, prepared.config.hidden], dtype: try npyDType(outputDtype), to: output)
    }
    let report = RunReport(layer: layer, result: result, output: output, input: prepared.input)
    print(display.json ? try jsonString(report) : report.text)
  }

  private func npyDType(_ text: String) throws(ConfigError) -> NPYDType {
    switch text.lowercased() {
    case "float32", "fp32", "f4": return .f4
    case "float16", "fp16", "f2": return .f2
    default: throw ConfigError(field: "output-dtype", value: "'\(text)'", expected: "float32 or float16")
    }
  }
}

/// What `run` reports.
struct RunReport: Encodable {
  let backend: String
  let config: MoEConfig
  let seconds: Double
  let tokensPerSecond: Double
  let gflops: Double
  let keptPairs: Int
  let droppedPairs: Int
  let checksum: Checksum
  let output: String?
  /// Bad numbers seen (they are not errors: IEEE arithmetic carries them to the affected outputs).
  let nonFinite: BadNumbers

  struct BadNumbers: Encodable {
    /// True when the input, the weights and the output are all finite.
    let allFinite: Bool
    let input: NonFinite
    let weights: NonFinite
    let output: NonFinite
  }

  init(layer: MoELayer, result: MoELayer.Output, output: String?, input: [Float]) {
    backend = layer.backend.rawValue
    config = layer.config
    seconds = result.seconds
    tokensPerSecond = Double(result.routing.tokens) / result.seconds
    keptPairs = result.routing.keptPairs
    droppedPairs = result.routing.pairs - keptPairs
    gflops = layer.config.flops(routedPairs: keptPairs) / result.seconds / 1e9
    checksum = Checksum(result.values)
    self.output = output
    let h = layer.config.hidden
    let (x, w, y) = (NonFinite(input, rowWidth: h), layer.weights.nonFinite, NonFinite(result.values, rowWidth: h))
    nonFinite = BadNumbers(allFinite: x.isEmpty && w.isEmpty && y.isEmpty, input: x, weights: w, output: y)
  }

  var text: String {
    var lines = [
      "backend \(backend): S=\(config.tokens) H=\(config.hidden) D=\(config.ffn) E=\(config.experts) k=\(config.topK) \(config.dtype.rawValue)\(config.math == .tf32 ? "/tf32" : "") \(config.expertForm.rawValue) \(config.activation.rawValue)",
      "time \(formatFixed(seconds * 1e3, 3)) ms, \(formatFixed(tokensPerSecond, 0)) tokens/s, \(formatFixed(gflops, 1)) GFLOP/s",
      "pairs kept \(keptPairs), dropped \(droppedPairs)",
      "checksum \(checksum)",
    ]
    if !nonFinite.allFinite {
      lines.append("non-finite values: input \(nonFinite.input); weights \(nonFinite.weights) (experts); output \(nonFinite.output)")
    }
    if let output { lines.append("wrote \(output)") }
    return lines.joined(separator: "\n")
  }
}

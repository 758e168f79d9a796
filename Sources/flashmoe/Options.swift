import ArgumentParser
import FlashMoE

/// The layer's sizes, for random weights and inputs.
struct ShapeOptions: ParsableArguments {
  @Option(help: "Tokens per GPU (S).") var tokens: Int = 4096
  @Option(help: "Embedding width (H).") var hidden: Int = 1024
  @Option(help: "Expert FFN width (D).") var ffn: Int = 1024
  @Option(help: "Experts (E).") var experts: Int = 8
  @Option(help: "Experts per token (k).") var topk: Int = 2
}

/// Everything about the layer's semantics other than its sizes.
struct LayerOptions: ParsableArguments {
  @Option(help: "Capacity factor f: each expert takes ceil(f·k·S/E) pairs per source GPU.")
  var capacityFactor: Double = 1.0
  @Flag(help: "Keep every (token, expert) pair (no capacity).") var dropless = false
  @Option(help: "Activation: \(Activation.allowedNames).") var activation: String = Activation.gelu.rawValue
  @Option(help: "Expert form: \(ExpertForm.allowedNames) (read from the weights when --weights is given).")
  var expertForm: String = ExpertForm.plain.rawValue
  @Flag(inversion: .prefixedNo, help: "Expert biases (random weights only; files say for themselves).")
  var bias = true
  @Flag(help: "Use the raw top-k probabilities as combine weights.") var noRenormalize = false
  @Option(help: "Storage dtype: \(DType.allowedNames).") var dtype: String = DType.fp32.rawValue
  @Option(help: "GEMM math for fp32 storage: \(Math.allowedNames).") var math: String = Math.fp32.rawValue

  func validate() throws {
    _ = try parsed()
  }

  /// The named options, parsed; errors name the flag and list what is accepted.
  func parsed() throws(ConfigError) -> (Activation, ExpertForm, DType, Math) {
    (
      try Activation.parse(activation, field: "activation"),
      try ExpertForm.parse(expertForm, field: "expert-form"),
      try DType.parse(dtype, field: "dtype"),
      try Math.parse(math, field: "math")
    )
  }

  func config(tokens: Int, hidden: Int, ffn: Int, experts: Int, topK: Int, form: ExpertForm? = nil, biases: Bool? = nil)
    throws(ConfigError) -> MoEConfig
  {
    let (activation, expertForm, dtype, math) = try parsed()
    let config = MoEConfig(
      tokens: tokens, hidden: hidden, ffn: ffn, experts: experts, topK: topK,
      capacity: dropless ? .dropless : .factor(capacityFactor), activation: activation,
      expertForm: form ?? expertForm, biases: biases ?? bias, renormalize: !noRenormalize,
      dtype: dtype, math: math)
    try config.validate()
    return config
  }
}

/// Where the layer runs.
struct BackendOptions: ParsableArguments {
  @Option(help: "Backend: \(BackendChoice.allowedNames) (default: $FLASHMOE_BACKEND or auto).")
  var backend: String?
  @Option(help: "CPU threads (default: $FLASHMOE_THREADS or every core).") var threads: Int?

  func validate() throws {
    _ = try choice()
    _ = try threadCount()
  }

  func choice() throws -> BackendChoice {
    if let backend { return try BackendChoice.parse(backend, field: "backend") }
    return try Setting.backend.value() ?? .auto
  }

  func threadCount() throws -> Int? {
    if let threads {
      guard threads >= 1, threads <= 4096 else {
        throw ConfigError(field: "threads", value: threads, expected: "an integer in 1...4096")
      }
      return threads
    }
    return try Setting.threads.value()
  }
}

/// How results are shown.
struct DisplayOptions: ParsableArguments {
  @Flag(help: "Print one JSON object instead of text.") var json = false
  @Flag(help: "No progress on the terminal.") var quiet = false
}

/// `--gpus`: a count (2 = GPUs 0 and 1) or a list of indices (0,1); nil or one GPU = no expert
/// parallelism.
func parseGPUList(_ text: String?) throws(ConfigError) -> [Int]? {
  guard let text else { return nil }
  let expected = "a GPU count 1...64 or a list of GPU indices like 0,1"
  if !text.contains(","), let count = Int(text) {
    guard count >= 1, count <= 64 else { throw ConfigError(field: "gpus", value: "'\(text)'", expected: expected) }
    return count == 1 ? nil : Array(0..<count)
  }
  let list = text.split(separator: ",").map { Int($0.filter { $0 != " " }) }
  guard !list.isEmpty, list.allSatisfy({ ($0 ?? -1) >= 0 }) else {
    throw ConfigError(field: "gpus", value: "'\(text)'", expected: expected)
  }
  let indices = list.map { $0! }
  return indices.count == 1 ? nil : indices
}

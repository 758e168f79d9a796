import FlashMoE

/// The layer and tokens a `run` works on.
struct PreparedRun {
  var config: MoEConfig
  var weights: MoEWeights
  var input: [Float]
}

extension Run {
  /// Loads or draws the weights and tokens. Every file is read and checked before any work starts.
  func prepare() throws -> PreparedRun {
    var rng = SeededGenerator(seed: seed &+ 1)
    var loaded: MoEWeights?
    if let weights {
      let preset = try NamePreset.parse(names, field: "names")
      let (_, _, dtype, _) = try layer.parsed()
      loaded = try Checkpoint(path: weights).loadLayer(preset: preset, prefix: prefix, dtype: dtype)
    }
    var tokens = shape.tokens
    var tokenValues: [Float]?
    if let input {
      let array = try NPY.read(path: input)
      guard array.shape.count == 2 else {
        throw ConfigError(field: "input", value: "shape \(array.shape) in \(input)", expected: "a 2-D array [S, H]")
      }
      let expectedHidden = loaded?.hidden ?? shape.hidden
      guard array.shape[1] == expectedHidden else {
        throw ConfigError(
          field: "input", value: "shape \(array.shape) in \(input)",
          expected: "[S, \(expectedHidden)] (H = \(expectedHidden) \(loaded == nil ? "from --hidden" : "from the weights"))")
      }
      tokens = array.shape[0]
      tokenValues = array.values
    }
    let config = try layer.config(
      tokens: tokens, hidden: loaded?.hidden ?? shape.hidden, ffn: loaded?.ffn ?? shape.ffn,
      experts: loaded?.experts ?? shape.experts, topK: shape.topk, form: loaded?.form,
      biases: loaded.map(\.hasBiases))
    let weights = loaded ?? MoEWeights.random(config, seed: seed)
    return PreparedRun(config: config, weights: weights, input: tokenValues ?? rng.normals(tokens * config.hidden))
  }
}

import Foundation
import MoECore
import MoEFiles
import Testing

struct LayerCase: Sendable, CustomTestStringConvertible {
  var preset: NamePreset
  var gated: Bool
  var biases: Bool
  var dtype: DType
  var prefix: String
  var testDescription: String {
    "\(preset.rawValue) \(gated ? "gated" : "plain") \(biases ? "biases" : "no-bias") \(dtype.rawValue) '\(prefix)'"
  }

  static let all: [LayerCase] = NamePreset.allCases.flatMap { preset in
    [false, true].flatMap { gated in
      [false, true].flatMap { biases in
        DType.allCases.map { dtype in
          LayerCase(preset: preset, gated: gated, biases: biases, dtype: dtype, prefix: dtype == .bf16 ? "model.layers.3." : "")
        }
      }
    }
  }
}

@Suite struct LayerFiles {
  @Test(arguments: LayerCase.all)
  func roundTrip(_ c: LayerCase) throws {
    try withTempDir { dir in
      let config = MoEConfig(tokens: 1, hidden: 8, ffn: 6, experts: 3, topK: 1,
                             expertForm: c.gated ? .gated : .plain, biases: c.biases, dtype: c.dtype)
      let weights = MoEWeights.random(config, seed: 5)
      let path = try Checkpoint.saveLayer(weights, to: dir.file("l.safetensors"), preset: c.preset, prefix: c.prefix, dtype: c.dtype)
      let checkpoint = try Checkpoint(path: path)
      #expect(checkpoint.contains(c.preset.gateName(prefix: c.prefix)))
      #expect(checkpoint.detectPreset(prefix: c.prefix) == c.preset)
      let loaded = try checkpoint.loadLayer(preset: c.preset, prefix: c.prefix, dtype: c.dtype)
      #expect(loaded == weights)
      #expect(loaded.form == config.expertForm && loaded.hasBiases == c.biases)
      // Saved as fp32, loaded as the dtype: the values are rounded on load.
      let wide = try Checkpoint.saveLayer(weights, to: dir.file("w.safetensors"), preset: c.preset, prefix: c.prefix, dtype: .fp32)
      #expect(try Checkpoint(path: wide).loadLayer(preset: c.preset, prefix: c.prefix, dtype: c.dtype) == weights)
    }
  }

  @Test func fp32LoadedAsBF16IsRounded() throws {
    try withTempDir { dir in
      let weights = MoEWeights.random(MoEConfig(tokens: 1, hidden: 4, ffn: 4, experts: 2, topK: 1), seed: 2)
      let path = try Checkpoint.saveLayer(weights, to: dir.file("l.safetensors"), dtype: .fp32, shards: 3)
      #expect(path == dir.file("l.safetensors.index.json"))
      #expect(dir.contents == ["l.safetensors.index.json", "model-00001-of-00003.safetensors",
                               "model-00002-of-00003.safetensors", "model-00003-of-00003.safetensors"])
      var expected = weights
      expected.round(to: .bf16)
      #expect(try Checkpoint(path: path).loadLayer(preset: .canonical, dtype: .bf16) == expected)
      #expect(expected != weights)
    }
  }

  @Test func presetNames() throws {
    #expect(NamePreset.canonical.name(.w1, expert: 2) == "experts.2.w1.weight")
    #expect(NamePreset.canonical.name(.b3, expert: 0) == "experts.0.w3.bias")
    #expect(NamePreset.mixtral.gateName(prefix: "model.layers.0.") == "model.layers.0.block_sparse_moe.gate.weight")
    #expect(NamePreset.mixtral.name(.w2, expert: 7, prefix: "p.") == "p.block_sparse_moe.experts.7.w2.weight")
    #expect(NamePreset.qwen.gateName() == "mlp.gate.weight")
    #expect(NamePreset.qwen.name(.w1, expert: 1) == "mlp.experts.1.gate_proj.weight")
    #expect(NamePreset.qwen.name(.w3, expert: 1) == "mlp.experts.1.up_proj.weight")
    #expect(NamePreset.qwen.name(.b2, expert: 1) == "mlp.experts.1.down_proj.bias")
    #expect(throws: ConfigError.self) { try NamePreset.parse("llama", field: "preset") }
    #expect(try NamePreset.parse("Qwen", field: "preset") == .qwen)
  }

  // MARK: - Broken layers (canonical names, H = 4, D = 3)

  static let h = 4, d = 3

  /// Expert tensors for `experts`, with tensors changed by `edit` (nil drops a tensor).
  static func write(
    _ dir: TempDir, experts: [Int], gateRows: Int? = nil, gated: Bool = false, biases: [ExpertTensor] = [],
    edit: (String, [Int]) -> [Int]? = { $1 }
  ) throws -> Checkpoint {
    var tensors = [NamedTensor]()
    func add(_ name: String, _ shape: [Int]) {
      guard let shape = edit(name, shape) else { return }
      tensors.append(NamedTensor(name, shape: shape, values: [Float](repeating: 0.5, count: shape.reduce(1, *))))
    }
    add("gate.weight", [gateRows ?? experts.count, h])
    for e in experts {
      add("experts.\(e).w1.weight", [d, h])
      add("experts.\(e).w2.weight", [h, d])
      if gated { add("experts.\(e).w3.weight", [d, h]) }
      for bias in biases { add("experts.\(e).\(bias.matrix.rawValue).bias", [bias == .b2 ? h : d]) }
    }
    let path = dir.file("broken-\(UUID().uuidString).safetensors")
    try SafetensorsFile.write(tensors, dtype: .bf16, to: path)
    return try Checkpoint(path: path)
  }

  @Test func brokenLayers() throws {
    try withTempDir { dir in
      func check(_ checkpoint: Checkpoint, _ kind: FileError.Kind, _ mentions: [String], preset: NamePreset = .canonical,
                 sourceLocation: SourceLocation = #_sourceLocation) {
        expectFileError(kind, mentions: [checkpoint.path] + mentions, sourceLocation: sourceLocation) {
          _ = try checkpoint.loadLayer(preset: preset, dtype: .bf16)
        }
      }
      // A complete layer loads.
      let good = try Self.write(dir, experts: [0, 1, 2], gated: true, biases: [.b1, .b2, .b3])
      let weights = try good.loadLayer(preset: .canonical, dtype: .bf16)
      #expect(weights.experts == 3 && weights.hidden == Self.h && weights.ffn == Self.d && weights.form == .gated)
      #expect(weights.b3 == [Float](repeating: 0.5, count: 9))

      check(try Self.write(dir, experts: [0, 1, 3]), .missingTensor, ["'experts.2.w1.weight'", "expert 2 is missing", "0…3"])
      check(try Self.write(dir, experts: [1, 2], gateRows: 3), .missingTensor, ["'experts.0.w1.weight'"])
      check(try Self.write(dir, experts: [0, 1]) { $0 == "experts.1.w2.weight" ? nil : $1 }, .missingTensor, ["'experts.1.w2.weight'"])
      check(try Self.write(dir, experts: [0, 1]) { $0 == "gate.weight" ? nil : $1 }, .missingTensor, ["'gate.weight'"])
      check(try Self.write(dir, experts: [0, 1], biases: [.b1]) { $0 == "experts.1.w1.bias" ? nil : $1 }, .missingTensor,
            ["'experts.1.w1.bias'", "experts.0.w1.bias exists", "b1 for every expert or for none"])
      check(try Self.write(dir, experts: [0, 1, 2], gated: true) { $0 == "experts.0.w3.weight" ? nil : $1 }, .missingTensor,
            ["'experts.0.w3.weight'", "experts.1.w3.weight exists"])
      check(try Self.write(dir, experts: [0, 1], biases: [.b3]), .malformed, ["'experts.0.w3.bias'", "without w3"])
      check(try Self.write(dir, experts: [0, 1]) { $0 == "experts.1.w2.weight" ? [5, 3] : $1 }, .shapeMismatch,
            ["'experts.1.w2.weight'", "shape is [5, 3]", "expected [4, 3]"])
      check(try Self.write(dir, experts: [0, 1]) { $0 == "experts.0.w1.weight" ? [3, 5] : $1 }, .shapeMismatch,
            ["'experts.0.w1.weight'", "shape is [3, 5]", "[D, 4]"])
      check(try Self.write(dir, experts: [0, 1], biases: [.b2]) { $0 == "experts.1.w2.bias" ? [3] : $1 }, .shapeMismatch,
            ["'experts.1.w2.bias'", "shape is [3]", "expected [4]"])
      check(try Self.write(dir, experts: [0, 1], gateRows: 3), .shapeMismatch, ["'gate.weight'", "shape is [3, 4]", "[2, H]", "2 experts found"])
      check(try Self.write(dir, experts: [0, 1]) { $0 == "gate.weight" ? [8] : $1 }, .shapeMismatch, ["'gate.weight'", "shape is [8]"])
      check(try Self.write(dir, experts: [0, 1]), .missingTensor, ["'mlp.experts.0.gate_proj.weight'", "no expert tensors", "preset canonical"],
            preset: .qwen)
      // Leading zeros or other junk after experts. is not an expert index.
      check(try Self.write(dir, experts: [0, 1]) { $0 == "experts.1.w1.weight" ? nil : $1 }, .missingTensor, ["'experts.1.w1.weight'"])
    }
  }

  @Test func unsupportedDTypeInLayer() throws {
    try withTempDir { dir in
      let header = #"{"gate.weight":{"dtype":"I32","shape":[1,2],"data_offsets":[0,8]},"#
        + #""experts.0.w1.weight":{"dtype":"F32","shape":[1,2],"data_offsets":[8,16]},"#
        + #""experts.0.w2.weight":{"dtype":"F32","shape":[2,1],"data_offsets":[16,24]}}"#
      let path = dir.write(rawSafetensors(header, data: [UInt8](repeating: 0, count: 24)), "i32.safetensors")
      expectFileError(.unsupportedDType, mentions: ["i32.safetensors", "'gate.weight'", "I32"]) {
        _ = try Checkpoint(path: path).loadLayer(preset: .canonical, dtype: .fp32)
      }
    }
  }

  @Test func prefixHint() throws {
    try withTempDir { dir in
      let weights = MoEWeights.random(MoEConfig(tokens: 1, hidden: 4, ffn: 4, experts: 2, topK: 1), seed: 1)
      let path = try Checkpoint.saveLayer(weights, to: dir.file("m.safetensors"), preset: .mixtral, prefix: "model.layers.1.", dtype: .fp32)
      let checkpoint = try Checkpoint(path: path)
      expectFileError(.missingTensor, mentions: ["m.safetensors", "'model.layers.1experts.0.w1.weight'", "usually ends with '.'"]) {
        _ = try checkpoint.loadLayer(preset: .canonical, prefix: "model.layers.1", dtype: .fp32)
      }
      expectFileError(.missingTensor, mentions: ["looks like preset mixtral"]) {
        _ = try checkpoint.loadLayer(preset: .qwen, prefix: "model.layers.1.", dtype: .fp32)
      }
      #expect(checkpoint.detectPreset(prefix: "model.layers.1.") == .mixtral)
      #expect(checkpoint.detectPreset() == nil)
    }
  }

  @Test func saveLayerRejectsBadShardCounts() throws {
    try withTempDir { dir in
      let weights = MoEWeights.random(MoEConfig(tokens: 1, hidden: 4, ffn: 4, experts: 2, topK: 1), seed: 1)
      for shards in [0, -1, 1 + 2 * 4 + 1] {  // gate + 2 experts × (w1, b1, w2, b2)
        expectFileError(.invalidArgument, mentions: [dir.path, "shards = \(shards)"]) {
          try Checkpoint.saveLayer(weights, to: dir.path, dtype: .fp32, shards: shards)
        }
      }
      #expect(dir.contents.isEmpty)
    }
  }
}

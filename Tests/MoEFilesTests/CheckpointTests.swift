import Foundation
import MoECore
import MoEFiles
import Testing

@Suite struct CheckpointFiles {
  static func weights(gated: Bool = true, biases: Bool = true, dtype: DType = .fp32, experts: Int = 4) -> MoEWeights {
    let config = MoEConfig(tokens: 1, hidden: 8, ffn: 6, experts: experts, topK: 1,
                           expertForm: gated ? .gated : .plain, biases: biases, dtype: dtype)
    return MoEWeights.random(config, seed: 11)
  }

  @Test(arguments: [2, 3, 7])
  func shardedRoundTrip(shards: Int) throws {
    try withTempDir { dir in
      let weights = Self.weights()
      let index = try Checkpoint.saveLayer(weights, to: dir.path, dtype: .fp32, shards: shards)
      #expect(index == dir.file(Checkpoint.indexFileName))
      let shardNames = (1...shards).map { Checkpoint.shardFileName($0, of: shards) }
      #expect(dir.contents == (shardNames + [Checkpoint.indexFileName]).sorted())
      #expect(shardNames[0] == "model-00001-of-0000\(shards).safetensors")

      for path in [index, dir.path] {
        let checkpoint = try Checkpoint(path: path)
        #expect(checkpoint.path == index)
        #expect(checkpoint.files.count == shards)
        #expect(checkpoint.names.count == 1 + 4 * 6)
        let elements: Int = 8 * 4 + 4 * (3 * 48 + 6 + 8 + 6)
        #expect(checkpoint.metadata["total_size"] == String(elements * 4))
        #expect(try checkpoint.load("gate.weight", shape: [4, 8]) == weights.gate)
        #expect(try checkpoint.load("experts.3.w2.weight") == Array(weights.w2[(3 * 48)..<(4 * 48)]))
        #expect(try checkpoint.loadLayer(preset: .canonical, dtype: .fp32) == weights)
      }
    }
  }

  @Test func singleFileAndDirectory() throws {
    try withTempDir { dir in
      let weights = Self.weights(gated: false, biases: false)
      let file = try Checkpoint.saveLayer(weights, to: dir.path, dtype: .bf16)
      #expect(file == dir.file("model.safetensors"))
      #expect(dir.contents == ["model.safetensors"])
      let checkpoint = try Checkpoint(path: dir.path)
      #expect(checkpoint.files == [file])
      #expect(checkpoint.metadata == ["format": "pt"])
      #expect(checkpoint.contains("experts.0.w1.weight") && !checkpoint.contains("experts.0.w3.weight"))
      var expected = weights
      expected.round(to: .bf16)
      #expect(try checkpoint.loadLayer(preset: .canonical, dtype: .bf16) == expected)

      // Any single *.safetensors file in a directory is found.
      let other = TempDir()
      defer { try? FileManager.default.removeItem(atPath: other.path) }
      try Checkpoint.saveLayer(weights, to: other.file("layer0.safetensors"), dtype: .fp32)
      #expect(try Checkpoint(path: other.path).path == other.file("layer0.safetensors"))
    }
  }

  @Test func emptyOrAmbiguousDirectory() throws {
    try withTempDir { dir in
      expectFileError(.io, mentions: [dir.path, "0 index files and 0 .safetensors files"]) { _ = try Checkpoint(path: dir.path) }
      dir.write(rawSafetensors("{}", data: []), "a.safetensors")
      dir.write(rawSafetensors("{}", data: []), "b.safetensors")
      expectFileError(.io, mentions: [dir.path, "2 .safetensors files"]) { _ = try Checkpoint(path: dir.path) }
      expectFileError(.missingTensor, mentions: ["a.safetensors", "'x'"]) { _ = try Checkpoint(path: dir.file("a.safetensors")).load("x") }
    }
  }

  static let traversal = ["../x.safetensors", "/etc/passwd", "sub/x.safetensors", "..", ".", "", "a\\b.safetensors"]

  @Test(arguments: traversal)
  func pathTraversalInIndex(shard: String) throws {
    try withTempDir { dir in
      dir.write(rawSafetensors(#"{"w":{"dtype":"F32","shape":[1],"data_offsets":[0,4]}}"#, data: [0, 0, 0, 0]), "ok.safetensors")
      let index = #"{"weight_map": {"w": "ok.safetensors", "evil.weight": \#(JSONText.quoted(shard))}}"#
      let path = dir.write(index, "model.safetensors.index.json")
      expectFileError(.malformed, mentions: ["model.safetensors.index.json", "'evil.weight'", "not a plain file name"]) {
        _ = try Checkpoint(path: path)
      }
    }
  }

  @Test func indexProblems() throws {
    try withTempDir { dir in
      dir.write(rawSafetensors(#"{"w":{"dtype":"F32","shape":[1],"data_offsets":[0,4]}}"#, data: [0, 0, 0, 0]), "s1.safetensors")
      let cases: [(String, FileError.Kind, [String])] = [
        (#"{"weight_map": {"w": "s1.safetensors", "v": "s2.safetensors"}}"#, .missingTensor, ["'v'", "s2.safetensors", "does not exist"]),
        (#"{"weight_map": {"x": "s1.safetensors"}}"#, .missingTensor, ["s1.safetensors", "'x'", "does not hold it"]),
        (#"{"weight_map": {"w": 3}}"#, .malformed, ["'w'", "the number 3"]),
        (#"{"metadata": {}}"#, .malformed, ["\"weight_map\" is missing"]),
        (#"{"metadata": 5, "weight_map": {}}"#, .malformed, ["\"metadata\" is the number 5"]),
        (#"{"weight_map": {"w": "s1.safetensors", "w": "s1.safetensors"}}"#, .malformed, ["duplicate key \"w\""]),
        ("[]", .malformed, ["is an array"]),
        ("{", .malformed, ["not valid JSON"]),
      ]
      for (i, (text, kind, mentions)) in cases.enumerated() {
        let path = dir.write(text, "case\(i).safetensors.index.json")
        expectFileError(kind, mentions: mentions + (kind == .malformed ? ["case\(i).safetensors.index.json"] : [])) {
          _ = try Checkpoint(path: path)
        }
      }
      let good = dir.write(#"{"metadata": {"total_size": 4, "nested": {"a": [1, true]}}, "weight_map": {"w": "s1.safetensors"}}"#, "good.json")
      let checkpoint = try Checkpoint(path: good)
      #expect(checkpoint.metadata == ["total_size": "4", "nested": #"{"a":[1,true]}"#])
      #expect(try checkpoint.load("w") == [0])
      expectFileError(.missingTensor, mentions: ["good.json", "'nope'"]) { _ = try checkpoint.load("nope") }
    }
  }
}

/// JSON string literals for building test files.
enum JSONText {
  static func quoted(_ text: String) -> String {
    String(decoding: try! JSONEncoder().encode(text), as: UTF8.self)
  }
}

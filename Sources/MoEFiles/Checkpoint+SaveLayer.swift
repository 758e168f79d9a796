import MoECore

extension Checkpoint {
  /// Writes one MoE layer with `preset`'s names (each prefixed by `prefix`), stored as `dtype`.
  ///
  /// With `shards == 1`, `path` is the `.safetensors` file. With more, the index goes to `path` when
  /// it ends in `.json` and to `path + ".index.json"` otherwise (`x.safetensors` gives
  /// `x.safetensors.index.json`), and the shards `model-00001-of-0000N.safetensors`, … are written
  /// beside it (shards first, the index last, each atomically). A `path` that is a directory gets
  /// `model.safetensors` or `model.safetensors.index.json` inside it. Returns the path of the file
  /// written (the index when sharded), which `Checkpoint(path:)` opens.
  @discardableResult
  public static func saveLayer(
    _ weights: MoEWeights, to path: String, preset: NamePreset = .canonical, prefix: String = "",
    dtype: DType, shards: Int = 1
  ) throws(FileError) -> String {
    do throws(ConfigError) {
      try weights.checkShapes()
    } catch {
      throw FileError(.invalidArgument, file: path, problem: "the weights are inconsistent: \(error)")
    }
    let tensors = layerTensors(weights, preset: preset, prefix: prefix)
    guard shards >= 1, shards <= min(tensors.count, 99_999) else {
      throw FileError(.invalidArgument, file: path, problem: "shards = \(shards)",
                      expected: "1…\(min(tensors.count, 99_999)) (at least one tensor per shard)")
    }
    let metadata = ["format": "pt"]
    if shards == 1 {
      let file = PathName.isDirectory(path) ? PathName.join(path, singleFileName) : path
      try SafetensorsFile.write(tensors, dtype: dtype, metadata: metadata, to: file)
      return file
    }
    let index = PathName.isDirectory(path) ? PathName.join(path, indexFileName)
      : path.hasSuffix(".json") ? path : path + ".index.json"
    let directory = PathName.directory(of: index)
    var weightMap: [String] = []
    var totalSize = 0
    for shard in 0..<shards {
      let part = Array(tensors[(shard * tensors.count / shards)..<((shard + 1) * tensors.count / shards)])
      let name = shardFileName(shard + 1, of: shards)
      try SafetensorsFile.write(part, dtype: dtype, metadata: metadata, to: PathName.join(directory, name))
      for tensor in part {
        weightMap.append("    \(JSON.quoted(tensor.name)): \(JSON.quoted(name))")
        totalSize += tensor.values.count * dtype.size
      }
    }
    let text = "{\n  \"metadata\": {\"total_size\": \(totalSize)},\n  \"weight_map\": {\n"
      + weightMap.joined(separator: ",\n") + "\n  }\n}\n"
    try AtomicFile.write(Array(text.utf8), to: index)
    return index
  }

  /// `model-00002-of-00005.safetensors`.
  public static func shardFileName(_ number: Int, of count: Int) -> String {
    func padded(_ value: Int) -> String {
      let digits = String(value)
      return String(repeating: "0", count: max(0, 5 - digits.count)) + digits
    }
    return "model-\(padded(number))-of-\(padded(count)).safetensors"
  }

  /// The layer's tensors in file order: the gate, then each expert's tensors.
  static func layerTensors(_ weights: MoEWeights, preset: NamePreset, prefix: String) -> [TensorSlice] {
    let (h, d) = (weights.hidden, weights.ffn)
    var tensors = [TensorSlice(name: preset.gateName(prefix: prefix), shape: [weights.experts, h], values: weights.gate[...])]
    let parts: [(ExpertTensor, [Float]?, [Int])] = [
      (.w1, weights.w1, [d, h]), (.b1, weights.b1, [d]),
      (.w3, weights.w3, [d, h]), (.b3, weights.b3, [d]),
      (.w2, weights.w2, [h, d]), (.b2, weights.b2, [h]),
    ]
    for expert in 0..<weights.experts {
      for (tensor, values, shape) in parts {
        guard let values else { continue }
        let each = shape.reduce(1, *)
        tensors.append(TensorSlice(name: preset.name(tensor, expert: expert, prefix: prefix), shape: shape,
                                   values: values[(expert * each)..<((expert + 1) * each)]))
      }
    }
    return tensors
  }
}

import FoundationEssentials

/// A set of named tensors in one safetensors file or in shards listed by an index
/// (`model.safetensors.index.json`: `{"metadata": {...}, "weight_map": {"name": "shard file"}}`).
///
/// Opening reads every header (shard files are opened once each and kept open) and checks that each
/// tensor of the weight map is in the shard it names; tensor data is read only when loaded.
public struct Checkpoint: Sendable {
  /// The index name that a directory is searched for first.
  public static let indexFileName = "model.safetensors.index.json"
  /// The single-file name that a directory is searched for next.
  public static let singleFileName = "model.safetensors"

  /// The file opened: a `.safetensors` file or an index.
  public let path: String
  /// The index's `metadata` (scalar values as text) or the single file's `__metadata__`.
  public let metadata: [String: String]
  /// Every tensor name, sorted.
  public let names: [String]
  /// The paths of the safetensors files, in the order first named.
  public let files: [String]
  private let fileOf: [String: SafetensorsFile]

  /// Opens a `.safetensors` file, an index (a path ending in `.json`), or a directory holding
  /// `model.safetensors.index.json`, `model.safetensors`, or exactly one file of either kind.
  public init(path: String) throws(FileError) {
    let file = PathName.isDirectory(path) ? try Self.find(in: path) : path
    if file.hasSuffix(".json") {
      let index = try CheckpointIndex(path: file)
      var shards: [String: SafetensorsFile] = [:]
      var fileOf: [String: SafetensorsFile] = [:]
      var files: [String] = []
      let directory = PathName.directory(of: file)
      for name in index.weightMap.keys.sorted() {
        let shardName = index.weightMap[name]!
        let shard: SafetensorsFile
        if let opened = shards[shardName] {
          shard = opened
        } else {
          let shardPath = PathName.join(directory, shardName)
          guard PathName.exists(shardPath) else {
            throw FileError(.missingTensor, file: file, tensor: name, problem: "its shard \(shardPath) does not exist",
                            expected: "every shard the weight map names, beside the index")
          }
          shard = try SafetensorsFile(path: shardPath)
          shards[shardName] = shard
          files.append(shardPath)
        }
        guard shard.tensors[name] != nil else {
          throw FileError(.missingTensor, file: shard.path, tensor: name,
                          problem: "the index \(file) places the tensor in this shard, which does not hold it",
                          expected: "the tensor in the shard its weight_map entry names")
        }
        fileOf[name] = shard
      }
      self.init(path: file, metadata: index.metadata, fileOf: fileOf, files: files)
    } else {
      let single = try SafetensorsFile(path: file)
      var fileOf: [String: SafetensorsFile] = [:]
      for name in single.names { fileOf[name] = single }
      self.init(path: file, metadata: single.metadata, fileOf: fileOf, files: [file])
    }
  }

  private init(path: String, metadata: [String: String], fileOf: [String: SafetensorsFile], files: [String]) {
    self.path = path
    self.metadata = metadata
    self.fileOf = fileOf
    self.files = files
    self.names = fileOf.keys.sorted()
  }

  /// The checkpoint file in `directory`.
  private static func find(in directory: String) throws(FileError) -> String {
    for name in [indexFileName, singleFileName] where PathName.exists(PathName.join(directory, name)) {
      return PathName.join(directory, name)
    }
    let entries: [String]
    do {
      entries = try FileManager.default.contentsOfDirectory(atPath: directory)
    } catch {
      throw FileError(.io, file: directory, problem: "cannot list the directory: \(error)")
    }
    let indexes = entries.filter { $0.hasSuffix(".safetensors.index.json") }
    let singles = entries.filter { $0.hasSuffix(".safetensors") }
    if indexes.count == 1 { return PathName.join(directory, indexes[0]) }
    if indexes.isEmpty && singles.count == 1 { return PathName.join(directory, singles[0]) }
    throw FileError(
      .io, file: directory,
      problem: "the directory holds \(indexes.count) index files and \(singles.count) .safetensors files",
      expected: "\(indexFileName), \(singleFileName), or exactly one *.safetensors.index.json or *.safetensors file")
  }

  /// Whether the checkpoint holds `name`.
  public func contains(_ name: String) -> Bool { fileOf[name] != nil }

  /// The header entry of `name`.
  public func info(_ name: String) throws(FileError) -> TensorInfo {
    try file(of: name).info(name)
  }

  /// The values of `name` as Float (F32, F16 or BF16 tensors).
  public func load(_ name: String) throws(FileError) -> [Float] {
    try file(of: name).load(name)
  }

  /// The values of `name`, after checking that its shape is `shape`.
  public func load(_ name: String, shape: [Int]) throws(FileError) -> [Float] {
    try file(of: name).load(name, shape: shape)
  }

  /// The file holding `name`.
  func file(of name: String) throws(FileError) -> SafetensorsFile {
    guard let file = fileOf[name] else {
      throw FileError(.missingTensor, file: path, tensor: name, problem: "no such tensor in the checkpoint",
                      expected: "one of its \(fileOf.count) tensors")
    }
    return file
  }
}

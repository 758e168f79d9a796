/// A sharded checkpoint's index file, checked: a JSON object with a `weight_map` of tensor names to
/// plain shard file names in the same directory, and optional `metadata`.
struct CheckpointIndex {
  /// The largest index accepted.
  static let maxSize = 100_000_000

  var metadata: [String: String] = [:]
  var weightMap: [String: String] = [:]

  init(path: String) throws(FileError) {
    let file = try InputFile(path: path)
    guard file.size <= Self.maxSize else {
      throw FileError(.malformed, file: path, problem: "the index holds \(file.size) bytes", expected: "at most \(Self.maxSize)")
    }
    let bytes = try file.readBytes(count: file.size, at: 0)
    let root: JSONValue
    do throws(JSONParseError) {
      root = try JSON.parse(bytes)
    } catch {
      throw FileError(.malformed, file: path, problem: "the index is not valid JSON: \(error.description)",
                      expected: #"{"metadata": {...}, "weight_map": {"tensor": "shard.safetensors", ...}}"#)
    }
    guard case .object(let object) = root else {
      throw FileError(.malformed, file: path, problem: "the index is \(root.kindName)", expected: "a JSON object with a weight_map")
    }
    if let metadata = object["metadata"] {
      guard case .object(let fields) = metadata else {
        throw FileError(.malformed, file: path, problem: "\"metadata\" is \(metadata.kindName)", expected: "an object")
      }
      for key in fields.keys { self.metadata[key] = fields[key]!.plainText }
    }
    guard case .object(let map)? = object["weight_map"] else {
      throw FileError(.malformed, file: path, problem: "\"weight_map\" is \(object["weight_map"]?.kindName ?? "missing")",
                      expected: "an object of tensor names to shard file names")
    }
    for name in map.keys {
      guard case .string(let shard) = map[name]! else {
        throw FileError(.malformed, file: path, tensor: name, problem: "the weight_map entry is \(map[name]!.kindName)",
                        expected: "a shard file name")
      }
      guard Self.isPlainFileName(shard) else {
        throw FileError(.malformed, file: path, tensor: name, problem: "the shard name \(JSON.quoted(shard)) is not a plain file name",
                        expected: "a file name in the index's directory (no '/', no '..', not absolute)")
      }
      weightMap[name] = shard
    }
  }

  /// A name that stays inside the index's directory: no separators, not "." or "..", no NUL.
  static func isPlainFileName(_ name: String) -> Bool {
    !name.isEmpty && name != "." && name != ".." && !name.contains("/") && !name.contains("\\") && !name.contains("\0")
  }
}

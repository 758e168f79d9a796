/// The parsed JSON header of a safetensors file, every entry checked against the data section.
struct SafetensorsHeader {
  var tensors: [String: TensorInfo] = [:]
  /// Tensor names in the order of their data.
  var names: [String] = []
  var metadata: [String: String] = [:]

  /// Parses `bytes` (the header) of `file`, whose data section holds `dataSize` bytes.
  init(bytes: [UInt8], dataSize: Int, file: String) throws(FileError) {
    let root: JSONValue
    do throws(JSONParseError) {
      root = try JSON.parse(bytes)
    } catch {
      throw FileError(.malformed, file: file, problem: "the header is not valid JSON: \(error.description)",
                      expected: "a JSON object of tensor entries")
    }
    guard case .object(let object) = root else {
      throw FileError(.malformed, file: file, problem: "the header is \(root.kindName)", expected: "a JSON object of tensor entries")
    }
    var order: [(Int, Int, String)] = []
    for key in object.keys {
      let entry = object[key]!
      if key == "__metadata__" {
        metadata = try Self.metadata(entry, file: file)
        continue
      }
      let info = try Self.tensor(key, entry, dataSize: dataSize, file: file)
      tensors[key] = info
      order.append((info.dataOffsets.lowerBound, info.dataOffsets.upperBound, key))
    }
    // The format requires the data to be packed without holes or overlaps; enforcing it also bounds
    // the Float values all tensors together can produce by the file's size.
    var end = 0
    var previous: String?
    for name in order.sorted(by: { $0 < $1 }).map(\.2) {
      let range = tensors[name]!.dataOffsets
      guard range.lowerBound == end else {
        let after = previous.map { "the previous tensor '\($0)' ends at \(end)" } ?? "the data section starts at 0"
        throw FileError(.malformed, file: file, tensor: name,
                        problem: "data_offsets [\(range.lowerBound), \(range.upperBound)] begin at \(range.lowerBound) but \(after)",
                        expected: "tensors packed back to back, without gaps or overlaps")
      }
      end = range.upperBound
      previous = name
      names.append(name)
    }
    guard end == dataSize else {
      throw FileError(.malformed, file: file, problem: "the tensors end at byte \(end) of a \(dataSize)-byte data section",
                      expected: "the tensors to fill the data section exactly")
    }
  }

  private static func metadata(_ value: JSONValue, file: String) throws(FileError) -> [String: String] {
    guard case .object(let object) = value else {
      throw FileError(.malformed, file: file, problem: "__metadata__ is \(value.kindName)", expected: "an object of string values")
    }
    var result: [String: String] = [:]
    for key in object.keys {
      guard case .string(let text) = object[key]! else {
        throw FileError(.malformed, file: file, problem: "__metadata__ entry '\(key)' is \(object[key]!.kindName)",
                        expected: "a string")
      }
      result[key] = text
    }
    return result
  }

  private static func tensor(_ name: String, _ value: JSONValue, dataSize: Int, file: String) throws(FileError) -> TensorInfo {
    func bad(_ problem: String, _ expected: String) -> FileError {
      FileError(.malformed, file: file, tensor: name, problem: problem, expected: expected)
    }
    let entryForm = #"{"dtype": "F32", "shape": [..], "data_offsets": [begin, end]}"#
    guard case .object(let entry) = value else { throw bad("the header entry is \(value.kindName)", "an object \(entryForm)") }
    guard case .string(let dtypeName)? = entry["dtype"] else {
      throw bad("\"dtype\" is \(entry["dtype"]?.kindName ?? "missing")", "a dtype name such as \"F32\", \"F16\" or \"BF16\"")
    }
    guard case .array(let dims)? = entry["shape"] else {
      throw bad("\"shape\" is \(entry["shape"]?.kindName ?? "missing")", "an array of non-negative integers")
    }
    var shape: [Int] = []
    for dim in dims {
      guard let size = dim.nonNegativeInt else { throw bad("\"shape\" holds \(dim.kindName)", "non-negative integers") }
      shape.append(size)
    }
    guard case .array(let offsets)? = entry["data_offsets"], offsets.count == 2,
      let begin = offsets[0].nonNegativeInt, let end = offsets[1].nonNegativeInt
    else {
      throw bad("\"data_offsets\" is \(entry["data_offsets"]?.jsonText ?? "missing")", "[begin, end], two non-negative integers")
    }
    guard begin <= end else {
      throw bad("data_offsets [\(begin), \(end)] end before they begin", "begin ≤ end")
    }
    guard end <= dataSize else {
      throw FileError(
        .truncated, file: file, tensor: name,
        problem: "data_offsets [\(begin), \(end)] reach past the data section, which holds \(dataSize) bytes",
        expected: "offsets within the file (is it truncated?)")
    }
    let dtype = SafetensorsDType(name: dtypeName)
    guard let count = Checked.product(shape) else {
      throw bad("shape \(shapeText(shape)) has more elements than can be addressed", "a shape whose product fits the file")
    }
    if let size = dtype.elementSize {
      let (bytes, overflow) = count.multipliedReportingOverflow(by: size)
      guard !overflow, bytes == end - begin else {
        throw bad("data_offsets [\(begin), \(end)] hold \(end - begin) bytes",
                  "\(overflow ? "more than Int.max" : String(bytes)) bytes for shape \(shapeText(shape)) of \(dtypeName) (\(size) bytes each)")
      }
    }
    return TensorInfo(name: name, dtype: dtype, shape: shape, dataOffsets: begin..<end, elementCount: count)
  }
}

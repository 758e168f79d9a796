import MoECore

extension SafetensorsFile {
  /// Writes `tensors` to `path` as a safetensors file, every tensor stored as `dtype` (values are
  /// rounded to nearest, ties to even). Tensors are laid out in the order given; the header is
  /// padded with spaces to a multiple of 8 bytes. The file is replaced atomically.
  ///
  /// Throws `invalidArgument` for an empty, reserved or repeated name, or values that do not fill
  /// their shape.
  public static func write(
    _ tensors: [NamedTensor], dtype: DType, metadata: [String: String] = [:], to path: String
  ) throws(FileError) {
    try write(tensors.map { TensorSlice(name: $0.name, shape: $0.shape, values: $0.values[...]) },
              dtype: dtype, metadata: metadata, to: path)
  }

  static func write(_ tensors: [TensorSlice], dtype: DType, metadata: [String: String], to path: String) throws(FileError) {
    let encoding = ElementEncoding(dtype)
    var entries: [String] = []
    if !metadata.isEmpty {
      let fields = metadata.keys.sorted().map { JSON.quoted($0) + ":" + JSON.quoted(metadata[$0]!) }
      entries.append("\"__metadata__\":{" + fields.joined(separator: ",") + "}")
    }
    var seen = Set<String>()
    var offset = 0
    for tensor in tensors {
      func bad(_ problem: String, _ expected: String) -> FileError {
        FileError(.invalidArgument, file: path, tensor: tensor.name, problem: problem, expected: expected)
      }
      guard !tensor.name.isEmpty, tensor.name != "__metadata__" else {
        throw bad("the name is reserved or empty", "a non-empty name other than __metadata__")
      }
      guard seen.insert(tensor.name).inserted else { throw bad("the name is given twice", "unique tensor names") }
      guard let count = Checked.product(tensor.shape), count == tensor.values.count else {
        throw bad("\(tensor.values.count) values for shape \(shapeText(tensor.shape))",
                  "as many values as the shape's product of non-negative sizes")
      }
      let bytes = count * encoding.size  // count ≤ values in memory, so no overflow
      let shape = tensor.shape.map(String.init).joined(separator: ",")
      entries.append(JSON.quoted(tensor.name) + ":{\"dtype\":\"\(SafetensorsDType(dtype).name)\",\"shape\":[\(shape)],"
                     + "\"data_offsets\":[\(offset),\(offset + bytes)]}")
      offset += bytes
    }
    var header = Array(("{" + entries.joined(separator: ",") + "}").utf8)
    header.append(contentsOf: repeatElement(UInt8(ascii: " "), count: (8 - header.count % 8) % 8))
    try AtomicFile.write(to: path) { (out: inout AtomicFile.Writer) throws(FileError) in
      var length = UInt64(header.count).littleEndian
      try withUnsafeBytes(of: &length) { (raw) throws(FileError) in try out.write(raw) }
      try out.write(header)
      for tensor in tensors { try out.write(tensor.values, as: encoding) }
    }
  }
}

import MoECore

/// A safetensors file opened for reading.
///
/// Format: an 8-byte little-endian header length N, N bytes of JSON header
/// (`{"name": {"dtype", "shape", "data_offsets"}, ..., "__metadata__": {...}}`), then the data
/// section that `data_offsets` index. Opening reads and checks only the header: its length against
/// the file and `maxHeaderSize`, every entry's offsets against the data section and its byte count
/// against its shape and dtype. Tensor data is read with pread when a tensor is loaded, so a
/// multi-gigabyte file costs only the tensors asked for.
public final class SafetensorsFile: Sendable {
  /// The largest header accepted (the reference implementation's limit).
  public static let maxHeaderSize = 100_000_000

  /// The path as given to `init`.
  public let path: String
  /// Every tensor in the header, by name.
  public let tensors: [String: TensorInfo]
  /// Tensor names in the order of their data in the file.
  public let names: [String]
  /// The header's `__metadata__` (empty when absent).
  public let metadata: [String: String]

  private let file: InputFile
  /// The file offset where the data section begins (8 + header length).
  private let dataStart: Int

  /// Opens `path` and checks its header; throws a `FileError` naming the file (and the tensor,
  /// where one entry is at fault) for anything that does not follow the format.
  public init(path: String) throws(FileError) {
    let file = try InputFile(path: path)
    guard file.size >= 8 else {
      throw FileError(.truncated, file: path, problem: "the file holds \(file.size) bytes",
                      expected: "at least 8 (the header length) for a safetensors file")
    }
    let lengthBytes = try file.readBytes(count: 8, at: 0)
    let length = lengthBytes.withUnsafeBytes { UInt64(littleEndian: $0.loadUnaligned(as: UInt64.self)) }
    guard length <= UInt64(file.size - 8) else {
      throw FileError(.truncated, file: path, problem: "the header length \(length) is larger than the \(file.size - 8) bytes after it",
                      expected: "a complete safetensors file (is it truncated, or not safetensors?)")
    }
    guard length <= UInt64(Self.maxHeaderSize) else {
      throw FileError(.malformed, file: path, problem: "the header length is \(length) bytes",
                      expected: "at most \(Self.maxHeaderSize) bytes")
    }
    let headerSize = Int(length)
    let header = try SafetensorsHeader(
      bytes: try file.readBytes(count: headerSize, at: 8), dataSize: file.size - 8 - headerSize, file: path)
    self.path = path
    self.file = file
    self.dataStart = 8 + headerSize
    self.tensors = header.tensors
    self.names = header.names
    self.metadata = header.metadata
  }

  /// The header entry of `name`.
  public func info(_ name: String) throws(FileError) -> TensorInfo {
    guard let info = tensors[name] else {
      throw FileError(.missingTensor, file: path, tensor: name, problem: "no such tensor in the file",
                      expected: "one of its \(tensors.count) tensors")
    }
    return info
  }

  /// The values of `name` (F32, F16 or BF16), converted exactly to Float, in row-major order.
  public func load(_ name: String) throws(FileError) -> [Float] {
    try load(info(name))
  }

  /// The values of `name`, after checking that its shape is `shape`.
  public func load(_ name: String, shape: [Int]) throws(FileError) -> [Float] {
    let info = try info(name)
    try check(info, shape: shape)
    return try load(info)
  }

  /// Throws unless `info` has shape `shape`.
  func check(_ info: TensorInfo, shape: [Int]) throws(FileError) {
    guard info.shape == shape else {
      throw FileError(.shapeMismatch, file: path, tensor: info.name, problem: "shape is \(shapeText(info.shape))",
                      expected: shapeText(shape))
    }
  }

  private func load(_ info: TensorInfo) throws(FileError) -> [Float] {
    _ = try encoding(of: info)  // before allocating
    var values = [Float](repeating: 0, count: info.elementCount)
    var failure: FileError?
    values.withUnsafeMutableBufferPointer { buffer in
      do throws(FileError) { try read(info, into: buffer) } catch { failure = error }
    }
    if let failure { throw failure }
    return values
  }

  /// Reads `info`'s values into `buffer` (exactly `info.elementCount` elements).
  func read(_ info: TensorInfo, into buffer: UnsafeMutableBufferPointer<Float>) throws(FileError) {
    let encoding = try encoding(of: info)
    precondition(buffer.count == info.elementCount)
    try file.readElements(encoding, into: buffer, at: dataStart + info.dataOffsets.lowerBound, tensor: info.name)
  }

  /// How `info` is stored; throws for dtypes that do not load as Float.
  private func encoding(of info: TensorInfo) throws(FileError) -> ElementEncoding {
    guard let dtype = info.dtype.dtype else {
      throw FileError(.unsupportedDType, file: path, tensor: info.name, problem: "unsupported dtype \(info.dtype.name)",
                      expected: "F32, F16 or BF16")
    }
    return ElementEncoding(dtype)
  }
}

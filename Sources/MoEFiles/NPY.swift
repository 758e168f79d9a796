/// The element types of `.npy` files this library reads and writes (little-endian floats).
public enum NPYDType: String, CaseIterable, Sendable {
  case f2 = "<f2"
  case f4 = "<f4"
  case f8 = "<f8"

  var encoding: ElementEncoding {
    switch self {
    case .f2: return .f16
    case .f4: return .f32
    case .f8: return .f64
    }
  }
}

/// NumPy `.npy` arrays (format versions 1.0, 2.0 and 3.0).
///
/// Layout: the magic `\x93NUMPY`, a major and minor version byte, the header length (u16 for 1.0,
/// u32 for 2.0 and 3.0, little-endian), a Python dict literal such as
/// `{'descr': '<f4', 'fortran_order': False, 'shape': (4096, 1024), }` padded with spaces and a
/// newline, then the data.
public enum NPY {
  /// The largest header accepted.
  public static let maxHeaderSize = 1 << 20

  /// Reads a 2-D, C-order array of `<f4`, `<f2` or `<f8` values as Float (`<f8` rounded to
  /// nearest, the others exact). Throws a `FileError` naming the file and what was found for any
  /// other array, and when the data is shorter or longer than the header's shape.
  public static func read(path: String) throws(FileError) -> (shape: [Int], values: [Float]) {
    let file = try InputFile(path: path)
    let start = try file.readBytes(count: min(file.size, 12), at: 0)
    let magic: [UInt8] = [0x93] + Array("NUMPY".utf8)
    guard start.count >= 6, Array(start[0..<6]) == magic else {
      throw FileError(.malformed, file: path, problem: "the file does not start with the .npy magic",
                      expected: "\\x93NUMPY (a NumPy .npy file)")
    }
    guard start.count >= 10 else {
      throw FileError(.truncated, file: path, problem: "the file holds \(file.size) bytes", expected: "at least 10")
    }
    let (major, minor) = (start[6], start[7])
    guard (1...3).contains(major), minor == 0 else {
      throw FileError(.malformed, file: path, problem: "format version \(major).\(minor)", expected: "1.0, 2.0 or 3.0")
    }
    let headerStart = major == 1 ? 10 : 12
    guard start.count >= headerStart else {
      throw FileError(.truncated, file: path, problem: "the file holds \(file.size) bytes", expected: "at least \(headerStart)")
    }
    let headerLength = major == 1
      ? Int(UInt16(start[8]) | UInt16(start[9]) << 8)
      : Int(UInt32(start[8]) | UInt32(start[9]) << 8 | UInt32(start[10]) << 16 | UInt32(start[11]) << 24)
    guard headerLength <= file.size - headerStart else {
      throw FileError(.truncated, file: path, problem: "the header length \(headerLength) is larger than the \(file.size - headerStart) bytes after it",
                      expected: "a complete .npy file")
    }
    guard headerLength <= maxHeaderSize else {
      throw FileError(.malformed, file: path, problem: "the header length is \(headerLength) bytes", expected: "at most \(maxHeaderSize)")
    }
    let header = try NPYHeader(bytes: file.readBytes(count: headerLength, at: headerStart), file: path)
    let dataStart = headerStart + headerLength
    guard !header.fortranOrder else {
      throw FileError(.malformed, file: path, problem: "fortran_order is True (column-major data)",
                      expected: "C order (fortran_order False; save np.ascontiguousarray(a))")
    }
    guard header.shape.count == 2 else {
      throw FileError(.shapeMismatch, file: path, problem: "the array has \(header.shape.count) dimensions, shape \(NPYHeader.tuple(header.shape))",
                      expected: "a 2-D array")
    }
    let dataBytes = file.size - dataStart
    let count = Checked.product(header.shape)
    let needed = count.flatMap { Checked.product([$0, header.dtype.encoding.size]) }
    guard let count, let needed, needed == dataBytes else {
      throw FileError(dataBytes < (needed ?? Int.max) ? .truncated : .malformed, file: path,
                      problem: "the file holds \(dataBytes) data bytes after the header",
                      expected: "\(needed.map(String.init) ?? "more than \(Int.max)") bytes for shape \(NPYHeader.tuple(header.shape)) of '\(header.dtype.rawValue)'")
    }
    var values = [Float](repeating: 0, count: count)
    var failure: FileError?
    values.withUnsafeMutableBufferPointer { buffer in
      do throws(FileError) { try file.readElements(header.dtype.encoding, into: buffer, at: dataStart) } catch { failure = error }
    }
    if let failure { throw failure }
    return (header.shape, values)
  }

  /// Writes `values` with `shape` (C order) as `dtype`, rounding to nearest (ties to even) for
  /// `<f2`; the header is padded so that the data starts at a multiple of 64 bytes. Atomic.
  public static func write(_ values: [Float], shape: [Int], dtype: NPYDType = .f4, to path: String) throws(FileError) {
    guard let count = Checked.product(shape), count == values.count else {
      throw FileError(.invalidArgument, file: path, problem: "\(values.count) values for shape \(NPYHeader.tuple(shape))",
                      expected: "as many values as the shape's product of non-negative sizes")
    }
    let dict = "{'descr': '\(dtype.rawValue)', 'fortran_order': False, 'shape': \(NPYHeader.tuple(shape)), }"
    var major: UInt8 = 1
    var prefix = 10
    if dict.utf8.count + 1 + prefix > Int(UInt16.max) {
      major = 2
      prefix = 12
    }
    let padding = (64 - (prefix + dict.utf8.count + 1) % 64) % 64
    let header = Array(dict.utf8) + [UInt8](repeating: UInt8(ascii: " "), count: padding) + [UInt8(ascii: "\n")]
    var bytes: [UInt8] = [0x93] + Array("NUMPY".utf8) + [major, 0]
    if major == 1 {
      bytes += [UInt8(header.count & 0xFF), UInt8(header.count >> 8)]
    } else {
      bytes += (0..<4).map { UInt8(truncatingIfNeeded: header.count >> (8 * $0)) }
    }
    bytes += header
    try AtomicFile.write(to: path) { (out: inout AtomicFile.Writer) throws(FileError) in
      try out.write(bytes)
      try out.write(values[...], as: dtype.encoding)
    }
  }
}

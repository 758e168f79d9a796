internal import CCUDA

/// A 2-D row-major matrix in device memory as the TMA unit sees it (cuTensorMapEncodeTiled): the
/// kernel copies `boxRows` × `boxColumns` boxes of it into shared memory in the 128-byte swizzle
/// layout wgmma reads.
public struct TiledMatrix: Sendable, Equatable {
  public var address: UInt64
  /// Bytes per element: 2 (bf16, fp16) or 4 (fp32). The bits are copied as they are.
  public var elementBytes: Int
  public var rows: Int, columns: Int
  public var boxRows: Int, boxColumns: Int

  public init(address: UInt64, elementBytes: Int, rows: Int, columns: Int, boxRows: Int, boxColumns: Int) {
    self.address = address
    self.elementBytes = elementBytes
    self.rows = rows
    self.columns = columns
    self.boxRows = boxRows
    self.boxColumns = boxColumns
  }

  /// What cuTensorMapEncodeTiled requires of this use, checked here so the error names the field:
  /// a 16-byte-aligned address and row pitch, box rows in 1...256, a box row of exactly the
  /// swizzle's 128 bytes.
  public func validate() throws {
    func fail(_ field: String, _ value: Any, _ expected: String) -> CUDAError {
      .invalidArgument(call: "cuTensorMapEncodeTiled", message: "\(field) is \(value); expected \(expected)")
    }
    guard elementBytes == 2 || elementBytes == 4 else { throw fail("elementBytes", elementBytes, "2 or 4") }
    guard address % 16 == 0, address != 0 else { throw fail("address", address, "a non-null multiple of 16") }
    guard rows >= 1, columns >= 1, (columns * elementBytes) % 16 == 0 else {
      throw fail("columns", columns, "at least 1, with a row pitch that is a multiple of 16 bytes")
    }
    guard boxRows >= 1, boxRows <= 256, boxRows <= rows else { throw fail("boxRows", boxRows, "1...min(256, rows \(rows))") }
    guard boxColumns * elementBytes == 128, boxColumns <= columns else {
      throw fail("boxColumns", boxColumns, "\(128 / elementBytes) (a 128-byte box row, the swizzle's span)")
    }
  }
}

extension Driver {
  /// The 128 bytes of a tensor map for `matrix`: 128-byte swizzle, no interleave, L2 promotion
  /// to 256-byte lines, no out-of-bounds fill (every box the kernel asks for is inside).
  public func tensorMap(_ matrix: TiledMatrix) throws -> [UInt8] {
    try matrix.validate()
    guard let encode = cuTensorMapEncodeTiled else {
      throw CUDAError.invalidArgument(
        call: "cuTensorMapEncodeTiled", message: "driver \(versionString) has no tensor maps; expected CUDA 12.0 or later")
    }
    let uint16 = Int32(1), uint32 = Int32(2), swizzle128 = Int32(3), promote256 = Int32(3)
    var dims: [UInt64] = [UInt64(matrix.columns), UInt64(matrix.rows)]
    var strides: [UInt64] = [UInt64(matrix.columns * matrix.elementBytes)]
    var box: [UInt32] = [UInt32(matrix.boxColumns), UInt32(matrix.boxRows)]
    var elementStrides: [UInt32] = [1, 1]
    let map = UnsafeMutableRawPointer.allocate(byteCount: 128, alignment: 64)
    defer { map.deallocate() }
    map.initializeMemory(as: UInt8.self, repeating: 0, count: 128)
    try check(
      encode(
        map, matrix.elementBytes == 2 ? uint16 : uint32, 2, UnsafeMutableRawPointer(bitPattern: UInt(matrix.address)),
        &dims, &strides, &box, &elementStrides, 0, swizzle128, promote256, 0),
      "cuTensorMapEncodeTiled(\(matrix.rows)×\(matrix.columns), box \(matrix.boxRows)×\(matrix.boxColumns))")
    return Array(UnsafeRawBufferPointer(start: map, count: 128))
  }
}

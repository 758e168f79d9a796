import Testing
@testable import CUDADriver

/// What `TiledMatrix.validate` refuses before cuTensorMapEncodeTiled sees it. No GPU needed.
@Suite("tensor map arguments")
struct TensorMapTests {
  static let good = TiledMatrix(address: 0x7f00_0000_0000, elementBytes: 2, rows: 65536, columns: 2048, boxRows: 128, boxColumns: 64)

  @Test("the kernel's maps pass: bf16 and fp32, boxes of 64 to 256 rows")
  func valid() throws {
    try Self.good.validate()
    var fp32 = Self.good
    fp32.elementBytes = 4
    fp32.boxColumns = 32
    for rows in [64, 256] {
      fp32.boxRows = rows
      try fp32.validate()
    }
  }

  /// One bad value per case: (field the error must name, what is changed).
  static func damaged(_ name: String) -> TiledMatrix {
    var m = good
    switch name {
    case "elementBytes 8": m.elementBytes = 8
    case "address unaligned": m.address = 0x7f00_0000_0008
    case "address null": m.address = 0
    case "row pitch 4088 bytes": m.columns = 2044
    case "boxRows 512": m.boxRows = 512
    case "boxRows 0": m.boxRows = 0
    default: m.boxColumns = 32  // a 64-byte box row
    }
    return m
  }

  @Test("each bad field is named", arguments: [
    ("elementBytes", "elementBytes 8"), ("address", "address unaligned"), ("address", "address null"),
    ("columns", "row pitch 4088 bytes"), ("boxRows", "boxRows 512"), ("boxRows", "boxRows 0"), ("boxColumns", "box row 64 bytes"),
  ])
  func invalid(field: String, damage: String) {
    let matrix = Self.damaged(damage)
    do {
      try matrix.validate()
      Issue.record("\(damage): accepted")
    } catch let error as CUDAError {
      #expect("\(error)".contains("\(field) is"), "\(damage): \(error)")
    } catch {
      Issue.record("\(error)")
    }
  }
}

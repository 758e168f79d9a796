import Foundation
import MoECore
import MoEFiles
import Testing

@Suite struct NPYFiles {
  @Test(arguments: NPYDType.allCases)
  func roundTrip(dtype: NPYDType) throws {
    try withTempDir { dir in
      let values = testValues(count: 60)
      let path = dir.file("a.npy")
      try NPY.write(values, shape: [12, 5], dtype: dtype, to: path)
      let (shape, read) = try NPY.read(path: path)
      #expect(shape == [12, 5])
      let expected = dtype == .f2 ? values.map(\.roundedToFP16) : values
      #expect(bits(read) == bits(expected))

      let bytes = dir.bytes("a.npy")
      let size = dtype == .f2 ? 2 : dtype == .f4 ? 4 : 8
      #expect((bytes.count - 60 * size) % 64 == 0)
      #expect(Array(bytes[0..<8]) == [0x93] + Array("NUMPY".utf8) + [1, 0])
      let header = String(decoding: bytes[10..<(bytes.count - 60 * size)], as: UTF8.self)
      #expect(header.hasPrefix("{'descr': '\(dtype.rawValue)', 'fortran_order': False, 'shape': (12, 5), }"))
      #expect(header.hasSuffix(" \n"))
    }
  }

  @Test func knownBytes() throws {
    try withTempDir { dir in
      try NPY.write([1, -2], shape: [1, 2], dtype: .f2, to: dir.file("h.npy"))
      #expect(Array(dir.bytes("h.npy").suffix(4)) == [0x00, 0x3C, 0x00, 0xC0])
      try NPY.write([1], shape: [1, 1], dtype: .f4, to: dir.file("f.npy"))
      #expect(dir.bytes("f.npy").count == 128 + 4)  // a 60-byte dict + 11 bytes does not fit in 64
    }
  }

  /// A .npy file with the given header text (padded with spaces to a multiple of 64, newline last).
  static func npy(_ header: String, data: [UInt8], major: UInt8 = 1, magic: [UInt8]? = nil) -> [UInt8] {
    let prefix = major == 1 ? 10 : 12
    var text = Array(header.utf8)
    while (prefix + text.count + 1) % 64 != 0 { text.append(0x20) }
    text.append(0x0A)
    let length = major == 1
      ? [UInt8(text.count & 0xFF), UInt8(text.count >> 8)]
      : (0..<4).map { UInt8(truncatingIfNeeded: text.count >> (8 * $0)) }
    return (magic ?? [0x93] + Array("NUMPY".utf8)) + [major, 0] + length + text + data
  }

  static let floats: [UInt8] = [0, 0, 0x80, 0x3F, 0, 0, 0, 0x40, 0, 0, 0x40, 0x40, 0, 0, 0x80, 0x40, 0, 0, 0xA0, 0x40, 0, 0, 0xC0, 0x40]

  @Test(arguments: [UInt8(1), 2, 3])
  func readsOtherWriters(major: UInt8) throws {
    try withTempDir { dir in
      let header = #"{"shape": (2L, 3L), "fortran_order": False, 'descr': '<f4'}"#
      let path = dir.write(Self.npy(header, data: Self.floats, major: major), "v\(major).npy")
      let (shape, values) = try NPY.read(path: path)
      #expect(shape == [2, 3])
      #expect(values == [1, 2, 3, 4, 5, 6])
    }
  }

  static let bad: [(String, [UInt8], FileError.Kind, [String])] = [
    ("bad magic", npy("{'descr': '<f4', 'fortran_order': False, 'shape': (2, 3), }", data: floats, magic: Array("PKNUMPY".utf8.prefix(6))),
     .malformed, ["magic"]),
    ("version 4", Array(npy("{'descr': '<f4', 'fortran_order': False, 'shape': (2, 3), }", data: floats, major: 2)).enumerated().map { $0 == 6 ? 4 : $1 },
     .malformed, ["version 4.0"]),
    ("fortran", npy("{'descr': '<f4', 'fortran_order': True, 'shape': (2, 3), }", data: floats), .malformed, ["fortran_order is True", "C order"]),
    ("3-D", npy("{'descr': '<f4', 'fortran_order': False, 'shape': (1, 2, 3), }", data: floats), .shapeMismatch, ["3 dimensions", "(1, 2, 3)", "2-D"]),
    ("1-D", npy("{'descr': '<f4', 'fortran_order': False, 'shape': (6,), }", data: floats), .shapeMismatch, ["1 dimensions", "(6,)"]),
    ("0-D", npy("{'descr': '<f4', 'fortran_order': False, 'shape': (), }", data: Array(floats[0..<4])), .shapeMismatch, ["0 dimensions", "()"]),
    ("short data", npy("{'descr': '<f4', 'fortran_order': False, 'shape': (2, 3), }", data: Array(floats[0..<20])), .truncated,
     ["holds 20 data bytes", "24 bytes for shape (2, 3) of '<f4'"]),
    ("extra data", npy("{'descr': '<f4', 'fortran_order': False, 'shape': (2, 3), }", data: floats + [0]), .malformed, ["holds 25 data bytes"]),
    ("huge shape", npy("{'descr': '<f4', 'fortran_order': False, 'shape': (4611686018427387904, 4), }", data: floats), .truncated,
     ["more than"]),
    ("big-endian", npy("{'descr': '>f4', 'fortran_order': False, 'shape': (2, 3), }", data: floats), .unsupportedDType, ["'>f4'", "'<f4'"]),
    ("int", npy("{'descr': '<i4', 'fortran_order': False, 'shape': (2, 3), }", data: floats), .unsupportedDType, ["'<i4'"]),
    ("no shape", npy("{'descr': '<f4', 'fortran_order': False, }", data: floats), .malformed, ["no 'shape'"]),
    ("extra key", npy("{'descr': '<f4', 'fortran_order': False, 'shape': (2, 3), 'x': True}", data: floats), .malformed, ["unexpected key 'x'"]),
    ("repeated key", npy("{'descr': '<f4', 'descr': '<f4', 'fortran_order': False, 'shape': (2, 3)}", data: floats), .malformed, ["repeats"]),
    ("garbage", npy("{'descr': '<f4', 'fortran_order': False, 'shape': (2, 3)} junk", data: floats), .malformed, ["text after the dict"]),
    ("negative", npy("{'descr': '<f4', 'fortran_order': False, 'shape': (-2, 3)}", data: floats), .malformed, ["not a non-negative integer"]),
    ("not a dict", npy("['<f4']", data: floats), .malformed, ["lacks '{'"]),
    ("header too long", [0x93] + Array("NUMPY".utf8) + [1, 0, 0xFF, 0xFF] + Array("{}".utf8), .truncated, ["header length 65535"]),
    ("tiny", [0x93, 0x4E], .malformed, ["magic"]),
    ("v2 header length", [0x93] + Array("NUMPY".utf8) + [2, 0, 0xFF, 0xFF, 0xFF, 0xFF] + Array("{}".utf8), .truncated, ["header length 4294967295"]),
  ]

  @Test(arguments: bad.indices)
  func rejects(index: Int) throws {
    let (label, bytes, kind, mentions) = Self.bad[index]
    try withTempDir { dir in
      let name = "bad-\(index).npy"
      let path = dir.write(bytes, name)
      let error = expectFileError(kind, mentions: [name] + mentions) { _ = try NPY.read(path: path) }
      #expect(error != nil, "\(label)")
    }
  }

  @Test func truncatedAtEveryRegion() throws {
    try withTempDir { dir in
      try NPY.write([Float](repeating: 1.5, count: 12), shape: [3, 4], dtype: .f4, to: dir.file("full.npy"))
      let bytes = dir.bytes("full.npy")
      for cut in [0, 5, 8, 9, 10, 40, 63, 64, 65, 100, bytes.count - 1] {
        let path = dir.write(Array(bytes[0..<cut]), "cut-\(cut).npy")
        expectFileError(mentions: ["cut-\(cut).npy"]) { _ = try NPY.read(path: path) }
      }
    }
  }

  @Test func writerChecksShape() throws {
    try withTempDir { dir in
      expectFileError(.invalidArgument, mentions: ["x.npy", "3 values", "(2, 2)"]) {
        try NPY.write([1, 2, 3], shape: [2, 2], to: dir.file("x.npy"))
      }
      #expect(dir.contents.isEmpty)
    }
  }
}

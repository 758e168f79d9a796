import Foundation
import MoECore
import MoEFiles
import Testing

@Suite struct SafetensorsErrors {
  /// Two tensors, a [2, 3] and b [4], F32.
  static func sample(in dir: TempDir) throws -> String {
    let path = dir.file("sample.safetensors")
    try SafetensorsFile.write([NamedTensor("a", shape: [2, 3], values: [1, 2, 3, 4, 5, 6]),
                               NamedTensor("b", shape: [4], values: [7, 8, 9, 10])], dtype: .fp32, to: path)
    return path
  }

  @Test func missingTensorAndWrongShape() throws {
    try withTempDir { dir in
      let file = try SafetensorsFile(path: try Self.sample(in: dir))
      expectFileError(.missingTensor, mentions: ["sample.safetensors", "'nope'"]) { _ = try file.load("nope") }
      expectFileError(.shapeMismatch, mentions: ["sample.safetensors", "'a'", "[2, 3]", "expected [3, 2]"]) {
        _ = try file.load("a", shape: [3, 2])
      }
    }
  }

  @Test(arguments: ["F64", "I32", "U8", "F8_E4M3", "BOOL"])
  func unsupportedDType(dtype: String) throws {
    try withTempDir { dir in
      let size = SafetensorsDType(name: dtype).elementSize!
      let header = #"{"w":{"dtype":"\#(dtype)","shape":[2],"data_offsets":[0,\#(2 * size)]}}"#
      let path = dir.write(rawSafetensors(header, data: [UInt8](repeating: 0, count: 2 * size)), "u.safetensors")
      let file = try SafetensorsFile(path: path)
      #expect(file.names == ["w"])
      expectFileError(.unsupportedDType, mentions: ["u.safetensors", "'w'", "unsupported dtype \(dtype)"]) { _ = try file.load("w") }
    }
  }

  /// Cuts the sample file at many points: inside the length field, the header, each tensor.
  @Test func truncatedFiles() throws {
    try withTempDir { dir in
      let bytes = dir.bytes(PathName(try Self.sample(in: dir)).name)
      let headerEnd = 8 + bytes[0..<8].reversed().reduce(0) { $0 << 8 | Int($1) }
      let cuts = [0, 3, 7, 8, 9, headerEnd / 2, headerEnd - 1, headerEnd, headerEnd + 1, headerEnd + 24, bytes.count - 1]
      for cut in cuts {
        let path = dir.write(Array(bytes[0..<cut]), "cut-\(cut).safetensors")
        // a ends at 24 data bytes, b at 40.
        let tensor = cut < headerEnd ? nil : (cut - headerEnd < 24 ? "'a'" : "'b'")
        expectFileError(.truncated, mentions: ["cut-\(cut).safetensors"] + (tensor.map { [$0] } ?? [])) {
          _ = try SafetensorsFile(path: path)
        }
      }
    }
  }

  @Test func headerLengthBeyondFileOrLimit() throws {
    try withTempDir { dir in
      let header = #"{"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4]}}"#
      let lying = dir.write(rawSafetensors(header, data: [0, 0, 0, 0], lengthField: 1 << 40), "lying.safetensors")
      expectFileError(.truncated, mentions: ["lying.safetensors", "header length 1099511627776"]) { _ = try SafetensorsFile(path: lying) }
      let huge = dir.write(rawSafetensors(header, data: [], lengthField: UInt64.max), "max.safetensors")
      expectFileError(.truncated, mentions: ["max.safetensors"]) { _ = try SafetensorsFile(path: huge) }

      // A sparse 200 MB file whose header claims 150 MB: over the 100 MB limit, rejected before reading.
      let sparse = dir.write(rawSafetensors("", data: [], lengthField: 150_000_000), "sparse.safetensors")
      let handle = try FileHandle(forWritingTo: URL(fileURLWithPath: sparse))
      try handle.truncate(atOffset: 200_000_000)
      try handle.close()
      expectFileError(.malformed, mentions: ["sparse.safetensors", "at most 100000000"]) { _ = try SafetensorsFile(path: sparse) }
    }
  }

  static let entry = #"{"dtype":"F32","shape":[2],"data_offsets":[0,8]}"#

  /// (header, data bytes, the error's kind, text the message must contain: file name is added)
  static let malformed: [(String, Int, FileError.Kind, [String])] = [
    ("not json", 8, .malformed, ["not valid JSON"]),
    ("", 0, .malformed, ["not valid JSON"]),
    ("[1, 2]", 0, .malformed, ["an array"]),
    (#"{"a":\#(entry),"a":\#(entry)}"#, 8, .malformed, ["duplicate key \"a\""]),
    (#"{"a":\#(entry)} x"#, 8, .malformed, ["unexpected text"]),
    (#"{"a":{"shape":[2],"data_offsets":[0,8]}}"#, 8, .malformed, ["'a'", "\"dtype\" is missing"]),
    (#"{"a":{"dtype":"F32","shape":[-2],"data_offsets":[0,8]}}"#, 8, .malformed, ["'a'", "shape", "-2"]),
    (#"{"a":{"dtype":"F32","shape":[2.0],"data_offsets":[0,8]}}"#, 8, .malformed, ["'a'", "shape", "2.0"]),
    (#"{"a":{"dtype":"F32","shape":2,"data_offsets":[0,8]}}"#, 8, .malformed, ["'a'", "\"shape\" is the number 2"]),
    (#"{"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8,9]}}"#, 8, .malformed, ["'a'", "data_offsets"]),
    (#"{"a":{"dtype":"F32","shape":[2],"data_offsets":[0,123456789012345678901234567890]}}"#, 8, .malformed, ["'a'", "data_offsets"]),
    (#"{"a":{"dtype":"F32","shape":[2],"data_offsets":[8,0]}}"#, 8, .malformed, ["'a'", "[8, 0]", "begin ≤ end"]),
    (#"{"a":{"dtype":"F32","shape":[2],"data_offsets":[0,16]}}"#, 8, .truncated, ["'a'", "[0, 16]", "8 bytes"]),
    (#"{"a":{"dtype":"F32","shape":[3],"data_offsets":[0,8]}}"#, 8, .malformed, ["'a'", "hold 8 bytes", "12 bytes for shape [3]"]),
    (#"{"a":{"dtype":"BF16","shape":[4611686018427387904,4],"data_offsets":[0,8]}}"#, 8, .malformed, ["'a'", "more elements"]),
    (#"{"a":{"dtype":"F32","shape":[2305843009213693952],"data_offsets":[0,8]}}"#, 8, .malformed, ["'a'", "more than Int.max"]),
    (#"{"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4]},"b":{"dtype":"F32","shape":[1],"data_offsets":[8,12]}}"#, 12,
     .malformed, ["'b'", "gaps"]),
    (#"{"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},"b":{"dtype":"F32","shape":[1],"data_offsets":[4,8]}}"#, 8,
     .malformed, ["'b'", "overlaps", "previous tensor 'a' ends at 8"]),
    (#"{"a":\#(entry)}"#, 12, .malformed, ["end at byte 8 of a 12-byte data section"]),
    (#"{"__metadata__":{"n":1},"a":\#(entry)}"#, 8, .malformed, ["__metadata__ entry 'n'"]),
    (#"{"__metadata__":[],"a":\#(entry)}"#, 8, .malformed, ["__metadata__ is an array"]),
    (#"{"a":"F32"}"#, 0, .malformed, ["'a'", "a string"]),
    ("{\"a\u{01}b\":\(entry)}", 8, .malformed, ["control character"]),
    (#"{"a\u0000\u001bb":{"dtype":"F32","shape":[3],"data_offsets":[0,8]}}"#, 8, .malformed, [#"'a\u{0}\u{1b}b'"#, "hold 8 bytes"]),
    ("{\"a\":" + String(repeating: "[", count: 100_000), 0, .malformed, ["nesting deeper than 64"]),
    (#"{"\ud800":\#(entry)}"#, 8, .malformed, ["surrogate"]),
  ]

  @Test(arguments: malformed.indices)
  func malformedHeaders(index: Int) throws {
    let (header, dataSize, kind, mentions) = Self.malformed[index]
    try withTempDir { dir in
      let name = "bad-\(index).safetensors"
      let path = dir.write(rawSafetensors(header, data: [UInt8](repeating: 0, count: dataSize)), name)
      expectFileError(kind, mentions: [name] + mentions) { _ = try SafetensorsFile(path: path) }
    }
  }

  @Test func invalidUTF8Name() throws {
    try withTempDir { dir in
      var bytes = Array(#"{"a":\#(Self.entry)}"#.utf8)
      bytes[2] = 0xFF
      while bytes.count % 8 != 0 { bytes.append(0x20) }
      let file = (0..<8).map { UInt8(truncatingIfNeeded: bytes.count >> (8 * $0)) } + bytes + [UInt8](repeating: 0, count: 8)
      let path = dir.write(file, "utf8.safetensors")
      expectFileError(.malformed, mentions: ["utf8.safetensors", "UTF-8"]) { _ = try SafetensorsFile(path: path) }
    }
  }

  @Test func notAFile() throws {
    try withTempDir { dir in
      expectFileError(.io, mentions: [dir.path, "not a regular file"]) { _ = try SafetensorsFile(path: dir.path) }
      expectFileError(.io, mentions: ["absent.safetensors", "No such file"]) { _ = try SafetensorsFile(path: dir.file("absent.safetensors")) }
    }
  }
}

/// The last path component, for tests.
struct PathName {
  let name: String
  init(_ path: String) { name = String(path.split(separator: "/").last ?? "") }
}

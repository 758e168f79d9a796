// Hostile inputs at the edges the fuzz targets (scripts/fuzz.sh, docs/RELIABILITY.md) exercise.
// The 7-minute runs of 2026-11-28 found no crash, ASan report, leak or timeout in MoEFiles; these
// inputs pin the guards the fuzzer kept hitting (length fields and sizes near Int/UInt64 limits,
// nesting), each of which must end in a FileError, never a trap. Inputs are embedded as bytes.

import Foundation
import MoECore
import MoEFiles
import Testing

@Suite struct FuzzRegression {
  static func le64(_ v: UInt64) -> [UInt8] { (0..<8).map { UInt8(truncatingIfNeeded: v >> (8 * $0)) } }

  static func npy(major: UInt8, length: [UInt8], header: String, data: [UInt8] = []) -> [UInt8] {
    [0x93] + Array("NUMPY".utf8) + [major, 0] + length + Array(header.utf8) + data
  }

  static func npyV1(_ dict: String, data: [UInt8] = []) -> [UInt8] {
    let header = Array(dict.utf8) + [0x0A]
    return npy(major: 1, length: [UInt8(header.count & 0xFF), UInt8(header.count >> 8)], header: dict + "\n", data: data)
  }

  @Test func safetensorsLengthFieldAtUInt64Max() throws {
    try withTempDir { dir in
      let path = dir.write(Self.le64(.max) + Array("{}".utf8), "len.safetensors")
      expectFileError(.truncated, mentions: ["len.safetensors", "18446744073709551615"]) { _ = try SafetensorsFile(path: path) }
    }
  }

  @Test func safetensorsShorterThanLengthField() throws {
    try withTempDir { dir in
      let path = dir.write([0x02, 0, 0, 0, 0, 0, 0], "short.safetensors")
      expectFileError(.truncated, mentions: ["short.safetensors"]) { _ = try SafetensorsFile(path: path) }
    }
  }

  @Test(arguments: [
    // The shape's product overflows Int.
    #"{"w":{"dtype":"F32","shape":[4294967296,4294967296],"data_offsets":[0,0]}}"#,
    // The product fits, its byte count (× 4) does not.
    #"{"w":{"dtype":"F32","shape":[4611686018427387904],"data_offsets":[0,0]}}"#,
    // An offset beyond Int.
    #"{"w":{"dtype":"F32","shape":[1],"data_offsets":[0,99999999999999999999]}}"#,
    // Negative, fractional and exponent offsets and dims.
    #"{"w":{"dtype":"F32","shape":[-1],"data_offsets":[0,0]}}"#,
    #"{"w":{"dtype":"F32","shape":[1],"data_offsets":[0,4e0]}}"#,
    // Zero-element tensor of an unknown dtype overlapping a real one.
    #"{"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4]},"b":{"dtype":"XX","shape":[0,9223372036854775807],"data_offsets":[0,4]}}"#,
    // Invalid UTF-8 in a name (\u{D800} unpaired) and duplicate keys.
    #"{"\ud800":{"dtype":"F32","shape":[1],"data_offsets":[0,4]}}"#,
    #"{"w":{"dtype":"F32","shape":[1],"data_offsets":[0,4]},"w":{"dtype":"F32","shape":[1],"data_offsets":[0,4]}}"#,
  ])
  func safetensorsHostileHeaders(header: String) throws {
    try withTempDir { dir in
      let path = dir.write(rawSafetensors(header, data: [0, 0, 0x80, 0x3F]), "h.safetensors")
      expectFileError(mentions: ["h.safetensors"]) { _ = try SafetensorsFile(path: path) }
    }
  }

  @Test func safetensorsNestingBeyondLimit() throws {
    try withTempDir { dir in
      let header = #"{"w":"# + String(repeating: "[", count: 100) + String(repeating: "]", count: 100) + "}"
      let path = dir.write(rawSafetensors(header, data: []), "deep.safetensors")
      expectFileError(.malformed, mentions: ["deep.safetensors", "nesting"]) { _ = try SafetensorsFile(path: path) }
    }
  }

  @Test func npyVersion2LengthFieldAtUInt32Max() throws {
    try withTempDir { dir in
      let path = dir.write(Self.npy(major: 2, length: [0xFF, 0xFF, 0xFF, 0xFF], header: "{}"), "len.npy")
      expectFileError(.truncated, mentions: ["len.npy", "4294967295"]) { _ = try NPY.read(path: path) }
    }
  }

  @Test(arguments: [
    "{'descr': '<f4', 'fortran_order': False, 'shape': (4294967296, 4294967296), }",  // product overflows
    "{'descr': '<f8', 'fortran_order': False, 'shape': (1152921504606846976, 2), }",  // bytes overflow
    "{'descr': '<f4', 'fortran_order': False, 'shape': (99999999999999999999, 1), }",  // beyond Int
    "{'descr': '<f4', 'fortran_order': False, 'shape': (-1, 1), }",
    "{'descr': '<f4', 'fortran_order': False, 'shape': (1, 1), 'shape': (1, 1), }",
    "{'descr': '<f4', 'fortran_order': False, 'shape': (1, 1)",  // unterminated
    "{'descr': '\u{7F}\u{FF}', 'fortran_order': False, 'shape': (1, 1), }",
  ])
  func npyHostileHeaders(dict: String) throws {
    try withTempDir { dir in
      let path = dir.write(Self.npyV1(dict, data: [0, 0, 0x80, 0x3F]), "h.npy")
      expectFileError(mentions: ["h.npy"]) { _ = try NPY.read(path: path) }
    }
  }
}

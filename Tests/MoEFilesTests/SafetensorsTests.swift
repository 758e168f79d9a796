import Foundation
import MoECore
import MoEFiles
import Testing

@Suite struct SafetensorsRoundTrip {
  @Test(arguments: DType.allCases)
  func valuesRoundExactly(dtype: DType) throws {
    try withTempDir { dir in
      let values = testValues()
      let small: [Float] = [1, -2, 0.5, 3]
      let path = dir.file("t.safetensors")
      try SafetensorsFile.write(
        [NamedTensor("big", shape: [10, 20], values: values), NamedTensor("small", shape: [2, 2], values: small),
         NamedTensor("empty", shape: [0, 4], values: []), NamedTensor("scalar", shape: [], values: [7])],
        dtype: dtype, metadata: ["format": "pt", "note": "quote \" and \\ and \n"], to: path)
      let file = try SafetensorsFile(path: path)
      #expect(Set(file.names) == ["big", "small", "empty", "scalar"])
      #expect(file.metadata == ["format": "pt", "note": "quote \" and \\ and \n"])
      let info = try file.info("big")
      #expect(info.shape == [10, 20])
      #expect(info.dtype == SafetensorsDType(dtype))
      #expect(info.dataOffsets.count == 200 * dtype.size)
      var expected = values
      expected.round(to: dtype)
      #expect(bits(try file.load("big")) == bits(expected))
      #expect(try file.load("small", shape: [2, 2]) == small)
      #expect(try file.load("empty") == [])
      #expect(try file.load("scalar", shape: []) == [7])
      // The header is padded with spaces so that the data starts at a multiple of 8.
      let bytes = dir.bytes("t.safetensors")
      let headerLength = bytes[0..<8].reversed().reduce(0) { $0 << 8 | Int($1) }
      #expect(headerLength % 8 == 0)
      #expect(bytes.count == 8 + headerLength + (200 + 4 + 0 + 1) * dtype.size)
    }
  }

  @Test(arguments: [(DType.fp32, [0x00, 0x00, 0x80, 0x3F, 0x00, 0x00, 0x00, 0xC0] as [UInt8]),
                    (.fp16, [0x00, 0x3C, 0x00, 0xC0]), (.bf16, [0x80, 0x3F, 0x00, 0xC0])])
  func littleEndianBytes(dtype: DType, data: [UInt8]) throws {
    try withTempDir { dir in
      let path = dir.file("x.safetensors")
      try SafetensorsFile.write([NamedTensor("x", shape: [2], values: [1, -2])], dtype: dtype, to: path)
      #expect(Array(dir.bytes("x.safetensors").suffix(data.count)) == data)
      let header = String(decoding: dir.bytes("x.safetensors")[8...].dropLast(data.count), as: UTF8.self)
      #expect(header.hasPrefix(#"{"x":{"dtype":"\#(SafetensorsDType(dtype).name)","shape":[2],"data_offsets":[0,\#(data.count)]}}"#))
    }
  }

  /// A file as the Python `safetensors` package writes it (metadata last, keys in any order).
  @Test func readsForeignLayout() throws {
    try withTempDir { dir in
      let header = #"{"b":{"dtype":"BF16","shape":[1,2],"data_offsets":[8,12]},"a":{"shape":[2],"dtype":"F32","data_offsets":[0,8]},"#
        + #""ids":{"dtype":"I64","shape":[1],"data_offsets":[12,20]},"__metadata__":{"format":"pt"}}"#
      let data: [UInt8] = [0, 0, 0x80, 0x3F, 0, 0, 0x20, 0x41, 0x80, 0xBF, 0x00, 0x40] + [UInt8](repeating: 0, count: 8)
      let path = dir.write(rawSafetensors(header, data: data), "f.safetensors")
      let file = try SafetensorsFile(path: path)
      #expect(file.names == ["a", "b", "ids"])
      #expect(try file.load("a") == [1, 10])
      #expect(try file.load("b") == [-1, 2])
      #expect(file.metadata["format"] == "pt")
      // Only the tensors asked for are read: an integer tensor elsewhere in the file does not matter
      // until it is loaded.
      expectFileError(.unsupportedDType, mentions: [path, "'ids'", "I64", "F32, F16 or BF16"]) { _ = try file.load("ids") }
    }
  }

  /// Opening reads only the header and loading reads only the tensor asked for: a 400 MB tensor
  /// in a sparse file costs nothing until it is loaded.
  @Test func readsLazily() throws {
    try withTempDir { dir in
      let header = #"{"small":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},"#
        + #""big":{"dtype":"F32","shape":[10000,10000],"data_offsets":[8,400000008]}}"#
      let path = dir.write(rawSafetensors(header, data: [0, 0, 0x80, 0x3F, 0, 0, 0, 0x40]), "sparse.safetensors")
      let handle = try FileHandle(forWritingTo: URL(fileURLWithPath: path))
      try handle.truncate(atOffset: UInt64(8 + 136 + 400_000_008))
      try handle.close()
      let file = try SafetensorsFile(path: path)
      #expect(try file.info("big").elementCount == 100_000_000)
      #expect(try file.load("small") == [1, 2])
    }
  }

  @Test func writerRejectsBadTensors() throws {
    try withTempDir { dir in
      let path = dir.file("w.safetensors")
      expectFileError(.invalidArgument, mentions: [path, "'a'", "5 values", "[2, 3]"]) {
        try SafetensorsFile.write([NamedTensor("a", shape: [2, 3], values: [1, 2, 3, 4, 5])], dtype: .fp32, to: path)
      }
      expectFileError(.invalidArgument, mentions: [path, "'a'", "twice"]) {
        try SafetensorsFile.write([NamedTensor("a", shape: [1], values: [1]), NamedTensor("a", shape: [1], values: [2])],
                                  dtype: .fp32, to: path)
      }
      expectFileError(.invalidArgument, mentions: ["__metadata__"]) {
        try SafetensorsFile.write([NamedTensor("__metadata__", shape: [1], values: [1])], dtype: .fp32, to: path)
      }
      expectFileError(.invalidArgument, mentions: ["'n'"]) {
        try SafetensorsFile.write([NamedTensor("n", shape: [-1, -2], values: [1, 2])], dtype: .fp32, to: path)
      }
      #expect(dir.contents.isEmpty)
    }
  }
}

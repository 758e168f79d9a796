import Foundation
import MoEFiles
import Testing

@Suite struct AtomicWrites {
  @Test func replacesWholeFile() throws {
    try withTempDir { dir in
      let path = dir.write("old contents that are longer", "out.bin")
      try AtomicFile.write(Array("new".utf8), to: path)
      #expect(dir.bytes("out.bin") == Array("new".utf8))
      #expect(dir.contents == ["out.bin"])
      // Larger than the writer's buffer.
      let big = [UInt8](repeating: 7, count: 3 << 20)
      try AtomicFile.write(to: path) { (out: inout AtomicFile.Writer) throws(FileError) in
        try out.write(Array(big[0..<10]))
        try out.write(Array(big[10...]))
        #expect(out.count == big.count)
      }
      #expect(dir.bytes("out.bin") == big)
    }
  }

  @Test func failureKeepsOldFileAndRemovesTemporary() throws {
    try withTempDir { dir in
      let path = dir.write("keep me", "out.bin")
      let failure = FileError(.invalidArgument, file: path, problem: "stop")
      #expect(throws: failure) {
        try AtomicFile.write(to: path) { (out: inout AtomicFile.Writer) throws(FileError) in
          try out.write([UInt8](repeating: 1, count: 2 << 20))
          throw failure
        }
      }
      #expect(dir.bytes("out.bin") == Array("keep me".utf8))
      #expect(dir.contents == ["out.bin"])
    }
  }

  @Test func unwritablePaths() throws {
    try withTempDir { dir in
      let missing = dir.file("no/such/dir/x.safetensors")
      expectFileError(.io, mentions: [missing, "No such file"]) { try AtomicFile.write([1], to: missing) }
      // Renaming over a directory fails; the temporary file is removed.
      try FileManager.default.createDirectory(atPath: dir.file("sub"), withIntermediateDirectories: false)
      expectFileError(.io, mentions: [dir.file("sub"), "rename"]) { try AtomicFile.write([1], to: dir.file("sub")) }
      #expect(dir.contents == ["sub"])
    }
  }

  @Test func errorDescription() {
    let error = FileError(.shapeMismatch, file: "m.safetensors", tensor: "gate.weight", problem: "shape is [2, 3]", expected: "[4, 3]")
    #expect(error.description == "m.safetensors: tensor 'gate.weight': shape is [2, 3]; expected [4, 3]")
    #expect(FileError(.io, file: "f", problem: "p").description == "f: p")
  }
}

import Foundation
import MoECore
import MoEFiles
import Testing

/// A fresh directory under /tmp, removed when `body` returns.
func withTempDir(_ body: (TempDir) throws -> Void) throws {
  let dir = TempDir()
  defer { try? FileManager.default.removeItem(atPath: dir.path) }
  try body(dir)
}

struct TempDir {
  let path: String

  init() {
    path = "/tmp/moefiles-tests-\(getpid())-\(UUID().uuidString)"
    try! FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
  }

  func file(_ name: String) -> String { path + "/" + name }

  @discardableResult
  func write(_ bytes: [UInt8], _ name: String) -> String {
    let file = file(name)
    _ = FileManager.default.createFile(atPath: file, contents: Data(bytes))
    return file
  }

  @discardableResult
  func write(_ text: String, _ name: String) -> String { write(Array(text.utf8), name) }

  func bytes(_ name: String) -> [UInt8] { [UInt8](FileManager.default.contents(atPath: file(name)) ?? Data()) }

  /// File names in the directory, sorted.
  var contents: [String] { ((try? FileManager.default.contentsOfDirectory(atPath: path)) ?? []).sorted() }
}

/// Runs `body`, which must throw a FileError whose message contains every string of `mentions`
/// (and whose kind is `kind`, when given).
@discardableResult
func expectFileError(
  _ kind: FileError.Kind? = nil, mentions: [String], sourceLocation: SourceLocation = #_sourceLocation,
  _ body: () throws -> Void
) -> FileError? {
  do {
    try body()
    Issue.record("expected a FileError mentioning \(mentions)", sourceLocation: sourceLocation)
  } catch let error as FileError {
    for text in mentions {
      #expect(error.description.contains(text), "'\(text)' not in: \(error)", sourceLocation: sourceLocation)
    }
    if let kind { #expect(error.kind == kind, "kind of: \(error)", sourceLocation: sourceLocation) }
    return error
  } catch {
    Issue.record("expected a FileError, got \(error)", sourceLocation: sourceLocation)
  }
  return nil
}

/// A safetensors file from a header text and data bytes; the header is padded with spaces to a
/// multiple of 8, and its length field can be overridden to lie.
func rawSafetensors(_ header: String, data: [UInt8], lengthField: UInt64? = nil) -> [UInt8] {
  var headerBytes = Array(header.utf8)
  while headerBytes.count % 8 != 0 { headerBytes.append(0x20) }
  let length = lengthField ?? UInt64(headerBytes.count)
  return (0..<8).map { UInt8(truncatingIfNeeded: length >> (8 * $0)) } + headerBytes + data
}

/// Bit patterns, so that NaN and -0 compare exactly.
func bits(_ values: [Float]) -> [UInt32] { values.map(\.bitPattern) }

/// Values that exercise every rounding case: signed zeros, ties for bf16 and fp16, fp16 subnormals
/// and overflow, infinities, NaN, plus seeded random values of several magnitudes.
func testValues(count: Int = 200, seed: UInt64 = 7) -> [Float] {
  var values: [Float] = [
    0, -0.0, 1, -1, 0.1, 1.0 / 3, -2.5, 65504, 65520, 70000, 1e-8, 5.9604645e-8, 6.1e-5,
    Float.greatestFiniteMagnitude, -Float.greatestFiniteMagnitude, .infinity, -.infinity, .nan,
    .leastNonzeroMagnitude, .leastNormalMagnitude,
    1 + 0x1p-8, 1 + 3 * 0x1p-8, -(1 + 0x1p-8),  // bf16 ties (to even: down, up)
    1 + 0x1p-11, 1 + 3 * 0x1p-11,  // fp16 ties
  ]
  var rng = SeededGenerator(seed: seed)
  while values.count < count {
    let scale = Float([1e-6, 1e-2, 1, 1e3][values.count % 4])
    values.append(rng.nextUniform(in: -1...1) * scale)
  }
  return values
}

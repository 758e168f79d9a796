// libFuzzer target: the .npy reader (magic, version, header length, dict literal, shape, data size).
#if canImport(Glibc)
import Glibc
#endif
import MoECore

private let input = FuzzInputFile(target: "npy", suffix: "npy")

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzz(_ data: UnsafePointer<UInt8>, _ size: Int) -> CInt {
  input.write(data, size)
  if let (shape, values) = try? NPY.read(path: input.path) {
    guard shape.count == 2, shape[0] * shape[1] == values.count else { fatalError("shape and values disagree") }
  }
  // The header dict parser alone.
  _ = try? NPYHeader(bytes: Array(UnsafeBufferPointer(start: data, count: size)), file: "fuzz")
  return 0
}

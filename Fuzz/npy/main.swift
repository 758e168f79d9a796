// libFuzzer target: the .npy reader (magic, version, header length, dict literal, shape, data size).
#if canImport(Glibc)
import Glibc
#endif
import MoECore

private let fuzzPath: String = {
  let dir = getenv("TMPDIR").map { String(cString: $0) } ?? "/tmp"
  return "\(dir)/flashmoe-fuzz-npy-\(getpid()).npy"
}()

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzz(_ data: UnsafePointer<UInt8>, _ size: Int) -> CInt {
  let fd = open(fuzzPath, O_WRONLY | O_CREAT | O_TRUNC, 0o600)
  guard fd >= 0 else { fatalError("cannot create \(fuzzPath)") }
  var done = 0
  while done < size {
    let n = write(fd, data + done, size - done)
    guard n > 0 else { fatalError("cannot write \(fuzzPath)") }
    done += n
  }
  close(fd)
  if let (shape, values) = try? NPY.read(path: fuzzPath) {
    guard shape.count == 2, shape[0] * shape[1] == values.count else { fatalError("shape and values disagree") }
  }
  // The header dict parser alone.
  _ = try? NPYHeader(bytes: Array(UnsafeBufferPointer(start: data, count: size)), file: "fuzz")
  return 0
}

// Shared by the file-reading fuzz targets: the fuzzer's bytes as a real file, since the readers
// under test open paths (pread), not buffers.
#if canImport(Glibc)
import Glibc
#endif

/// A per-process scratch file named after the target, rewritten for every input.
struct FuzzInputFile {
  let path: String

  init(target: String, suffix: String) {
    let dir = getenv("TMPDIR").map { String(cString: $0) } ?? "/tmp"
    path = "\(dir)/flashmoe-fuzz-\(target)-\(getpid()).\(suffix)"
  }

  func write(_ data: UnsafePointer<UInt8>, _ size: Int) {
    let fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0o600)
    guard fd >= 0 else { fatalError("cannot create \(path)") }
    var done = 0
    while done < size {
      let n = Glibc.write(fd, data + done, size - done)
      guard n > 0 else { fatalError("cannot write \(path)") }
      done += n
    }
    close(fd)
  }
}

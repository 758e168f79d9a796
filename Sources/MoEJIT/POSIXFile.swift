import Glibc

/// The few file operations the cache needs, on Glibc.
enum POSIXFile {
  /// The message of an errno value.
  static func message(_ code: Int32) -> String { String(cString: strerror(code)) }

  static func isDirectory(_ path: String) -> Bool {
    var info = stat()
    return stat(path, &info) == 0 && (info.st_mode & S_IFMT) == S_IFDIR
  }

  /// mkdir -p with mode 0755. Throws naming the component that failed.
  static func createDirectories(_ path: String) throws(JITError) {
    if isDirectory(path) { return }
    var prefix = path.hasPrefix("/") ? "/" : ""
    for component in path.split(separator: "/") {
      prefix += component
      if !isDirectory(prefix) {
        if mkdir(prefix, 0o755) != 0 {
          let code = errno
          // Another process may have created it in between.
          if !(code == EEXIST && isDirectory(prefix)) {
            throw JITError.cacheDirectory(path: path, problem: "cannot create \(prefix): \(message(code))")
          }
        }
      }
      prefix += "/"
    }
  }

  enum ReadResult {
    case bytes([UInt8])
    case missing
    case failed(String)
  }

  /// The whole file, refusing files larger than `limit` bytes.
  static func read(_ path: String, limit: Int) -> ReadResult {
    let fd = open(path, O_RDONLY | O_CLOEXEC)
    if fd < 0 {
      let code = errno
      return code == ENOENT ? .missing : .failed("cannot open: \(message(code))")
    }
    defer { close(fd) }
    var info = stat()
    guard fstat(fd, &info) == 0 else { return .failed("fstat: \(message(errno))") }
    guard (info.st_mode & S_IFMT) == S_IFREG else { return .failed("not a regular file") }
    let size = Int(info.st_size)
    guard size <= limit else { return .failed("\(size) bytes, over the \(limit)-byte limit") }
    var bytes = [UInt8](repeating: 0, count: size)
    var done = 0
    while done < size {
      let n = bytes.withUnsafeMutableBytes { Glibc.read(fd, $0.baseAddress! + done, size - done) }
      if n < 0 {
        if errno == EINTR { continue }
        return .failed("read: \(message(errno))")
      }
      if n == 0 { break }  // shrank while reading
      done += n
    }
    if done < size { bytes.removeLast(size - done) }
    return .bytes(bytes)
  }

  /// Publishes `bytes` at `path` atomically: written to a unique temporary file in the same
  /// directory (`<path>.tmp.<pid>.<random>`, O_EXCL), fsynced, renamed over `path`, and the
  /// directory fsynced. Readers see the old file or the whole new one, never a part; two writers
  /// racing leave one complete file. On failure the temporary file is removed.
  static func writeAtomically(_ bytes: [UInt8], to path: String) throws(JITError) {
    var generator = SystemRandomNumberGenerator()
    var fd: Int32 = -1
    var temp = ""
    for _ in 0..<16 {
      temp = "\(path).tmp.\(getpid()).\(String(generator.next() as UInt64, radix: 16))"
      fd = open(temp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0o644)
      if fd >= 0 || errno != EEXIST { break }
    }
    guard fd >= 0 else { throw JITError.cacheWrite(path: path, problem: "cannot create \(temp): \(message(errno))") }

    var failure: String? = nil
    bytes.withUnsafeBytes { raw in
      var done = 0
      while done < raw.count {
        let n = Glibc.write(fd, raw.baseAddress! + done, raw.count - done)
        if n < 0 {
          if errno == EINTR { continue }
          failure = "write: \(message(errno))"
          return
        }
        done += n
      }
    }
    if failure == nil, fsync(fd) != 0 { failure = "fsync: \(message(errno))" }
    if close(fd) != 0, failure == nil { failure = "close: \(message(errno))" }
    if failure == nil, rename(temp, path) != 0 { failure = "rename from \(temp): \(message(errno))" }
    if let failure {
      unlink(temp)
      throw JITError.cacheWrite(path: path, problem: failure)
    }
    let directory = open(directoryOf(path), O_RDONLY | O_CLOEXEC)
    if directory >= 0 {
      _ = fsync(directory)
      close(directory)
    }
  }

  static func directoryOf(_ path: String) -> String {
    guard let slash = path.lastIndex(of: "/") else { return "." }
    return slash == path.startIndex ? "/" : String(path[..<slash])
  }
}

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Writes a file so that readers see either the old file or the complete new one, never a part.
///
/// The bytes go to a temporary file in the same directory (`<path>.tmp.<pid>.<random>`), which is
/// fsynced and then renamed over `path` with rename(2); the directory is fsynced after the rename.
/// On any failure the temporary file is removed and `path` is left as it was.
public enum AtomicFile {
  /// Writes `bytes` to `path` atomically.
  public static func write(_ bytes: [UInt8], to path: String) throws(FileError) {
    try write(to: path) { (out: inout Writer) throws(FileError) in try out.write(bytes) }
  }

  /// Calls `body` with a writer for the new contents of `path`, then publishes them atomically.
  /// An error thrown by `body` leaves `path` untouched and is rethrown.
  public static func write(to path: String, _ body: (inout Writer) throws(FileError) -> Void) throws(FileError) {
    let (fd, temp) = try createTemporary(for: path)
    var writer = Writer(path: path, fd: fd)
    do throws(FileError) {
      try body(&writer)
      try writer.flush()
      guard fsync(fd) == 0 else { throw FileError.system(path, "fsync of temporary file \(temp)", errno: errno) }
    } catch {
      close(fd)
      unlink(temp)
      throw error
    }
    guard close(fd) == 0 else {
      let code = errno
      unlink(temp)
      throw FileError.system(path, "close of temporary file \(temp)", errno: code)
    }
    guard rename(temp, path) == 0 else {
      let code = errno
      unlink(temp)
      throw FileError.system(path, "rename from \(temp)", errno: code)
    }
    syncDirectory(of: path)
  }

  /// Opens a fresh temporary file beside `path` (O_EXCL, so a name is never shared).
  private static func createTemporary(for path: String) throws(FileError) -> (Int32, String) {
    var generator = SystemRandomNumberGenerator()
    for _ in 0..<16 {
      let suffix = String(generator.next() as UInt64, radix: 16)
      let temp = "\(path).tmp.\(getpid()).\(suffix)"
      let fd = open(temp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0o644)
      if fd >= 0 { return (fd, temp) }
      let code = errno
      if code != EEXIST { throw FileError.system(path, "creating temporary file \(temp)", errno: code) }
    }
    throw FileError(.io, file: path, problem: "could not create a unique temporary file beside it")
  }

  /// Makes the rename durable; failures are ignored (the data itself is already synced).
  private static func syncDirectory(of path: String) {
    let fd = open(PathName.directory(of: path), O_RDONLY | O_CLOEXEC)
    guard fd >= 0 else { return }
    _ = fsync(fd)
    close(fd)
  }

  /// Buffered output to the temporary file; errors name the final path.
  public struct Writer {
    /// The path being written (the final name, not the temporary one).
    public let path: String
    /// Bytes written so far, buffered ones included.
    public private(set) var count = 0
    private let fd: Int32
    private var buffer: [UInt8] = []
    private static let bufferSize = 1 << 20

    init(path: String, fd: Int32) {
      self.path = path
      self.fd = fd
      buffer.reserveCapacity(Self.bufferSize)
    }

    /// Appends raw bytes.
    public mutating func write(_ bytes: UnsafeRawBufferPointer) throws(FileError) {
      count += bytes.count
      if buffer.count + bytes.count <= Self.bufferSize {
        buffer.append(contentsOf: bytes)
        return
      }
      try flush()
      if bytes.count <= Self.bufferSize {
        buffer.append(contentsOf: bytes)
      } else {
        try writeAll(bytes)
      }
    }

    /// Appends `bytes`.
    public mutating func write(_ bytes: [UInt8]) throws(FileError) {
      var failure: FileError?
      bytes.withUnsafeBytes { raw in
        do throws(FileError) { try write(raw) } catch { failure = error }
      }
      if let failure { throw failure }
    }

    /// Appends the UTF-8 bytes of `text`.
    public mutating func write(_ text: String) throws(FileError) { try write(Array(text.utf8)) }

    /// Appends `values` converted to `encoding`, little-endian.
    mutating func write(_ values: ArraySlice<Float>, as encoding: ElementEncoding) throws(FileError) {
      let chunk = 1 << 16
      var scratch = [UInt8](repeating: 0, count: min(values.count, chunk) * encoding.size)
      var start = values.startIndex
      while start < values.endIndex {
        let end = min(start + chunk, values.endIndex)
        let bytes = (end - start) * encoding.size
        var failure: FileError?
        scratch.withUnsafeMutableBytes { raw in
          let part = UnsafeMutableRawBufferPointer(rebasing: raw[0..<bytes])
          encoding.encode(values[start..<end], into: part)
          do throws(FileError) { try write(UnsafeRawBufferPointer(part)) } catch { failure = error }
        }
        if let failure { throw failure }
        start = end
      }
    }

    /// Hands buffered bytes to the kernel.
    mutating func flush() throws(FileError) {
      var failure: FileError?
      buffer.withUnsafeBytes { raw in
        do throws(FileError) { try writeAll(raw) } catch { failure = error }
      }
      buffer.removeAll(keepingCapacity: true)
      if let failure { throw failure }
    }

    private func writeAll(_ bytes: UnsafeRawBufferPointer) throws(FileError) {
      guard let base = bytes.baseAddress else { return }
      var done = 0
      while done < bytes.count {
        let n = systemWrite(fd, base + done, bytes.count - done)
        if n < 0 {
          let code = errno
          if code == EINTR { continue }
          throw FileError.system(path, "write", errno: code)
        }
        done += n
      }
    }
  }
}

/// write(2); a free function because `Writer.write` shadows the name inside the struct.
private func systemWrite(_ fd: Int32, _ bytes: UnsafeRawPointer, _ count: Int) -> Int { write(fd, bytes, count) }

/// Path helpers that do not need Foundation.
enum PathName {
  /// The directory part of `path` ("." when there is none).
  static func directory(of path: String) -> String {
    guard let slash = path.lastIndex(of: "/") else { return "." }
    let dir = path[..<slash]
    return dir.isEmpty ? "/" : String(dir)
  }

  /// The last component of `path`.
  static func fileName(of path: String) -> String {
    guard let slash = path.lastIndex(of: "/") else { return path }
    return String(path[path.index(after: slash)...])
  }

  /// `directory/name`.
  static func join(_ directory: String, _ name: String) -> String {
    directory.hasSuffix("/") ? directory + name : directory + "/" + name
  }

  static func isDirectory(_ path: String) -> Bool {
    var info = stat()
    return stat(path, &info) == 0 && info.st_mode & S_IFMT == S_IFDIR
  }

  static func exists(_ path: String) -> Bool {
    var info = stat()
    return stat(path, &info) == 0
  }
}

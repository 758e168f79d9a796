#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// A regular file opened read-only, read with `pread` at explicit offsets (never mapped, so a file
/// that shrinks while open gives an error instead of a bus error).
final class InputFile: Sendable {
  let path: String
  /// Bytes in the file when it was opened.
  let size: Int
  private let fd: Int32

  init(path: String) throws(FileError) {
    // O_NONBLOCK: opening a FIFO must not hang; it is rejected below as not a regular file.
    let fd = open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK)
    guard fd >= 0 else { throw FileError.system(path, "open", errno: errno) }
    var info = stat()
    guard fstat(fd, &info) == 0 else {
      let code = errno
      close(fd)
      throw FileError.system(path, "stat", errno: code)
    }
    guard info.st_mode & S_IFMT == S_IFREG else {
      close(fd)
      throw FileError(.io, file: path, problem: "not a regular file", expected: "a file (not a directory, device or pipe)")
    }
    self.fd = fd
    self.path = path
    self.size = Int(info.st_size)
  }

  deinit { close(fd) }

  /// Fills `buffer` with the bytes at `offset`; the caller has checked the range against `size`.
  func read(into buffer: UnsafeMutableRawBufferPointer, at offset: Int, tensor: String? = nil) throws(FileError) {
    guard let base = buffer.baseAddress else { return }
    var done = 0
    while done < buffer.count {
      let n = pread(fd, base + done, buffer.count - done, off_t(offset + done))
      if n < 0 {
        let code = errno
        if code == EINTR { continue }
        throw FileError.system(path, "read", errno: code, tensor: tensor)
      }
      if n == 0 {
        throw FileError(
          .truncated, file: path, tensor: tensor, problem: "the file ends at byte \(offset + done)",
          expected: "\(buffer.count) bytes at offset \(offset) (was the file changed while it was open?)")
      }
      done += n
    }
  }

  /// The `count` bytes at `offset`.
  func readBytes(count: Int, at offset: Int, tensor: String? = nil) throws(FileError) -> [UInt8] {
    var bytes = [UInt8](repeating: 0, count: count)
    var failure: FileError?
    bytes.withUnsafeMutableBytes { raw in
      do throws(FileError) { try read(into: raw, at: offset, tensor: tensor) } catch { failure = error }
    }
    if let failure { throw failure }
    return bytes
  }

  /// Reads `buffer.count` elements stored as `encoding` at `offset` and converts them to Float.
  func readElements(
    _ encoding: ElementEncoding, into buffer: UnsafeMutableBufferPointer<Float>, at offset: Int, tensor: String? = nil
  ) throws(FileError) {
    let chunk = 1 << 16
    var scratch = [UInt8](repeating: 0, count: min(buffer.count, chunk) * encoding.size)
    var start = 0
    while start < buffer.count {
      let n = min(chunk, buffer.count - start)
      var failure: FileError?
      scratch.withUnsafeMutableBytes { raw in
        let bytes = UnsafeMutableRawBufferPointer(rebasing: raw[0..<(n * encoding.size)])
        do throws(FileError) {
          try read(into: bytes, at: offset + start * encoding.size, tensor: tensor)
        } catch {
          failure = error
          return
        }
        encoding.decode(UnsafeRawBufferPointer(bytes), into: UnsafeMutableBufferPointer(rebasing: buffer[start..<(start + n)]))
      }
      if let failure { throw failure }
      start += n
    }
  }
}

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// A file FlashMoE cannot read or write: which file, which tensor (when one is involved), what was
/// wrong and what would have been accepted.
///
/// Files come from strangers, so every check on a file's contents reports one of these instead of
/// trapping; `description` is the message a user sees.
public struct FileError: Error, CustomStringConvertible, Equatable, Sendable {
  /// The broad reason, for callers that react differently (exit codes, retries).
  public enum Kind: String, Sendable, Equatable {
    /// The operating system refused an open, read, write, fsync or rename.
    case io
    /// The file is shorter than its header says.
    case truncated
    /// A header, index or dictionary does not follow the format.
    case malformed
    /// A tensor that was asked for (or that a layer needs) is not there.
    case missingTensor
    /// A tensor is there with the wrong shape.
    case shapeMismatch
    /// A tensor or array is stored in an element type this library does not read.
    case unsupportedDType
    /// A value passed by the caller does not fit (values vs shape, shard count, names).
    case invalidArgument
  }

  public let kind: Kind
  /// The file as the caller named it (or the shard / index file the problem is in).
  public let file: String
  /// The tensor the problem concerns, if any.
  public let tensor: String?
  /// What was found.
  public let problem: String
  /// What would have been accepted, if that can be said.
  public let expected: String?

  public init(_ kind: Kind, file: String, tensor: String? = nil, problem: String, expected: String? = nil) {
    self.kind = kind
    self.file = file
    self.tensor = tensor
    self.problem = problem
    self.expected = expected
  }

  public var description: String {
    var text = file
    if let tensor { text += ": tensor '\(tensor)'" }
    text += ": \(problem)"
    if let expected { text += "; expected \(expected)" }
    // Names come from files: show control characters escaped rather than sending them to a terminal.
    var shown = ""
    for scalar in text.unicodeScalars {
      if scalar.value < 0x20 || (0x7F...0x9F).contains(scalar.value) {
        shown += "\\u{\(String(scalar.value, radix: 16))}"
      } else {
        shown.unicodeScalars.append(scalar)
      }
    }
    return shown
  }
}

extension FileError {
  /// A failed system call, with the C library's message for `code`.
  static func system(_ file: String, _ action: String, errno code: Int32, tensor: String? = nil) -> FileError {
    FileError(.io, file: file, tensor: tensor, problem: "\(action) failed: \(String(cString: strerror(code))) (errno \(code))")
  }
}

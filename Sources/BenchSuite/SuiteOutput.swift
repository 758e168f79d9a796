import MoEFiles

#if canImport(Glibc)
import Glibc
#endif

/// Writes a report's files into a directory (created if missing): results.json, results.csv and
/// the charts. Each file is written atomically, so a reader never sees half a chart and a failed
/// run leaves the previous run's files whole.
public enum SuiteOutput {
  public static let jsonName = "results.json"
  public static let csvName = "results.csv"

  /// The paths written, in order.
  @discardableResult
  public static func write(_ report: SuiteReport, to directory: String) throws -> [String] {
    try createDirectory(directory)
    var files = [
      (jsonName, try JSONWriter.text(report)),
      (csvName, CSVWriter.text(report)),
    ]
    files += SuiteFigures.all(report).map { ($0.name, $0.svg) }
    var written: [String] = []
    for (name, text) in files {
      let path = directory.hasSuffix("/") ? directory + name : directory + "/" + name
      try AtomicFile.write(Array(text.utf8), to: path)
      written.append(path)
    }
    return written
  }

  /// mkdir -p: every missing component is created; one that exists and is not a directory is an
  /// error naming it.
  public static func createDirectory(_ path: String) throws(FileError) {
    guard !path.isEmpty else { throw FileError(.invalidArgument, file: path, problem: "empty directory name") }
    var prefix = path.hasPrefix("/") ? "/" : ""
    for component in path.split(separator: "/") {
      prefix += component
      var info = stat()
      if stat(prefix, &info) == 0 {
        guard info.st_mode & S_IFMT == S_IFDIR else {
          throw FileError(.io, file: prefix, problem: "exists and is not a directory", expected: "a directory for the suite's output")
        }
      } else if mkdir(prefix, 0o755) != 0 && errno != EEXIST {
        let code = errno
        throw FileError(.io, file: prefix, problem: "mkdir failed: \(String(cString: strerror(code))) (errno \(code))")
      }
      prefix += "/"
    }
  }
}

#if canImport(Glibc)
import Glibc
#endif

/// Progress lines on stderr, shown only when stderr is a terminal and not silenced.
struct Progress {
  let enabled: Bool

  init(quiet: Bool) {
    enabled = !quiet && isatty(2) != 0
  }

  func update(_ text: String) {
    guard enabled else { return }
    writeStandardError("\r\u{1B}[2K" + text)
  }

  func finish() {
    guard enabled else { return }
    writeStandardError("\r\u{1B}[2K")
  }
}

/// Left-aligned columns for plain-text tables.
func table(_ rows: [[String]]) -> String {
  guard let first = rows.first else { return "" }
  var widths = [Int](repeating: 0, count: first.count)
  for row in rows { for (i, cell) in row.enumerated() where i < widths.count { widths[i] = max(widths[i], cell.count) } }
  return rows.map { row in
    row.enumerated().map { i, cell in
      i == row.count - 1 ? cell : cell + String(repeating: " ", count: widths[i] - cell.count)
    }.joined(separator: "  ")
  }.joined(separator: "\n")
}

/// Unbuffered write to file descriptor 2 (the C `stderr` global is not concurrency-safe in Swift 6).
func writeStandardError(_ text: String) {
  var text = text
  text.withUTF8 { bytes in
    var offset = 0
    while offset < bytes.count {
      let n = write(2, bytes.baseAddress! + offset, bytes.count - offset)
      if n <= 0 { return }
      offset += n
    }
  }
}

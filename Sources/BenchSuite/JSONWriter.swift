import FoundationEssentials

/// The report as pretty, key-sorted JSON: the suite's complete record, read back by `SuiteReport`'s
/// Decodable conformance. (FoundationEssentials, as the CLI's `--json` uses: no full Foundation.)
public enum JSONWriter {
  public static func text(_ report: SuiteReport) throws -> String {
    let encoder = JSONEncoder()
    encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
    return String(decoding: try encoder.encode(report), as: UTF8.self) + "\n"
  }

  public static func report(from text: String) throws -> SuiteReport {
    try JSONDecoder().decode(SuiteReport.self, from: Data(text.utf8))
  }
}

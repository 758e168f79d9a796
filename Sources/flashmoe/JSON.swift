import FoundationEssentials

/// Pretty, key-sorted JSON for `--json` output.
func jsonString(_ value: some Encodable) throws -> String {
  let encoder = JSONEncoder()
  encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
  return String(decoding: try encoder.encode(value), as: UTF8.self)
}

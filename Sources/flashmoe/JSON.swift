import FoundationEssentials

/// Pretty, key-sorted JSON for `--json` output. Non-finite numbers (a checksum over NaN outputs,
/// issue #7 §2) are written as the strings "NaN", "Infinity" and "-Infinity" instead of failing.
func jsonString(_ value: some Encodable) throws -> String {
  let encoder = JSONEncoder()
  encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
  encoder.nonConformingFloatEncodingStrategy = .convertToString(positiveInfinity: "Infinity", negativeInfinity: "-Infinity", nan: "NaN")
  return String(decoding: try encoder.encode(value), as: UTF8.self)
}

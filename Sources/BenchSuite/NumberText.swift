import MoECore

/// Numbers as text for tables, CSV and chart labels (no Foundation formatting in this binary).
enum NumberText {
  /// `value` with `digits` digits after the point, rounded half away from zero.
  static func fixed(_ value: Double, _ digits: Int) -> String { formatFixed(value, digits) }

  /// `fixed` without trailing zeros: 2.50 → "2.5", 3.00 → "3" (axis ticks).
  static func trimmed(_ value: Double, _ digits: Int) -> String {
    var text = fixed(value, digits)
    guard text.contains(".") else { return text }
    while text.hasSuffix("0") { text.removeLast() }
    if text.hasSuffix(".") { text.removeLast() }
    return text
  }

  /// Token counts as the paper writes them: 4096 → "4K", 16384 → "16K", 512 → "512".
  static func tokens(_ n: Int) -> String {
    n >= 1024 && n % 1024 == 0 ? "\(n / 1024)K" : "\(n)"
  }

  /// The shortest text that reads back as the same Double (for CSV: no precision lost).
  static func exact(_ value: Double) -> String { "\(value)" }
}

/// `value` with `digits` digits after the point (no Foundation `String(format:)` in this binary).
public func formatFixed(_ value: Double, _ digits: Int) -> String {
  guard value.isFinite else { return "\(value)" }
  var scale = 1.0
  for _ in 0..<digits { scale *= 10 }
  let scaled = (value.magnitude * scale).rounded()
  guard scaled < 9e18 else { return "\(value)" }
  let whole = UInt64(scaled)
  let divisor = UInt64(scale)
  let integer = whole / divisor
  var fraction = String(whole % divisor)
  while fraction.count < digits { fraction = "0" + fraction }
  let sign = value < 0 && whole != 0 ? "-" : ""
  return digits == 0 ? "\(sign)\(integer)" : "\(sign)\(integer).\(fraction)"
}

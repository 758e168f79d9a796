/// A short fingerprint of an output tensor: its sum, its sum of magnitudes, and a 64-bit FNV-1a hash
/// of the exact bits, so two runs can be compared at a glance and bit for bit.
public struct Checksum: Sendable, Codable, Equatable, CustomStringConvertible {
  public let sum: Double
  public let absSum: Double
  public let bits: String

  public init(_ values: [Float]) {
    var sum = 0.0, absSum = 0.0
    var hash: UInt64 = 0xcbf2_9ce4_8422_2325
    for v in values {
      sum += Double(v)
      absSum += Double(v.magnitude)
      var bits = v.bitPattern
      for _ in 0..<4 {
        hash = (hash ^ UInt64(bits & 0xFF)) &* 0x100_0000_01b3
        bits >>= 8
      }
    }
    self.sum = sum
    self.absSum = absSum
    self.bits = String(hash, radix: 16)
  }

  public var description: String {
    "sum \(formatFixed(sum, 6)), |sum| \(formatFixed(absSum, 6)), fnv1a \(bits)"
  }
}

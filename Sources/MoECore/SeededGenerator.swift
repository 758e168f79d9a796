/// xoshiro256** seeded through SplitMix64: fast, reproducible across machines and runs.
public struct SeededGenerator: RandomNumberGenerator, Sendable {
  private var s: (UInt64, UInt64, UInt64, UInt64)

  public init(seed: UInt64) {
    var x = seed
    func splitMix() -> UInt64 {
      x &+= 0x9E37_79B9_7F4A_7C15
      var z = x
      z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
      z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
      return z ^ (z >> 31)
    }
    s = (splitMix(), splitMix(), splitMix(), splitMix())
  }

  public mutating func next() -> UInt64 {
    let result = ((s.1 &* 5) << 7 | (s.1 &* 5) >> 57) &* 9
    let t = s.1 << 17
    s.2 ^= s.0
    s.3 ^= s.1
    s.1 ^= s.2
    s.0 ^= s.3
    s.2 ^= t
    s.3 = s.3 << 45 | s.3 >> 19
    return result
  }

  /// Uniform in [0, 1) with 24 random bits.
  public mutating func nextUnit() -> Float { Float(next() >> 40) * 0x1p-24 }

  public mutating func nextUniform(in range: ClosedRange<Float>) -> Float {
    range.lowerBound + (range.upperBound - range.lowerBound) * nextUnit()
  }

  /// Standard normal by Box–Muller.
  public mutating func nextNormal() -> Float {
    let u1 = max(Double(next() >> 11) * 0x1p-53, 0x1p-60)
    let u2 = Double(next() >> 11) * 0x1p-53
    return Float((-2 * _log(u1)).squareRoot() * _cos(2 * Double.pi * u2))
  }

  /// `count` standard normal values.
  public mutating func normals(_ count: Int) -> [Float] {
    var values = [Float](repeating: 0, count: count)
    for i in 0..<count { values[i] = nextNormal() }
    return values
  }
}

#if canImport(Glibc)
import Glibc
@inline(__always) private func _log(_ x: Double) -> Double { Glibc.log(x) }
@inline(__always) private func _cos(_ x: Double) -> Double { Glibc.cos(x) }
#elseif canImport(Darwin)
import Darwin
@inline(__always) private func _log(_ x: Double) -> Double { Darwin.log(x) }
@inline(__always) private func _cos(_ x: Double) -> Double { Darwin.cos(x) }
#endif

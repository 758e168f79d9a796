import Foundation
import MoEKernels
import Testing

/// GELU's fast erf (storage.cuh, erf_fast): the coefficients the kernel ships, read from the embedded
/// source, evaluated as the GPU evaluates them (float fused multiply-adds; 2^q in double, where the
/// GPU's ex2.approx adds up to 2 ulp), against erf in double.
@Suite("fast erf coefficients")
struct FastErfTests {
  /// kErfQ's eight floats, parsed from the embedded storage.cuh.
  static let coefficients: [Float] = {
    guard let text = KernelSources.files.first(where: { $0.name == "storage.cuh" })?.contents,
      let start = text.range(of: "kErfQ[8] = {"), let end = text[start.upperBound...].firstIndex(of: "}")
    else { return [] }
    return text[start.upperBound..<end].split(separator: ",").compactMap {
      Float($0.trimmingCharacters(in: .whitespacesAndNewlines).replacingOccurrences(of: "f", with: ""))
    }
  }()

  static func erfFast(_ x: Float) -> Float {
    let c = coefficients, t = abs(x)
    var r = c[7]
    for i in stride(from: 6, through: 0, by: -1) { r = c[i].addingProduct(r, t) }
    let e = Float(exp2(Double(r * t)))
    return x.sign == .minus ? -(1 - e) : 1 - e
  }

  /// One ulp of 1.0: GELU adds erf to 1, so erf's absolute error is what reaches it.
  static let ulpOfOne = Double(Float.ulpOfOne)

  @Test("eight coefficients are in the source")
  func parsed() {
    #expect(Self.coefficients.count == 8 && Self.coefficients.allSatisfy(\.isFinite))
  }

  @Test("within one ulp of 1.0 of erf on [0, 4.2], odd, exactly ±1 far out and at ±∞")
  func accuracy() throws {
    try #require(Self.coefficients.count == 8)
    var worst = 0.0
    // Every 997th float from 0 to 4.2 (about a million), and their negatives.
    var bits: UInt32 = 0
    while bits < Float(4.2).bitPattern {
      let x = Float(bitPattern: bits)
      worst = max(worst, abs(Double(Self.erfFast(x)) - erf(Double(x))))
      #expect(Self.erfFast(-x) == -Self.erfFast(x))
      bits += 997
    }
    #expect(worst <= Self.ulpOfOne, "largest |error| \(worst)")
    for x: Float in [4, 4.5, 6, 10, 1e3, 1e10, 3e38, .infinity] {
      #expect(Self.erfFast(x) == 1 && Self.erfFast(-x) == -1, "erf(\(x))")
    }
    #expect(Self.erfFast(.nan).isNaN)
  }

  @Test("GELU with it stays within 2⁻²¹ of GELU with erff, relative to max(|v|, 1)")
  func gelu() throws {
    try #require(Self.coefficients.count == 8)
    func gelu(_ v: Float, _ f: (Float) -> Float) -> Float { 0.5 * v * (1 + f(v * 0.70710678118654752)) }
    var v: Float = -12
    while v <= 12 {
      let fast = gelu(v, Self.erfFast), reference = gelu(v, { Foundation.erff($0) })
      #expect(abs(fast - reference) <= 0x1p-21 * max(abs(v), 1), "GELU(\(v)): \(fast) against \(reference)")
      v += 0.000_37
    }
    #expect(gelu(-.infinity, Self.erfFast).isNaN && gelu(.infinity, Self.erfFast) == .infinity)
    #expect(gelu(-20, Self.erfFast) == 0)
  }
}

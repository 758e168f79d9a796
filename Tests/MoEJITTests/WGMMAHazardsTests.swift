import Testing
@testable import MoEJIT

/// The SASS reader on hand-written programs in nvdisasm's format: one `/*address*/ instruction ;`
/// a line, labels `.L_x_N:`, the kernel starting at `.text.<name>:`.
@Suite("WGMMAHazards: accumulators touched before their wgmma is waited for")
struct WGMMAHazardsTests {
  /// A kernel of `body` lines.
  static func kernel(_ body: [String]) -> String {
    var text = ["        .text.k:", "k:", ".text.k:"]
    for (i, line) in body.enumerated() {
      text.append(line.hasSuffix(":") ? line : "        /*\(String(i * 16, radix: 16))*/                   \(line) ;")
    }
    return text.joined(separator: "\n")
  }

  static let issue = [
    "WARPGROUP.ARRIVE",
    "HGMMA.64x64x16.F32.BF16 R24, gdesc[UR4], R24",
    "HGMMA.64x64x16.F32.BF16 R24, gdesc[UR8], R24, gsb0",
  ]

  struct Case: CustomStringConvertible, Sendable {
    let name: String
    let body: [String]
    /// Lines of `body` (0-based) expected to be reported.
    let hazards: [Int]
    var description: String { name }
  }

  static let cases: [Case] = [
    Case(name: "a read of an accumulator before the wait", body: issue + [
      "F2FP.BF16.F32.PACK_AB R200, R25, R24", "WARPGROUP.DEPBAR.LE gsb0, 0x0", "EXIT",
    ], hazards: [3]),
    Case(name: "the same read after the wait", body: issue + [
      "WARPGROUP.DEPBAR.LE gsb0, 0x0", "F2FP.BF16.F32.PACK_AB R200, R25, R24", "EXIT",
    ], hazards: []),
    Case(name: "registers next to the accumulators (R24..R55) are free; RZ and uniform registers are not R", body: issue + [
      "IADD3 R56, R23, 0x1, RZ", "UIADD3 UR24, UR25, 0x1, URZ", "WARPGROUP.DEPBAR.LE gsb0, 0x0", "EXIT",
    ], hazards: []),
    Case(name: "a pair R22.64 and a .WIDE destination R22 reach R23 only; .128 data reaches R21..R24", body: issue + [
      "LDG.E.64 R20, desc[UR4][R22.64]", "IMAD.WIDE R22, R2, 0x4, R4", "LDS.128 R21, [R200]",
      "WARPGROUP.DEPBAR.LE gsb0, 0x0", "EXIT",
    ], hazards: [5]),
    Case(name: "a write of an accumulator before the wait", body: issue + [
      "CS2R R54, SRZ", "WARPGROUP.DEPBAR.LE gsb0, 0x0", "EXIT",
    ], hazards: [3]),
    Case(name: "DEPBAR.LE 1 retires all but the most recent group", body: [
      "WARPGROUP.ARRIVE",
      "HGMMA.64x64x16.F32.BF16 R24, gdesc[UR4], R24, gsb0",
      "HGMMA.64x64x16.F32.BF16 R120, gdesc[UR4], R120, gsb0",
      "WARPGROUP.DEPBAR.LE gsb0, 0x1",
      "MOV R30, R31", "MOV R121, RZ", "WARPGROUP.DEPBAR.LE gsb0, 0x0", "EXIT",
    ], hazards: [5]),
    Case(name: "a k loop: the group left in flight at the back edge meets a read at the loop's top", body: [
      "CS2R R24, SRZ",
      ".L_x_1:",
      "FADD R60, R24, 1",
      "WARPGROUP.ARRIVE",
      "HGMMA.64x64x16.F32.BF16 R24, gdesc[UR4], R24, gsb0",
      "WARPGROUP.DEPBAR.LE gsb0, 0x1",
      "@P0 BRA `(.L_x_1)",
      "WARPGROUP.DEPBAR.LE gsb0, 0x0",
      "EXIT",
    ], hazards: [2]),
    Case(name: "the same loop drained each iteration is clean", body: [
      "CS2R R24, SRZ",
      ".L_x_1:",
      "FADD R60, R24, 1",
      "WARPGROUP.ARRIVE",
      "HGMMA.64x64x16.F32.BF16 R24, gdesc[UR4], R24, gsb0",
      "WARPGROUP.DEPBAR.LE gsb0, 0x0",
      "@P0 BRA `(.L_x_1)",
      "EXIT",
    ], hazards: []),
    Case(name: "only the path that skips the wait is a hazard; code past an unconditional branch is not reached from it", body: issue + [
      "@P1 BRA `(.L_x_2)",
      "WARPGROUP.DEPBAR.LE gsb0, 0x0",
      ".L_x_2:",
      "MOV R40, RZ",
      "EXIT",
      "MOV R41, RZ",
    ], hazards: [6]),
  ]

  @Test(arguments: cases)
  func reports(_ c: Case) {
    let sass = Self.kernel(c.body)
    let lines = sass.split(separator: "\n", omittingEmptySubsequences: false)
    let found = WGMMAHazards.find(inSASS: sass)
    // Map reported lines back to the body's instruction texts.
    let reported = found.map { hazard in String(lines[hazard.line - 1]) }
    let expected = c.hazards.map { c.body[$0] }
    #expect(reported.count == expected.count, "\(found)")
    for text in expected { #expect(reported.contains { $0.contains(text) }, "\(text) not reported: \(found)") }
  }

  @Test("a reported hazard names the in-flight registers the instruction touches")
  func registersNamed() throws {
    let found = WGMMAHazards.find(inSASS: Self.kernel(Self.issue + ["F2FP.BF16.F32.PACK_AB R200, R25, R24", "EXIT"]))
    let hazard = try #require(found.first)
    #expect(hazard.registers == [24, 25])
    #expect(hazard.instruction == "F2FP.BF16.F32.PACK_AB R200, R25, R24")
  }

  @Test("text that is not SASS has nothing to report")
  func notSASS() {
    #expect(WGMMAHazards.find(inSASS: "").isEmpty)
    #expect(WGMMAHazards.find(inSASS: "hello:\nworld").isEmpty)
  }

  @Test("the compiler's refusal names the spec, the count, the first places and the way out")
  func refusalText() {
    let text = JITError.wgmmaHazards(spec: "H=2048 D=2048", count: 64, hazards: ["line 9540: F2FP.BF16.F32.PACK_AB R241, R87, R86"]).description
    #expect(text.contains("H=2048 D=2048") && text.contains("64 place") && text.contains("line 9540") && text.contains("FLASHMOE_SASS_CHECK=0"))
  }
}

// Edge values of the config fuzz target (Fuzz/config, docs/RELIABILITY.md): no finding in the
// 7-minute run of 2026-11-28; these pin that extreme integers, non-finite factors and odd names end
// in a ConfigError (never an overflow trap) in validate(), MemoryPlan and NamedOption.parse.

import MoECore
import Testing

@Suite struct ConfigFuzzRegression {
  @Test(arguments: [Int.max, Int.min, -1, 0, (1 << 24) + 1])
  func extremeSizes(value: Int) {
    for edit: (inout MoEConfig) -> Void in [{ $0.tokens = value }, { $0.hidden = value }, { $0.ffn = value },
                                            { $0.experts = value }, { $0.topK = value }] {
      #expect(thrownConfigError { try base(edit).validate() } != nil)
      #expect(thrownConfigError { _ = try MemoryPlan(config: base(edit), gpus: 1) } != nil)
    }
  }

  @Test(arguments: [Double.nan, .infinity, -.infinity, 0, -0.0, -1, .greatestFiniteMagnitude, 1e300])
  func extremeCapacityFactors(factor: Double) {
    let config = base { $0.capacity = .factor(factor) }
    #expect(thrownConfigError { try config.validate() }?.field == "capacity-factor")
  }

  @Test func maximalValidShapeKeepsProductsInRange() throws {
    // Every size at the limit except what the 2^40-element weight bound forces down.
    let config = MoEConfig(tokens: 1 << 24, hidden: 1 << 24, ffn: 1, experts: 1 << 16, topK: 1 << 16,
                           capacity: .factor(1 / 65536.0))
    try config.validate()
    #expect(config.expertCapacity == 1 << 8)
    #expect(thrownConfigError { _ = try MemoryPlan(config: config, gpus: Int.min) }?.field == "gpus")
    #expect(thrownConfigError { _ = try MemoryPlan(config: config, gpus: 1, tileM: Int.max) }?.field == "tile-m")
  }

  @Test(arguments: ["", "\u{0}", "İ", "GELU_TANH\u{0}", String(repeating: "ß", count: 100), "\u{FFFD}relu"])
  func oddNames(text: String) {
    #expect(thrownConfigError { _ = try Activation.parse(text, field: "activation") }?.field == "activation")
    #expect(thrownConfigError { _ = try DType.parse(text, field: "dtype") }?.field == "dtype")
    #expect(thrownConfigError { _ = try Math.parse(text, field: "math") }?.field == "math")
    #expect(thrownConfigError { _ = try ExpertForm.parse(text, field: "expert-form") }?.field == "expert-form")
  }
}

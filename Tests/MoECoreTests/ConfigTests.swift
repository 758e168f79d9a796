// MoEConfig.validate(), the option parsers, the weights' shape checks and the capacity formula
// (docs/SEMANTICS.md §Shapes, §Capacity): every invalid value or combination throws a ConfigError
// that names the field, the value and what would have been accepted.

import Foundation
import MoECore
import Testing

/// The ConfigError `body` throws, or nil (any other error is a test failure).
func thrownConfigError(_ body: () throws -> Void) -> ConfigError? {
  do { try body() } catch let error as ConfigError { return error } catch {
    Issue.record("not a ConfigError: \(error)")
  }
  return nil
}

/// A valid base: S = 16, H = 8, D = 4, E = 4, k = 2.
func base(_ edit: (inout MoEConfig) -> Void = { _ in }) -> MoEConfig {
  var config = MoEConfig(tokens: 16, hidden: 8, ffn: 4, experts: 4, topK: 2)
  edit(&config)
  return config
}

struct InvalidConfig: Sendable, CustomTestStringConvertible {
  var name: String
  var config: MoEConfig
  var error: ConfigError
  var testDescription: String { name }
}

let maxDim = MoEConfig.maxDimension
let sizeExpected = "an integer in 1...16777216"
let factorExpected = "a finite number > 0 (or dropless)"

let invalidConfigs: [InvalidConfig] = [
  // Sizes: zero, negative, above 2^24, for each of S, H, D, E (checked in that order).
  InvalidConfig(name: "tokens 0", config: base { $0.tokens = 0 }, error: ConfigError(field: "tokens", value: "0", expected: sizeExpected)),
  InvalidConfig(name: "tokens -3", config: base { $0.tokens = -3 }, error: ConfigError(field: "tokens", value: "-3", expected: sizeExpected)),
  InvalidConfig(name: "tokens 2^24+1", config: base { $0.tokens = maxDim + 1 }, error: ConfigError(field: "tokens", value: "16777217", expected: sizeExpected)),
  InvalidConfig(name: "hidden 0", config: base { $0.hidden = 0 }, error: ConfigError(field: "hidden", value: "0", expected: sizeExpected)),
  InvalidConfig(name: "hidden -1", config: base { $0.hidden = -1 }, error: ConfigError(field: "hidden", value: "-1", expected: sizeExpected)),
  InvalidConfig(name: "hidden Int.max", config: base { $0.hidden = .max }, error: ConfigError(field: "hidden", value: "\(Int.max)", expected: sizeExpected)),
  InvalidConfig(name: "ffn 0", config: base { $0.ffn = 0 }, error: ConfigError(field: "ffn", value: "0", expected: sizeExpected)),
  InvalidConfig(name: "ffn 2^24+1", config: base { $0.ffn = maxDim + 1 }, error: ConfigError(field: "ffn", value: "16777217", expected: sizeExpected)),
  InvalidConfig(name: "experts 0", config: base { $0.experts = 0 }, error: ConfigError(field: "experts", value: "0", expected: sizeExpected)),
  InvalidConfig(name: "experts -4", config: base { $0.experts = -4 }, error: ConfigError(field: "experts", value: "-4", expected: sizeExpected)),
  InvalidConfig(name: "experts 0 and k 0: experts first", config: base { $0.experts = 0; $0.topK = 0 }, error: ConfigError(field: "experts", value: "0", expected: sizeExpected)),
  InvalidConfig(name: "tokens 0 and hidden 0: tokens first", config: base { $0.tokens = 0; $0.hidden = 0 }, error: ConfigError(field: "tokens", value: "0", expected: sizeExpected)),
  // k: 1 ≤ k ≤ E.
  InvalidConfig(name: "k 0", config: base { $0.topK = 0 }, error: ConfigError(field: "topk", value: "0", expected: "an integer in 1...4 (1 ≤ k ≤ experts)")),
  InvalidConfig(name: "k -1", config: base { $0.topK = -1 }, error: ConfigError(field: "topk", value: "-1", expected: "an integer in 1...4 (1 ≤ k ≤ experts)")),
  InvalidConfig(name: "k > E", config: base { $0.topK = 5 }, error: ConfigError(field: "topk", value: "5", expected: "an integer in 1...4 (1 ≤ k ≤ experts)")),
  InvalidConfig(name: "k 2 > E 1", config: base { $0.experts = 1 }, error: ConfigError(field: "topk", value: "2", expected: "an integer in 1...1 (1 ≤ k ≤ experts)")),
  // Capacity factor: finite and > 0.
  InvalidConfig(name: "factor 0", config: base { $0.capacity = .factor(0) }, error: ConfigError(field: "capacity-factor", value: "0.0", expected: factorExpected)),
  InvalidConfig(name: "factor -0", config: base { $0.capacity = .factor(-0.0) }, error: ConfigError(field: "capacity-factor", value: "-0.0", expected: factorExpected)),
  InvalidConfig(name: "factor -0.5", config: base { $0.capacity = .factor(-0.5) }, error: ConfigError(field: "capacity-factor", value: "-0.5", expected: factorExpected)),
  InvalidConfig(name: "factor NaN", config: base { $0.capacity = .factor(.nan) }, error: ConfigError(field: "capacity-factor", value: "nan", expected: factorExpected)),
  InvalidConfig(name: "factor inf", config: base { $0.capacity = .factor(.infinity) }, error: ConfigError(field: "capacity-factor", value: "inf", expected: factorExpected)),
  InvalidConfig(name: "factor -inf", config: base { $0.capacity = .factor(-.infinity) }, error: ConfigError(field: "capacity-factor", value: "-inf", expected: factorExpected)),
  InvalidConfig(
    name: "factor giving > 2^24 slots", config: base { $0.capacity = .factor(1e30) },
    error: ConfigError(field: "capacity-factor", value: "1e+30", expected: "a factor giving at most 16777216 slots per expert")),
  InvalidConfig(
    name: "f·k·S/E = 2^25", config: base { $0.tokens = maxDim; $0.experts = 2; $0.topK = 2; $0.capacity = .factor(2) },
    error: ConfigError(field: "capacity-factor", value: "2.0", expected: "a factor giving at most 16777216 slots per expert")),
  // tf32 is for fp32 storage only.
  InvalidConfig(
    name: "tf32 with bf16", config: base { $0.math = .tf32; $0.dtype = .bf16 },
    error: ConfigError(field: "math", value: "tf32", expected: "fp32 with dtype bf16 (tf32 applies to fp32 storage only)")),
  InvalidConfig(
    name: "tf32 with fp16", config: base { $0.math = .tf32; $0.dtype = .fp16 },
    error: ConfigError(field: "math", value: "tf32", expected: "fp32 with dtype fp16 (tf32 applies to fp32 storage only)")),
  // The weights must stay addressable: E·D·H ≤ 2^40, overflow included.
  InvalidConfig(
    name: "E·D·H = 2^41", config: base { $0.experts = 1 << 14; $0.ffn = 1 << 14; $0.hidden = 1 << 13 },
    error: ConfigError(field: "experts × ffn × hidden", value: "16384 × 16384 × 8192", expected: "at most 2^40 weight elements")),
  InvalidConfig(
    name: "E·D·H overflows Int", config: base { $0.experts = maxDim; $0.ffn = maxDim; $0.hidden = maxDim },
    error: ConfigError(field: "experts × ffn × hidden", value: "16777216 × 16777216 × 16777216", expected: "at most 2^40 weight elements")),
]

let validConfigs: [(String, MoEConfig)] = [
  ("base", base()),
  ("S=1 E=1 k=1", MoEConfig(tokens: 1, hidden: 1, ffn: 1, experts: 1, topK: 1)),
  ("k = E", base { $0.topK = 4 }),
  ("sizes at 2^24", base { $0.tokens = maxDim; $0.hidden = maxDim; $0.ffn = 1; $0.experts = 1; $0.topK = 1 }),
  ("E·D·H = 2^40", base { $0.experts = 1 << 14; $0.ffn = 1 << 13; $0.hidden = 1 << 13 }),
  ("f·k·S/E = 2^24", base { $0.tokens = maxDim; $0.experts = 2; $0.topK = 2; $0.capacity = .factor(1) }),
  ("tiny factor", base { $0.capacity = .factor(1e-300) }),
  ("dropless", base { $0.capacity = .dropless }),
  ("tf32 with fp32", base { $0.math = .tf32 }),
  ("bf16", base { $0.dtype = .bf16 }),
  ("fp16 gated silu, no biases, no renormalisation", base {
    $0.dtype = .fp16; $0.expertForm = .gated; $0.activation = .silu; $0.biases = false; $0.renormalize = false
  }),
]

@Suite("MoEConfig validation and the capacity formula")
struct ConfigTests {
  @Test("each invalid config throws the right ConfigError", arguments: invalidConfigs)
  func invalid(_ c: InvalidConfig) {
    let error = thrownConfigError { try c.config.validate() }
    #expect(error == c.error, "\(c.name): got \(error.map(String.init(describing:)) ?? "no error")")
    #expect(error?.description == "invalid \(c.error.field) = \(c.error.value): expected \(c.error.expected)")
  }

  @Test("valid configs pass")
  func valid() {
    for (name, config) in validConfigs {
      let error = thrownConfigError { try config.validate() }
      #expect(error == nil, "\(name): \(String(describing: error))")
    }
  }

  @Test("names: every accepted spelling parses, case-insensitively; others throw with the list")
  func parsing() {
    for d in DType.allCases {
      #expect((try? DType.parse(d.rawValue.uppercased(), field: "dtype")) == d)
    }
    for a in Activation.allCases {
      #expect((try? Activation.parse(a.rawValue, field: "activation")) == a)
    }
    #expect((try? Activation.parse("Gelu_Tanh", field: "activation")) == .geluTanh)
    #expect((try? Math.parse("TF32", field: "math")) == .tf32)
    #expect((try? ExpertForm.parse("Gated", field: "expert-form")) == .gated)

    let cases: [(ConfigError?, ConfigError)] = [
      (thrownConfigError { _ = try DType.parse("fp64", field: "dtype") },
       ConfigError(field: "dtype", value: "'fp64'", expected: "one of fp32, bf16, fp16")),
      (thrownConfigError { _ = try DType.parse("FP8", field: "dtype") },
       ConfigError(field: "dtype", value: "'FP8'", expected: "one of fp32, bf16, fp16")),
      (thrownConfigError { _ = try DType.parse("", field: "dtype") },
       ConfigError(field: "dtype", value: "''", expected: "one of fp32, bf16, fp16")),
      (thrownConfigError { _ = try Math.parse("fp16", field: "math") },
       ConfigError(field: "math", value: "'fp16'", expected: "one of fp32, tf32")),
      (thrownConfigError { _ = try Activation.parse("swish", field: "activation") },
       ConfigError(field: "activation", value: "'swish'", expected: "one of relu, gelu, gelu_tanh, silu")),
      (thrownConfigError { _ = try Activation.parse("geluTanh", field: "activation") },
       ConfigError(field: "activation", value: "'geluTanh'", expected: "one of relu, gelu, gelu_tanh, silu")),
      (thrownConfigError { _ = try ExpertForm.parse("swiglu", field: "expert-form") },
       ConfigError(field: "expert-form", value: "'swiglu'", expected: "one of plain, gated")),
    ]
    for (got, want) in cases {
      #expect(got == want, "got \(got.map(String.init(describing:)) ?? "no error"), want \(want)")
    }
    #expect(cases[0].0?.description == "invalid dtype = 'fp64': expected one of fp32, bf16, fp16")
  }

  @Test("weights: wrong shapes and mismatches with the config")
  func weightShapes() {
    let (h, d, e) = (3, 2, 4)
    func zeros(_ n: Int) -> [Float] { [Float](repeating: 0, count: n) }
    func make(
      form: ExpertForm = .plain, gate: Int = 4 * 3, w1: Int = 4 * 2 * 3, w2: Int = 4 * 3 * 2, w3: Int? = nil,
      b1: Int? = nil, b2: Int? = nil, b3: Int? = nil
    ) -> ConfigError? {
      thrownConfigError {
        _ = try MoEWeights(
          hidden: h, ffn: d, experts: e, form: form, gate: zeros(gate), w1: zeros(w1), w2: zeros(w2),
          w3: w3.map(zeros), b1: b1.map(zeros), b2: b2.map(zeros), b3: b3.map(zeros))
      }
    }
    #expect(make() == nil)
    #expect(make(form: .gated, w3: 24, b1: 8, b2: 12, b3: 8) == nil)
    #expect(make(gate: 11) == ConfigError(field: "gate.weight", value: "11 elements", expected: "shape [4, 3] = 12 elements"))
    #expect(make(w1: 25) == ConfigError(field: "w1", value: "25 elements", expected: "shape [4, 2, 3] = 24 elements"))
    #expect(make(w2: 0) == ConfigError(field: "w2", value: "0 elements", expected: "shape [4, 3, 2] = 24 elements"))
    #expect(make(b1: 7) == ConfigError(field: "b1", value: "7 elements", expected: "shape [4, 2] = 8 elements"))
    #expect(make(b2: 8) == ConfigError(field: "b2", value: "8 elements", expected: "shape [4, 3] = 12 elements"))
    #expect(make(w3: 24) == ConfigError(field: "w3", value: "present", expected: "no w3/b3 for a plain expert (use the gated form)"))
    #expect(make(b3: 8) == ConfigError(field: "w3", value: "present", expected: "no w3/b3 for a plain expert (use the gated form)"))
    #expect(make(form: .gated) == ConfigError(field: "w3", value: "missing", expected: "w3 [E, D, H] for a gated expert"))
    #expect(make(form: .gated, w3: 23) == ConfigError(field: "w3", value: "23 elements", expected: "shape [4, 2, 3] = 24 elements"))
    #expect(make(form: .gated, w3: 24, b3: 6) == ConfigError(field: "b3", value: "6 elements", expected: "shape [4, 2] = 8 elements"))

    let config = MoEConfig(tokens: 5, hidden: h, ffn: d, experts: e, topK: 2)
    let weights = MoEWeights.random(config, seed: 7)
    #expect(thrownConfigError { try weights.check(against: config) } == nil)
    var other = config
    other.hidden = 5
    #expect(thrownConfigError { try weights.check(against: other) } == ConfigError(field: "hidden", value: "5", expected: "3 as in the weights"))
    other = config
    other.ffn = 9
    #expect(thrownConfigError { try weights.check(against: other) } == ConfigError(field: "ffn", value: "9", expected: "2 as in the weights"))
    other = config
    other.experts = 8
    #expect(thrownConfigError { try weights.check(against: other) } == ConfigError(field: "experts", value: "8", expected: "4 as in the weights"))
    other = config
    other.expertForm = .gated
    #expect(thrownConfigError { try weights.check(against: other) } == ConfigError(field: "expert-form", value: "gated", expected: "plain as in the weights"))
  }

  /// (f, k, S, E, C) with C worked out by hand.
  static let capacities: [(f: Double, k: Int, s: Int, e: Int, c: Int)] = [
    (1.0, 2, 4096, 8, 1024),  // exact
    (1.1, 2, 4096, 8, 1127),  // 1126.4
    (1.25, 2, 4096, 8, 1280),  // exact
    (0.5, 2, 4096, 8, 512),  // exact
    (1.1, 1, 10, 1, 11),  // 1.1 · 10 = 11.000000000000002 in binary: the slack keeps 11
    (1.1, 1, 100, 11, 10),  // 110.00000000000001 / 11: 10
    (1.1, 2, 100, 8, 28),  // 27.5
    (1.1, 1, 1000, 10, 110),  // 1.1 · 1000 / 10 = 110.00000000000001: 110
    (1.1, 8, 16384, 64, 2253),  // 2252.8
    (1.25, 1, 3, 2, 2),  // 1.875
    (1.25, 2, 100, 8, 32),  // 31.25
    (1.25, 1, 8, 10, 1),  // exact 1
    (0.5, 1, 4, 2, 1),  // exact 1
    (0.5, 2, 3, 3, 1),  // exact 1
    (0.5, 1, 1, 4, 1),  // 0.125
    (0.5, 2, 24, 4, 6),  // exact
    (0.5, 1, 9, 2, 3),  // 2.25
    (0.1, 1, 30, 3, 1),  // 0.1 · 30 = 3.0000000000000004: 1
    (1.0, 1, 1, 1, 1),
    (1.0, 3, 11, 6, 6),  // 5.5
    (1.0, 4, 7, 4, 7),  // k = E: every token
    (3.0, 1, 1, 4, 1),  // 0.75
    (2.0, 2, 9, 5, 8),  // 7.2
  ]

  @Test("C = ceil(f · k · S / E)")
  func capacityFormula() {
    for (f, k, s, e, c) in Self.capacities {
      #expect(MoEConfig.capacity(factor: f, topK: k, tokens: s, experts: e) == c, "f=\(f) k=\(k) S=\(s) E=\(e)")
      let config = MoEConfig(tokens: s, hidden: 8, ffn: 8, experts: e, topK: k, capacity: .factor(f))
      #expect(config.expertCapacity == c, "f=\(f) k=\(k) S=\(s) E=\(e)")
    }
    #expect(MoEConfig(tokens: 8, hidden: 8, ffn: 8, experts: 2, topK: 1, capacity: .dropless).expertCapacity == nil)
  }
}

@Suite struct CapacityCodingTests {
  @Test(arguments: [Capacity.factor(1.25), .dropless])
  func roundTrip(capacity: Capacity) throws {
    let config = MoEConfig(tokens: 4, hidden: 8, ffn: 8, experts: 2, topK: 1, capacity: capacity)
    let data = try JSONEncoder().encode(config)
    let text = String(decoding: data, as: UTF8.self)
    #expect(text.contains(capacity == .dropless ? "\"capacity\":\"dropless\"" : "\"capacity\":1.25"), "\(text)")
    #expect(try JSONDecoder().decode(MoEConfig.self, from: data) == config)
  }
}

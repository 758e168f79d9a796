// The CPU backend against the float64 reference (Float64Reference.swift), rule by rule of
// docs/SEMANTICS.md. Every case draws fresh random inputs from a seed taken from the system RNG;
// a failure prints it. Replay a failure with
//   FLASHMOE_TEST_SEED=<seed> swift test --filter MoECPUTests
// (the seed then feeds every case; the case parameters are fixed by the tables below).

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import MoECPU
import MoECore
import Testing

// MARK: - The error bounds (docs/SEMANTICS.md §Error bounds), stated once

struct Tolerance: Sendable {
  var atol: Double
  var rtol: Double
  func accepts(_ out: Float, _ ref: Float) -> Bool {
    if out.isNaN || ref.isNaN { return out.isNaN && ref.isNaN }
    if out.isInfinite || ref.isInfinite { return out == ref }
    return abs(Double(out) - Double(ref)) <= atol + rtol * abs(Double(ref))
  }
}

/// |out − ref| ≤ atol + rtol · |ref|, per (storage dtype, math).
let semanticsTolerances: [(dtype: DType, math: Math, tolerance: Tolerance)] = [
  (.fp32, .fp32, Tolerance(atol: 1e-5, rtol: 1e-4)),
  (.fp32, .tf32, Tolerance(atol: 2e-3, rtol: 1e-2)),
  (.bf16, .fp32, Tolerance(atol: 2e-2, rtol: 2e-2)),
  (.fp16, .fp32, Tolerance(atol: 2e-3, rtol: 5e-3)),
]

/// Routing weights are fp32 in the backend and Double in the reference.
let routingWeightTolerance = 1e-6

func tolerance(for config: MoEConfig) -> Tolerance {
  semanticsTolerances.first { $0.dtype == config.dtype && $0.math == config.math }!.tolerance
}

// MARK: - Seeds, problems, the backend

/// A fresh seed from the system RNG, or FLASHMOE_TEST_SEED to replay a failing case.
func freshSeed() -> UInt64 {
  if let text = getenv("FLASHMOE_TEST_SEED"), let seed = UInt64(String(cString: text)) { return seed }
  var system = SystemRandomNumberGenerator()
  return system.next()
}

/// How a case changes the random gate so that logits tie bitwise.
enum GateTweak: Sendable {
  case none
  /// Row `to` becomes a copy of row `from` (multiplied by `scale`, a power of two: exact).
  case copyRows([(from: Int, to: Int)], scale: Float)
  /// Every row equals row 0.
  case allEqual
}

/// One random instance of a case, with its reference result.
struct Problem {
  var name: String
  var config: MoEConfig
  var groups: Int
  var weights: MoEWeights
  var input: [Float]
  var reference: Float64Reference.Result
  var seed: UInt64

  var tokens: Int { config.tokens * groups }
  /// Attached to every failure: how to replay it.
  var context: String { "[\(name); seed \(seed): replay with FLASHMOE_TEST_SEED=\(seed)]" }
}

/// Random weights (nn.Linear-like) and tokens (standard normal), stored in the config's dtype. Inputs
/// whose top-k hinges on two probabilities closer than fp32 resolves are drawn again (from the same
/// seeded stream), so that a disagreement always means a broken rule.
func makeProblem(
  _ name: String, _ config: MoEConfig, groups: Int = 1, gate: GateTweak = .none, seed: UInt64,
  editInput: (inout [Float]) -> Void = { _ in }
) throws -> Problem {
  var weights = MoEWeights.random(config, seed: seed)
  let (h, e) = (config.hidden, config.experts)
  switch gate {
  case .none: break
  case .copyRows(let rows, let scale):
    for (from, to) in rows {
      for c in 0..<h {
        weights.gate[from * h + c] *= scale
        weights.gate[to * h + c] = weights.gate[from * h + c]
      }
    }
  case .allEqual:
    for row in 1..<e { for c in 0..<h { weights.gate[row * h + c] = weights.gate[c] } }
  }
  var rng = SeededGenerator(seed: seed ^ 0x5EED_0F_1A7E)
  let tokens = config.tokens * groups
  for _ in 0..<100 {
    var input = rng.normals(tokens * h).map { Float64Reference.store($0, config.dtype) }
    editInput(&input)
    let reference = Float64Reference.forward(config: config, weights: weights, input: input, groups: groups)
    if reference.ambiguousTokens.isEmpty {
      return Problem(name: name, config: config, groups: groups, weights: weights, input: input, reference: reference, seed: seed)
    }
  }
  Issue.record("\(name) seed \(seed): no input without near-ties in 100 draws")
  throw CancellationError()
}

func runBackend(_ p: Problem, threads: Int = 3) throws -> CPUBackend.Result {
  let backend = try CPUBackend(threads: threads)
  return try backend.forward(config: p.config, weights: p.weights, input: p.input, groups: p.groups)
}

/// Whether `v` is a value of `dtype` (NaN counts: a NaN stays a NaN).
func isStored(_ v: Float, _ dtype: DType) -> Bool {
  if v.isNaN { return true }
  switch dtype {
  case .fp32: return true
  case .bf16: return v.bitPattern & 0xFFFF == 0
  case .fp16: return Float(Float16(v)) == v
  }
}

/// Pair (token, pick) in words.
func pairName(_ pair: Int, k: Int) -> String { "token \(pair / k) pick \(pair % k)" }

/// The backend's routing against the reference's: experts and slots exactly, weights within 1e-6.
func checkRouting(_ p: Problem, _ routing: Routing, sourceLocation: SourceLocation = #_sourceLocation) {
  let k = p.config.topK
  #expect(routing.tokens == p.tokens && routing.experts == p.config.experts && routing.topK == k, "routing shape \(p.context)", sourceLocation: sourceLocation)
  guard routing.expert.count == p.tokens * k, routing.slot.count == p.tokens * k, routing.weight.count == p.tokens * k else {
    Issue.record("routing arrays have the wrong length \(p.context)", sourceLocation: sourceLocation)
    return
  }
  var problems: [String] = []
  for t in 0..<p.tokens {
    for j in 0..<k {
      let pair = t * k + j
      let (e, w, s) = (p.reference.experts[t][j], p.reference.weights[t][j], p.reference.slots[t][j])
      if Int(routing.expert[pair]) != e { problems.append("\(pairName(pair, k: k)): expert \(routing.expert[pair]), reference \(e)") }
      if Int(routing.slot[pair]) != s { problems.append("\(pairName(pair, k: k)): slot \(routing.slot[pair]), reference \(s)") }
      let bothNaN = w.isNaN && routing.weight[pair].isNaN
      if !bothNaN && !(abs(Double(routing.weight[pair]) - w) <= routingWeightTolerance) {
        problems.append("\(pairName(pair, k: k)): weight \(routing.weight[pair]), reference \(w)")
      }
    }
  }
  let summary = "\(problems.count) routing mismatches, first: \(problems.prefix(6)) \(p.context)"
  #expect(problems.count == 0, Comment(rawValue: summary), sourceLocation: sourceLocation)
}

/// The backend's output against the reference's, element by element, and every value a stored one.
func checkOutput(_ p: Problem, _ output: [Float], sourceLocation: SourceLocation = #_sourceLocation) {
  let h = p.config.hidden
  guard output.count == p.tokens * h else {
    Issue.record("output has \(output.count) values, expected \(p.tokens * h) \(p.context)", sourceLocation: sourceLocation)
    return
  }
  let tol = tolerance(for: p.config)
  var problems: [String] = []
  var unstored: [String] = []
  for i in output.indices {
    if !tol.accepts(output[i], p.reference.output[i]) {
      problems.append("[token \(i / h), \(i % h)]: \(output[i]) vs reference \(p.reference.output[i])")
    }
    if !isStored(output[i], p.config.dtype) { unstored.append("[token \(i / h), \(i % h)]: \(output[i])") }
  }
  let outside = "\(problems.count) of \(output.count) outputs outside atol \(tol.atol), rtol \(tol.rtol); first: \(problems.prefix(6)) \(p.context)"
  #expect(problems.count == 0, Comment(rawValue: outside), sourceLocation: sourceLocation)
  let notStored = "\(unstored.count) outputs are not \(p.config.dtype) values; first: \(unstored.prefix(6)) \(p.context)"
  #expect(unstored.count == 0, Comment(rawValue: notStored), sourceLocation: sourceLocation)
}

func checkAgainstReference(_ p: Problem, _ r: CPUBackend.Result, sourceLocation: SourceLocation = #_sourceLocation) {
  checkRouting(p, r.routing, sourceLocation: sourceLocation)
  checkOutput(p, r.output, sourceLocation: sourceLocation)
}

// MARK: - The case tables

struct Case: Sendable, CustomTestStringConvertible {
  var name: String
  var config: MoEConfig
  var groups: Int = 1
  var testDescription: String { name }
}

func shape(
  S: Int, H: Int, D: Int, E: Int, k: Int, capacity: Capacity = .factor(1.0), activation: Activation = .gelu,
  form: ExpertForm = .plain, biases: Bool = true, renormalize: Bool = true, dtype: DType = .fp32, math: Math = .fp32
) -> MoEConfig {
  MoEConfig(
    tokens: S, hidden: H, ffn: D, experts: E, topK: k, capacity: capacity, activation: activation,
    expertForm: form, biases: biases, renormalize: renormalize, dtype: dtype, math: math)
}

enum Cases {
  static let storage: [(DType, Math)] = [(.fp32, .fp32), (.fp32, .tf32), (.bf16, .fp32), (.fp16, .fp32)]

  /// Every storage/math × activation × expert form × biases, at odd sizes (S = 9, H = 13, D = 7, E = 5,
  /// k = 2, C = 4: some pairs drop).
  static let experts: [Case] = {
    var cases: [Case] = []
    for (dtype, math) in storage {
      for activation in Activation.allCases {
        for form in ExpertForm.allCases {
          for biases in [true, false] {
            cases.append(Case(
              name: "\(dtype)/\(math) \(activation.rawValue) \(form) \(biases ? "biases" : "no biases")",
              config: shape(S: 9, H: 13, D: 7, E: 5, k: 2, activation: activation, form: form, biases: biases, dtype: dtype, math: math)))
          }
        }
      }
    }
    return cases
  }()

  /// Renormalisation on/off × capacity (factors that drop, that don't, dropless) × storage.
  static let routing: [Case] = {
    var cases: [Case] = []
    for (dtype, math) in storage {
      for renormalize in [true, false] {
        for capacity in [Capacity.factor(0.5), .factor(1.0), .factor(1.1), .factor(1.25), .factor(3), .dropless] {
          cases.append(Case(
            name: "\(dtype)/\(math) \(renormalize ? "renormalize" : "no-renormalize") \(capacity)",
            config: shape(S: 11, H: 10, D: 6, E: 6, k: 3, capacity: capacity, activation: .silu, renormalize: renormalize, dtype: dtype, math: math)))
        }
      }
    }
    return cases
  }()

  /// Odd and edge sizes, source groups.
  static let sizes: [Case] = [
    Case(name: "S=1 E=1 k=1", config: shape(S: 1, H: 13, D: 7, E: 1, k: 1)),
    Case(name: "S=1 E=1 k=1 bf16 gated relu dropless", config: shape(S: 1, H: 13, D: 7, E: 1, k: 1, capacity: .dropless, activation: .relu, form: .gated, dtype: .bf16)),
    Case(name: "S=10 E=1 k=1 f=0.5 (half drop)", config: shape(S: 10, H: 5, D: 3, E: 1, k: 1, capacity: .factor(0.5))),
    Case(name: "S=1 E=7 k=3 fp16", config: shape(S: 1, H: 9, D: 11, E: 7, k: 3, dtype: .fp16)),
    Case(name: "k=E=4 S=7", config: shape(S: 7, H: 13, D: 7, E: 4, k: 4)),
    Case(name: "k=E=3 S=5 f=0.5 gated silu no-renormalize", config: shape(S: 5, H: 6, D: 5, E: 3, k: 3, capacity: .factor(0.5), activation: .silu, form: .gated, renormalize: false)),
    Case(name: "H=1 D=1 E=3 k=2 S=5", config: shape(S: 5, H: 1, D: 1, E: 3, k: 2)),
    Case(name: "H=8 D=16 E=4 k=1 S=16", config: shape(S: 16, H: 8, D: 16, E: 4, k: 1, activation: .geluTanh)),
    Case(name: "S=67 H=40 D=24 E=8 k=2 fp16 gated", config: shape(S: 67, H: 40, D: 24, E: 8, k: 2, form: .gated, dtype: .fp16)),
    Case(name: "S=33 H=17 D=9 E=5 k=2 tf32 gated gelu_tanh dropless", config: shape(S: 33, H: 17, D: 9, E: 5, k: 2, capacity: .dropless, activation: .geluTanh, form: .gated, math: .tf32)),
    Case(name: "S=101 H=72 D=40 E=6 k=3 bf16 f=1.25", config: shape(S: 101, H: 72, D: 40, E: 6, k: 3, capacity: .factor(1.25), dtype: .bf16)),
    Case(name: "S=37 H=33 D=65 E=9 k=2 f=1.1 relu", config: shape(S: 37, H: 33, D: 65, E: 9, k: 2, capacity: .factor(1.1), activation: .relu)),
    // Crosses the GEMM's blocking (K > 256 in both GEMMs, > 144 rows for one expert).
    Case(name: "S=150 H=270 D=260 E=1 k=1 dropless bf16", config: shape(S: 150, H: 270, D: 260, E: 1, k: 1, capacity: .dropless, activation: .silu, dtype: .bf16)),
    Case(name: "groups=2 S=11 E=4 k=2 f=1", config: shape(S: 11, H: 13, D: 7, E: 4, k: 2), groups: 2),
    Case(name: "groups=2 S=11 E=4 k=2 f=0.5 bf16", config: shape(S: 11, H: 13, D: 7, E: 4, k: 2, capacity: .factor(0.5), dtype: .bf16), groups: 2),
    Case(name: "groups=3 S=5 E=3 k=1 f=0.5 fp16", config: shape(S: 5, H: 7, D: 3, E: 3, k: 1, capacity: .factor(0.5), dtype: .fp16), groups: 3),
    Case(name: "groups=2 S=9 E=5 k=2 dropless tf32", config: shape(S: 9, H: 13, D: 7, E: 5, k: 2, capacity: .dropless, math: .tf32), groups: 2),
    Case(name: "groups=4 S=1 E=2 k=2 f=0.5", config: shape(S: 1, H: 3, D: 2, E: 2, k: 2, capacity: .factor(0.5)), groups: 4),
  ]
}

// MARK: - The tests

@Suite("docs/SEMANTICS.md: CPU backend vs float64 reference")
struct SemanticsTests {
  @Test("every storage × activation × form × biases", arguments: Cases.experts)
  func experts(_ c: Case) throws {
    let p = try makeProblem(c.name, c.config, groups: c.groups, seed: freshSeed())
    checkAgainstReference(p, try runBackend(p))
  }

  @Test("renormalisation × capacity × storage", arguments: Cases.routing)
  func routingOptions(_ c: Case) throws {
    let p = try makeProblem(c.name, c.config, groups: c.groups, seed: freshSeed())
    checkAgainstReference(p, try runBackend(p))
  }

  @Test("odd sizes and source groups", arguments: Cases.sizes)
  func sizes(_ c: Case) throws {
    let p = try makeProblem(c.name, c.config, groups: c.groups, seed: freshSeed())
    checkAgainstReference(p, try runBackend(p))
  }

  @Test("thread count does not change the result", arguments: [1, 2, 5])
  func threads(_ threads: Int) throws {
    let p = try makeProblem("threads=\(threads)", shape(S: 29, H: 21, D: 19, E: 6, k: 2, form: .gated, dtype: .bf16), seed: freshSeed())
    checkAgainstReference(p, try runBackend(p, threads: threads))
  }

  // MARK: Routing

  @Test("Routing: many tokens, two source groups, every field against the reference")
  func routingManyTokens() throws {
    let config = shape(S: 150, H: 8, D: 1, E: 16, k: 4, capacity: .factor(1.0))
    let p = try makeProblem("routing S=150×2 E=16 k=4", config, groups: 2, seed: freshSeed())
    let r = try runBackend(p)
    checkAgainstReference(p, r)
    let k = config.topK
    // Kept pairs, and per expert the kept pairs in token-major order.
    var byExpert = [[Int]](repeating: [], count: config.experts)
    for t in 0..<p.tokens { for j in 0..<k where p.reference.slots[t][j] >= 0 { byExpert[p.reference.experts[t][j]].append(t * k + j) } }
    #expect(r.routing.keptPairs == byExpert.reduce(0) { $0 + $1.count }, "\(p.context)")
    let sameLists = r.routing.pairsByExpert() == byExpert
    #expect(sameLists, "pairsByExpert() differs from the reference's kept pairs \(p.context)")
    for pair in 0..<r.routing.pairs { #expect(r.routing.isKept(pair) == (r.routing.slot[pair] >= 0)) }
    // There were drops in this draw (C = 38 of ~37.5 on average per expert and group): check they are
    // the ones the reference drops, which checkRouting did; and capacity was never exceeded.
    let c = try #require(p.reference.capacity)
    for g in 0..<p.groups {
      var kept = [Int](repeating: 0, count: config.experts)
      for t in (g * config.tokens)..<((g + 1) * config.tokens) {
        for j in 0..<k where r.routing.slot[t * k + j] >= 0 { kept[Int(r.routing.expert[t * k + j])] += 1 }
      }
      #expect(kept.allSatisfy { $0 <= c }, "group \(g) kept \(kept) with C = \(c) \(p.context)")
    }
  }

  @Test("exact ties: lower expert first, picks in descending p", arguments: [DType.fp32, .bf16, .fp16])
  func exactTies(_ dtype: DType) throws {
    // Rows 4 = row 1 (both ×4, so the tied pair is usually picked) and row 3 = row 2.
    let config = shape(S: 40, H: 12, D: 5, E: 6, k: 3, capacity: .dropless, dtype: dtype)
    let p = try makeProblem(
      "ties \(dtype)", config, gate: .copyRows([(from: 1, to: 4), (from: 2, to: 3)], scale: 4), seed: freshSeed())
    let r = try runBackend(p)
    checkAgainstReference(p, r)
    let k = config.topK
    var bothPicked = 0
    for t in 0..<p.tokens {
      let picks = (0..<k).map { Int(r.routing.expert[t * k + $0]) }
      let weights = (0..<k).map { r.routing.weight[t * k + $0] }
      for (low, high) in [(1, 4), (2, 3)] {
        // Tied experts: when the higher one is picked, the lower one was picked right before it.
        if let upper = picks.firstIndex(of: high) {
          let lower = try #require(picks.firstIndex(of: low), "token \(t) picks \(picks): expert \(high) without its tie \(low) \(p.context)")
          #expect(lower + 1 == upper, "token \(t) picks \(picks): tie \(low)/\(high) not lower first \(p.context)")
          #expect(weights[lower] == weights[upper], "token \(t): tied weights \(weights) differ \(p.context)")
          if low == 1 { bothPicked += 1 }
        }
      }
      for j in 1..<k {
        #expect(weights[j - 1] >= weights[j], "token \(t): weights \(weights) not descending \(p.context)")
        let (a, b) = (p.reference.probabilities[t][picks[j - 1]], p.reference.probabilities[t][picks[j]])
        #expect(a >= b, "token \(t): picks \(picks) not in descending p \(p.context)")
      }
    }
    #expect(bothPicked > 0, "no token picked the tied pair 1/4 \(p.context)")
  }

  @Test("all experts tied (identical gate rows, or a zero token): picks 0, 1, …, k−1", arguments: [1, 2, 4, 5])
  func allTied(_ k: Int) throws {
    for renormalize in [true, false] {
      let config = shape(S: 6, H: 9, D: 4, E: 5, k: k, capacity: .dropless, renormalize: renormalize)
      let seed = freshSeed()
      let equalRows = try makeProblem("all rows equal k=\(k)", config, gate: .allEqual, seed: seed)
      let zeroToken = try makeProblem("token 2 zero k=\(k)", config, seed: seed) { x in
        for c in 0..<config.hidden { x[2 * config.hidden + c] = 0 }
      }
      for (p, tokens) in [(equalRows, Array(0..<6)), (zeroToken, [2])] {
        let r = try runBackend(p)
        checkAgainstReference(p, r)
        let expected = Float(renormalize ? 1 / Double(k) : 1 / Double(config.experts))
        for t in tokens {
          let picks = (0..<k).map { Int(r.routing.expert[t * k + $0]) }
          #expect(picks == Array(0..<k), "token \(t) picks \(picks) \(p.context)")
          for j in 0..<k {
            #expect(abs(r.routing.weight[t * k + j] - expected) <= 1e-6, "token \(t) weight \(r.routing.weight[t * k + j]) ≠ \(expected) \(p.context)")
          }
        }
      }
    }
  }

  @Test("NaN token: all probabilities NaN picks 0, 1, …, k−1; other tokens unaffected")
  func nanToken() throws {
    let config = shape(S: 7, H: 6, D: 4, E: 5, k: 3, capacity: .dropless)
    let p = try makeProblem("NaN token 3", config, seed: freshSeed()) { x in x[3 * config.hidden + 1] = .nan }
    let r = try runBackend(p)
    checkRouting(p, r.routing)
    let (k, h) = (config.topK, config.hidden)
    #expect((0..<k).map { r.routing.expert[3 * k + $0] } == [0, 1, 2], "\(p.context)")
    #expect((0..<k).allSatisfy { r.routing.weight[3 * k + $0].isNaN }, "\(p.context)")
    #expect((0..<h).allSatisfy { r.output[3 * h + $0].isNaN }, "NaN token's output \(Array(r.output[(3 * h)..<(4 * h)])) \(p.context)")
    let tol = tolerance(for: config)
    for i in r.output.indices where i / h != 3 {
      #expect(tol.accepts(r.output[i], p.reference.output[i]), "[\(i / h), \(i % h)] \(r.output[i]) vs \(p.reference.output[i]) \(p.context)")
    }
  }

  // MARK: Capacity

  @Test("drops in token-major order; dropped pairs add zero; weights not renormalised after drops", arguments: [DType.fp32, .bf16])
  func drops(_ dtype: DType) throws {
    let config = shape(S: 24, H: 11, D: 6, E: 4, k: 2, capacity: .factor(0.5), dtype: dtype)  // C = 6 of ~12 wanted
    let p = try makeProblem("drops \(dtype)", config, seed: freshSeed())
    let r = try runBackend(p)
    checkAgainstReference(p, r)
    let (k, h) = (config.topK, config.hidden)
    let c = try #require(config.expertCapacity)
    #expect(c == 6)
    // Slots straight from the rule, on the backend's own picks: claimed token-major, C per expert.
    var claimed = [Int](repeating: 0, count: config.experts)
    var dropped = 0
    for pair in 0..<(p.tokens * k) {
      let e = Int(r.routing.expert[pair])
      let expected = claimed[e] < c ? claimed[e] : -1
      if expected >= 0 { claimed[e] += 1 } else { dropped += 1 }
      #expect(Int(r.routing.slot[pair]) == expected, "\(pairName(pair, k: k)) expert \(e): slot \(r.routing.slot[pair]), expected \(expected) \(p.context)")
    }
    #expect(dropped > 0, "no pair dropped \(p.context)")
    // Weights are those of the dropless routing (no renormalisation after drops).
    var dropless = config
    dropless.capacity = .dropless
    let full = Float64Reference.forward(config: dropless, weights: p.weights, input: p.input)
    for t in 0..<p.tokens {
      for j in 0..<k {
        #expect(abs(Double(r.routing.weight[t * k + j]) - full.weights[t][j]) <= routingWeightTolerance, "token \(t) pick \(j) \(p.context)")
      }
      // A token whose pairs all dropped gets exactly 0.
      if (0..<k).allSatisfy({ r.routing.slot[t * k + $0] < 0 }) {
        #expect((0..<h).allSatisfy { r.output[t * h + $0] == 0 }, "token \(t) all dropped but output \(Array(r.output[(t * h)..<(t * h + h)])) \(p.context)")
      }
    }
  }

  @Test("drops, by hand: S=3, E=3, k=2, f=0.5 (C=1)")
  func handMadeDrops() throws {
    // Gate = identity, so token rows are their logits.
    let config = shape(S: 3, H: 3, D: 2, E: 3, k: 2, capacity: .factor(0.5), activation: .relu)
    #expect(config.expertCapacity == 1)
    let seed = freshSeed()
    var weights = MoEWeights.random(config, seed: seed)
    weights.gate = [1, 0, 0, 0, 1, 0, 0, 0, 1]
    let input: [Float] = [
      2, 1, 0,  // picks 0, 1: both claim slot 0
      2, 0, 1,  // picks 0, 2: expert 0 is full (dropped), expert 2 slot 0
      1, 2, 0,  // picks 1, 0: both full, the token gets 0
    ]
    let r = try CPUBackend(threads: 2).forward(config: config, weights: weights, input: input)
    #expect(r.routing.expert == [0, 1, 0, 2, 1, 0])
    #expect(r.routing.slot == [0, 0, -1, 0, -1, -1])
    let big = exp(2.0) / (exp(2.0) + exp(1.0)), small = exp(1.0) / (exp(2.0) + exp(1.0))
    for (pair, w) in [big, small, big, small, big, small].enumerated() {
      #expect(abs(Double(r.routing.weight[pair]) - w) <= routingWeightTolerance, "pair \(pair): \(r.routing.weight[pair]) vs \(w)")
    }
    let x = { (t: Int) in Array(input[(3 * t)..<(3 * t + 3)]) }
    let y = { (e: Int, t: Int) in Float64Reference.expertOutput(config: config, weights: weights, expert: e, x: x(t)).map(Double.init) }
    let expected: [[Double]] = [
      zip(y(0, 0), y(1, 0)).map { big * $0 + small * $1 },
      y(2, 1).map { small * $0 },  // only the kept pick, with its undiminished weight
      [0, 0, 0],
    ]
    let tol = tolerance(for: config)
    for t in 0..<3 {
      for c in 0..<3 {
        #expect(tol.accepts(r.output[3 * t + c], Float(expected[t][c])), "token \(t) [\(c)]: \(r.output[3 * t + c]) vs \(expected[t][c]), seed \(seed)")
      }
    }
    #expect(r.output[6..<9].allSatisfy { $0 == 0 })
  }

  @Test("capacity per source group, by hand: every token wants expert 0")
  func handMadeGroups() throws {
    // S = 2 per group, E = 2, k = 1, f = 0.5 → C = 1 per (group, expert).
    let config = shape(S: 2, H: 2, D: 3, E: 2, k: 1, capacity: .factor(0.5))
    let seed = freshSeed()
    var weights = MoEWeights.random(config, seed: seed)
    weights.gate = [1, 0, 0, 1]
    let two = try CPUBackend(threads: 2).forward(config: config, weights: weights, input: [1, 0, 1, 0, 1, 0, 1, 0], groups: 2)
    #expect(two.routing.expert == [0, 0, 0, 0])
    #expect(two.routing.slot == [0, -1, 0, -1])
    #expect(two.output[2..<4].allSatisfy { $0 == 0 } && two.output[6..<8].allSatisfy { $0 == 0 })
    let tol = tolerance(for: config)
    #expect(zip(two.output[0..<2], two.output[4..<6]).allSatisfy { tol.accepts($0, $1) }, "\(two.output) seed \(seed)")
    // The same four tokens from one source: C = ceil(0.5 · 4 / 2) = 1, so three drop.
    var one = config
    one.tokens = 4
    let single = try CPUBackend(threads: 2).forward(config: one, weights: weights, input: [1, 0, 1, 0, 1, 0, 1, 0], groups: 1)
    #expect(single.routing.slot == [0, -1, -1, -1])
  }

  @Test("capacity per source group: identical groups claim identical slots", arguments: [2, 3])
  func groupsRepeat(_ groups: Int) throws {
    let config = shape(S: 13, H: 10, D: 6, E: 4, k: 2, capacity: .factor(0.75))  // C = 5 of ~6.5 wanted
    let p = try makeProblem("groups=\(groups) repeated", config, groups: groups, seed: freshSeed()) { x in
      let block = config.tokens * config.hidden
      for g in 1..<groups { for i in 0..<block { x[g * block + i] = x[i] } }
    }
    let r = try runBackend(p)
    checkAgainstReference(p, r)
    let pairs = config.tokens * config.topK
    for g in 1..<groups {
      #expect(Array(r.routing.slot[(g * pairs)..<((g + 1) * pairs)]) == Array(r.routing.slot[0..<pairs]), "group \(g) \(p.context)")
      #expect(Array(r.routing.expert[(g * pairs)..<((g + 1) * pairs)]) == Array(r.routing.expert[0..<pairs]), "group \(g) \(p.context)")
    }
    #expect(r.routing.slot.contains(-1), "no drops in this draw \(p.context)")
  }

  @Test("the reference's C = ceil(f·k·S/E) agrees with MoEConfig's")
  func capacityFormula() {
    for f in [0.1, 0.25, 0.5, 0.75, 1.0, 1.1, 1.2, 1.25, 1.5, 2.0, 3.3] {
      for k in 1...4 {
        for s in [1, 3, 7, 64, 100, 1000, 4096] {
          for e in [1, 3, 8, 11, 64] where k <= e {
            let mine = Float64Reference.capacity(factor: f, topK: k, tokens: s, experts: e)
            let theirs = MoEConfig.capacity(factor: f, topK: k, tokens: s, experts: e)
            #expect(mine == theirs, "f=\(f) k=\(k) S=\(s) E=\(e): reference \(mine), MoEConfig \(theirs)")
          }
        }
      }
    }
  }

  // MARK: Renormalisation

  @Test("renormalisation on: weights sum to 1; off: weights are p", arguments: [true, false])
  func renormalisation(_ renormalize: Bool) throws {
    let config = shape(S: 20, H: 9, D: 5, E: 6, k: 3, capacity: .dropless, renormalize: renormalize)
    let p = try makeProblem("renormalize \(renormalize)", config, seed: freshSeed())
    let r = try runBackend(p)
    checkAgainstReference(p, r)
    let k = config.topK
    for t in 0..<p.tokens {
      let w = (0..<k).map { Double(r.routing.weight[t * k + $0]) }
      let picked = (0..<k).map { p.reference.probabilities[t][Int(r.routing.expert[t * k + $0])] }
      let sum = w.reduce(0, +)
      if renormalize {
        #expect(abs(sum - 1) <= 1e-6, "token \(t): weights \(w) sum to \(sum) \(p.context)")
        let total = picked.reduce(0, +)
        for j in 0..<k { #expect(abs(w[j] - picked[j] / total) <= 1e-6, "token \(t) pick \(j) \(p.context)") }
      } else {
        #expect(sum < 1, "token \(t): raw weights \(w) of 3 of 6 experts sum to \(sum) \(p.context)")
        for j in 0..<k { #expect(abs(w[j] - picked[j]) <= 1e-6, "token \(t) pick \(j): \(w[j]) vs p \(picked[j]) \(p.context)") }
      }
    }
  }

  // MARK: Storage and math

  @Test("tf32 math rounds the expert operands (closer to the tf32 reference than to the fp32 one)")
  func tf32IsApplied() throws {
    let config = shape(S: 24, H: 40, D: 24, E: 4, k: 2, capacity: .dropless, form: .gated, math: .tf32)
    let p = try makeProblem("tf32", config, seed: freshSeed())
    let r = try runBackend(p)
    checkAgainstReference(p, r)
    var fp32 = config
    fp32.math = .fp32
    let plain = Float64Reference.forward(config: fp32, weights: p.weights, input: p.input)
    var toTF32 = 0.0, toFP32 = 0.0
    for i in r.output.indices {
      toTF32 += abs(Double(r.output[i]) - Double(p.reference.output[i]))
      toFP32 += abs(Double(r.output[i]) - Double(plain.output[i]))
    }
    #expect(toTF32 * 10 < toFP32, "Σ|out − tf32 ref| = \(toTF32), Σ|out − fp32 ref| = \(toFP32) \(p.context)")
  }

  /// Hand-made layers whose every value is exact, so that a rounding step done or skipped shows as
  /// an exact difference (the random cases' bounds allow one storage ulp and cannot see it).
  @Test("rounding points, by hand: intermediate and expert outputs are stored values", arguments: [DType.bf16, .fp16])
  func roundingPoints(_ dtype: DType) throws {
    let backend = try CPUBackend(threads: 1)
    // A quarter of an ulp of 1: 1 + quarter rounds to 1 in the dtype, and is exact in fp32.
    let quarter: Float = dtype == .bf16 ? 0x1p-9 : 0x1p-12
    // (1) The intermediate: a = relu(1·1 + quarter) is stored as 1, so y = 64·1 − 64 = 0
    //     (unrounded it would be 64·quarter).
    let one = shape(S: 1, H: 1, D: 1, E: 1, k: 1, activation: .relu, dtype: dtype)
    let w1 = try MoEWeights(hidden: 1, ffn: 1, experts: 1, form: .plain, gate: [1], w1: [1], w2: [64], b1: [quarter], b2: [-64])
    let r1 = try backend.forward(config: one, weights: w1, input: [1])
    #expect(r1.output == [0], "intermediate not rounded to \(dtype) before W2: \(r1.output)")
    #expect(Float64Reference.forward(config: one, weights: w1, input: [1]).output == [0])
    // (2) The expert outputs: y0 = 1·1 + quarter is stored as 1, y1 = −1, weights ½ each (tied gate),
    //     so out = ½ − ½ = 0 (unrounded it would be quarter / 2).
    let two = shape(S: 1, H: 1, D: 1, E: 2, k: 2, activation: .relu, dtype: dtype)
    let w2 = try MoEWeights(hidden: 1, ffn: 1, experts: 2, form: .plain, gate: [1, 1], w1: [1, 1], w2: [1, -1], b1: [0, 0], b2: [quarter, 0])
    let r2 = try backend.forward(config: two, weights: w2, input: [1])
    #expect(r2.routing.expert == [0, 1] && r2.routing.weight == [0.5, 0.5])
    #expect(r2.output == [0], "expert outputs not rounded to \(dtype) before the combine: \(r2.output)")
    #expect(Float64Reference.forward(config: two, weights: w2, input: [1]).output == [0])
    // (3) The gated product is rounded once, after the product: φ(h1) = 1, h3 = 1 + quarter → a = 1.
    let gated = shape(S: 1, H: 1, D: 1, E: 1, k: 1, activation: .relu, form: .gated, dtype: dtype)
    let w3 = try MoEWeights(
      hidden: 1, ffn: 1, experts: 1, form: .gated, gate: [1], w1: [1], w2: [64], w3: [1], b1: [0], b2: [-64], b3: [quarter])
    let r3 = try backend.forward(config: gated, weights: w3, input: [1])
    #expect(r3.output == [0], "gated intermediate not rounded to \(dtype): \(r3.output)")
  }

  @Test("tf32: the gate never uses TF32 (logits 1 and 1 + 2⁻²⁰ stay apart)")
  func tf32Gate() throws {
    let config = shape(S: 1, H: 1, D: 1, E: 2, k: 2, capacity: .dropless, math: .tf32)
    let weights = try MoEWeights(hidden: 1, ffn: 1, experts: 2, form: .plain, gate: [1, 1 + 0x1p-20], w1: [1, 1], w2: [1, 1])
    let r = try CPUBackend(threads: 1).forward(config: config, weights: weights, input: [1])
    #expect(r.routing.expert == [1, 0])
    #expect(r.routing.weight[0] > r.routing.weight[1])
  }

  @Test("the reference's roundings agree with MoECore's (bf16, fp16 ties to even; tf32 ties away; NaN stays NaN)")
  func roundings() {
    let special: [UInt32] = [
      0x3F80_8000, 0x3F81_8000, 0xBF80_8000, 0xBF81_8000, 0x3F80_8001, 0x3F80_7FFF,  // bf16 ties and neighbours
      0x3F80_1000, 0xBF80_1000, 0x3F80_3000, 0x3F80_0FFF,  // tf32 ties (away from zero) and neighbours
      0x7F7F_FFFF, 0xFF7F_FFFF, 0x7F7F_8000, 0x7F80_0000, 0xFF80_0000, 0x7FC0_0000, 0x7F80_0001, 0xFFC1_2345,
      0x0000_0000, 0x8000_0000, 0x0000_0001, 0x0000_8000, 0x0001_8000, 0x007F_FFFF, 0x0080_0000,
    ]
    var rng = SeededGenerator(seed: freshSeed())
    let values = special.map { Float(bitPattern: $0) } + (0..<20000).map { _ in Float(bitPattern: UInt32(truncatingIfNeeded: rng.next())) }
    func same(_ a: Float, _ b: Float) -> Bool { (a.isNaN && b.isNaN) || a.bitPattern == b.bitPattern }
    var bad: [String] = []
    for v in values {
      if !same(Float64Reference.bf16(v), v.roundedToBF16) { bad.append("bf16(\(v.bitPattern.hex)): \(Float64Reference.bf16(v).bitPattern.hex) vs \(v.roundedToBF16.bitPattern.hex)") }
      if !same(Float64Reference.fp16(v), v.roundedToFP16) { bad.append("fp16(\(v.bitPattern.hex))") }
      if !same(Float64Reference.tf32(v), v.roundedToTF32) { bad.append("tf32(\(v.bitPattern.hex)): \(Float64Reference.tf32(v).bitPattern.hex) vs \(v.roundedToTF32.bitPattern.hex)") }
      for d in DType.allCases where !same(Float64Reference.store(v, d), v.rounded(to: d)) { bad.append("\(d)(\(v.bitPattern.hex))") }
    }
    let summary = "\(bad.count) disagreements, first: \(bad.prefix(8))"
    #expect(bad.count == 0, Comment(rawValue: summary))
    // The rules themselves on hand-picked values.
    #expect(Float(bitPattern: 0x3F80_8000).roundedToBF16.bitPattern == 0x3F80_0000)  // tie → even (down)
    #expect(Float(bitPattern: 0x3F81_8000).roundedToBF16.bitPattern == 0x3F82_0000)  // tie → even (up)
    #expect(Float(bitPattern: 0x3F80_1000).roundedToTF32.bitPattern == 0x3F80_2000)  // tie → away
    #expect(Float(bitPattern: 0xBF80_1000).roundedToTF32.bitPattern == 0xBF80_2000)  // tie → away (negative)
    #expect(Float(1 + 0x1p-11).roundedToFP16 == 1)  // tie → even (down)
    #expect(Float(1 + 3 * 0x1p-11).roundedToFP16 == 1 + 0x1p-9)  // tie → even (up)
    #expect(Float.nan.roundedToBF16.isNaN && Float.nan.roundedToFP16.isNaN && Float.nan.roundedToTF32.isNaN)
    #expect(Float(bitPattern: 0x7F80_0001).roundedToBF16.isNaN)  // a NaN whose payload sits in the low bits
  }

  // MARK: Errors

  @Test("forward rejects a bad input length, groups < 1 and an invalid config")
  func forwardErrors() throws {
    let config = shape(S: 4, H: 5, D: 3, E: 3, k: 2)
    let weights = MoEWeights.random(config, seed: 1)
    let backend = try CPUBackend(threads: 1)
    func error(_ body: () throws -> Void) -> ConfigError? {
      do { try body() } catch let e as ConfigError { return e } catch { return nil }
      return nil
    }
    let input = [Float](repeating: 0.5, count: 4 * 5)
    #expect(error { _ = try backend.forward(config: config, weights: weights, input: Array(input.dropLast())) }?.field == "input")
    #expect(error { _ = try backend.forward(config: config, weights: weights, input: input, groups: 2) }?.field == "input")
    #expect(error { _ = try backend.forward(config: config, weights: weights, input: input, groups: 0) }?.field == "gpus")
    var bad = config
    bad.topK = 0
    #expect(error { _ = try backend.forward(config: bad, weights: weights, input: input) }?.field == "topk")
    bad = config
    bad.hidden = 6
    #expect(error { _ = try backend.forward(config: bad, weights: weights, input: input + [0, 0, 0, 0]) }?.field == "hidden")
  }
}

extension UInt32 {
  var hex: String { "0x" + String(self, radix: 16) }
}

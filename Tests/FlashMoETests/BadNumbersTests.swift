import Foundation
import Testing
@testable import FlashMoE
@testable import flashmoe

/// NaN and ±∞ in tokens or weights (issue #7 §2): IEEE results in the affected outputs only,
/// routing always inside [0, E), deterministic picks for all-NaN logits, and a flag in `run --json`.
/// Dropless layers, so that a bad token cannot change which other pairs are kept: every token the
/// bad value cannot reach must then equal the clean run bit for bit.
@Suite struct BadNumbersTests {
  static let config = MoEConfig(
    tokens: 24, hidden: 32, ffn: 48, experts: 6, topK: 2, capacity: .dropless, activation: .gelu, dtype: .fp32)

  static func run(_ weights: MoEWeights, _ input: [Float]) throws -> MoELayer.Output {
    try MoELayer(config: config, weights: weights, backend: .cpu, threads: 2).forward(input)
  }

  static func row(_ values: [Float], _ t: Int) -> ArraySlice<Float> {
    values[(t * config.hidden)..<((t + 1) * config.hidden)]
  }

  static func routingInRange(_ routing: Routing) -> Bool {
    routing.expert.allSatisfy { $0 >= 0 && Int($0) < config.experts }
  }

  @Test("counts NaN, +inf, -inf and the rows holding them", arguments: [
    ([Float](), 4, 0, 0, 0, 0),
    ([1, 2, 3, 4], 2, 0, 0, 0, 0),
    ([.nan, 1, .infinity, 2], 2, 1, 1, 0, 2),
    ([.nan, .nan, 1, 1, -.infinity, 0], 2, 2, 0, 1, 2),
    ([1, 2, .infinity, -.infinity], 4, 0, 1, 1, 1),
  ] as [([Float], Int, Int, Int, Int, Int)])
  func counts(values: [Float], width: Int, nan: Int, plus: Int, minus: Int, rows: Int) {
    let n = NonFinite(values, rowWidth: width)
    #expect(n.nan == nan && n.positiveInfinity == plus && n.negativeInfinity == minus && n.rows == rows, "\(n)")
    #expect(n.isEmpty == (nan + plus + minus == 0))
  }

  @Test("a token holding NaN, +inf or -inf: its own output is non-finite, every other token as without it",
        arguments: [Float.nan, .infinity, -.infinity])
  func badToken(value: Float) throws {
    let weights = MoEWeights.random(Self.config, seed: 41)
    var rng = SeededGenerator(seed: 42)
    let clean = rng.normals(Self.config.tokens * Self.config.hidden)
    var input = clean
    input[7 * Self.config.hidden + 3] = value
    let good = try Self.run(weights, clean), bad = try Self.run(weights, input)
    #expect(Self.routingInRange(bad.routing))
    #expect(Self.row(bad.values, 7).contains { !$0.isFinite })
    for t in 0..<Self.config.tokens where t != 7 {
      #expect(Self.row(bad.values, t).elementsEqual(Self.row(good.values, t)) { $0.bitPattern == $1.bitPattern }, "token \(t)")
    }
  }

  @Test("all-NaN logits (a NaN gate row) route every token to experts 0 … k−1, deterministically")
  func nanGate() throws {
    var weights = MoEWeights.random(Self.config, seed: 43)
    weights.gate[2 * Self.config.hidden] = .nan  // expert 2's logit is NaN for every token: softmax is all NaN
    var rng = SeededGenerator(seed: 44)
    let input = rng.normals(Self.config.tokens * Self.config.hidden)
    let a = try Self.run(weights, input), b = try Self.run(weights, input)
    #expect(a.routing.expert == b.routing.expert)
    let k = Self.config.topK
    for t in 0..<Self.config.tokens {
      #expect((0..<k).map { Int(a.routing.expert[t * k + $0]) } == Array(0..<k), "token \(t)")
    }
    #expect(a.values.allSatisfy { $0.isNaN })  // NaN combine weights
  }

  @Test("NaN in one expert's W1: exactly the tokens with a pick on that expert are non-finite")
  func nanExpert() throws {
    let clean = MoEWeights.random(Self.config, seed: 45)
    var weights = clean
    let (h, d) = (Self.config.hidden, Self.config.ffn)
    weights.w1[3 * d * h + 5] = .nan  // expert 3, row 0, column 5
    var rng = SeededGenerator(seed: 46)
    let input = rng.normals(Self.config.tokens * h)
    let good = try Self.run(clean, input), bad = try Self.run(weights, input)
    #expect(bad.routing.expert == good.routing.expert)
    let k = Self.config.topK
    var reached = 0
    for t in 0..<Self.config.tokens {
      let picksThree = (0..<k).contains { bad.routing.expert[t * k + $0] == 3 }
      if picksThree {
        reached += 1
        #expect(Self.row(bad.values, t).allSatisfy { $0.isNaN }, "token \(t)")
      } else {
        #expect(Self.row(bad.values, t).elementsEqual(Self.row(good.values, t)) { $0.bitPattern == $1.bitPattern }, "token \(t)")
      }
    }
    #expect(reached > 0, "some token must pick expert 3 for this test to mean anything")
    #expect(weights.nonFinite.nan == 1 && weights.nonFinite.rows == 1)
  }

  @Test("run --json flags non-finite input, weights and output")
  func jsonFlag() throws {
    let dir = try temporaryDirectory()
    defer { try? FileManager.default.removeItem(atPath: dir) }
    var rng = SeededGenerator(seed: 47)
    var input = rng.normals(8 * 16)
    input[2 * 16] = .infinity
    input[5 * 16 + 1] = .nan
    try NPY.write(input, shape: [8, 16], dtype: .f4, to: dir + "/x.npy")
    let arguments = ["run", "--input", dir + "/x.npy", "--hidden", "16", "--ffn", "16", "--experts", "4", "--topk", "2", "--dropless", "--backend", "cpu", "--quiet"]
    let command = try #require(try FlashMoECommand.parseAsRoot(arguments) as? Run)
    let prepared = try command.prepare()
    let layer = try MoELayer(config: prepared.config, weights: prepared.weights, backend: .cpu, threads: 1)
    let report = RunReport(layer: layer, result: try layer.forward(prepared.input), output: nil, input: prepared.input)
    #expect(!report.nonFinite.allFinite)
    #expect(report.nonFinite.input == NonFinite(input, rowWidth: 16))
    #expect(report.nonFinite.input.rows == 2 && report.nonFinite.weights.isEmpty)
    #expect(report.nonFinite.output.rows >= 2)
    let json = try jsonString(report)
    #expect(json.contains("\"allFinite\" : false") && json.contains("\"positiveInfinity\" : 1"), "\(json)")
    #expect(json.contains("\"NaN\""), "a NaN checksum is written as a string, not refused: \(json)")
    #expect(report.text.contains("non-finite values"))
  }
}

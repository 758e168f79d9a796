import Foundation
import Testing

@testable import MoECore

private let gib = Double(1 << 30)

private func config(
  tokens: Int, hidden: Int = 64, ffn: Int = 32, experts: Int, topK: Int,
  capacity: Capacity = .factor(1.0), form: ExpertForm = .plain, biases: Bool = false, dtype: DType = .fp32
) -> MoEConfig {
  MoEConfig(
    tokens: tokens, hidden: hidden, ffn: ffn, experts: experts, topK: topK, capacity: capacity,
    expertForm: form, biases: biases, dtype: dtype)
}

@Suite struct MemoryPlanTests {
  // MARK: Table 3

  /// Rows whose published ST the formula reproduces, with our exact byte count.
  @Test(arguments: [
    (PaperModel.moonlight, 268_435_456),  // 4 · 64 · 128 · 2048 · 4
    (.grok1, 805_306_368),  // 4 · 8 · 1024 · 6144 · 4
    (.arctic, 1_879_048_192),  // 4 · 128 · 128 (32 padded) · 7168 · 4
    (.qwen3_235b, 3_221_225_472),  // 4 · 128 · 384 (320 padded) · 4096 · 4
    (.mixtral8x7b, 2_147_483_648),  // 4 · 8 · 4096 · 4096 · 4
  ])
  func paperSymmetricTensorAgrees(model: PaperModel, bytes: Int) {
    #expect(model.tablePlan.symmetricTensorBytes == bytes)
    #expect(abs(model.figures.symmetricTensorGiB - model.published.symmetricTensorGB) <= 0.005)
    #expect(model.symmetricTensorAgreement == .yes)
  }

  /// DeepSeek-V3: S = 160K, E = 256 gives C = 640 (already a multiple of 128), so ST = 4 · 160K · 7168 · 4 B
  /// = 17.5 GiB, not the printed 1.50 (docs/MEMORY.md).
  @Test func deepseekSymmetricTensorDisagrees() {
    let model = PaperModel.deepseekV3
    #expect(model.tablePlan.paddedCapacity == 640)
    #expect(model.tablePlan.symmetricTensorBytes == 18_790_481_920)
    #expect(model.figures.symmetricTensorGiB == 17.5)
    #expect(model.symmetricTensorAgreement == .no)
  }

  @Test(arguments: [
    (PaperModel.moonlight, 128, 128), (.grok1, 1024, 1024), (.arctic, 32, 128),
    (.qwen3_235b, 320, 384), (.mixtral8x7b, 4096, 4096), (.deepseekV3, 640, 640),
  ])
  func paperCapacities(model: PaperModel, capacity: Int, padded: Int) {
    let plan = model.tablePlan
    #expect(plan.capacity == capacity)
    #expect(plan.paddedCapacity == padded)
    // Size(L) = 4 · E · C' · H · 4 B.
    #expect(plan.symmetricTensorBytes == 4 * model.experts * padded * model.hidden * 4)
  }

  /// The Model column is params × 4 B in GiB, truncated: 59.6 prints as 59.
  @Test(arguments: PaperModel.allCases)
  func paperModelColumnAgrees(model: PaperModel) {
    #expect(model.modelAgreement == .yes)
    #expect(model.figures.modelGiB == Double(model.parameters) * 4 / gib)
  }

  /// Overhead = (ST + intermediate) / Model, rounded to 2 decimals: equal for Moonlight and Grok-1,
  /// one hundredth below for Arctic, Qwen3 and Mixtral, far off for DeepSeek-V3 (its ST).
  @Test(arguments: [
    (PaperModel.moonlight, 49.0, PaperModel.Agreement.yes),
    (.grok1, 15.0, .yes),
    (.arctic, 11.0, .nearly),
    (.qwen3_235b, 37.0, .nearly),
    (.mixtral8x7b, 214.0, .nearly),
    (.deepseekV3, 73.0, .no),
  ])
  func paperOverhead(model: PaperModel, hundredths: Double, agreement: PaperModel.Agreement) {
    #expect((model.figures.overheadPercent * 100).rounded() == hundredths)
    #expect(model.overheadAgreement == agreement)
  }

  /// With the printed ST = 1.50, DeepSeek-V3's printed overhead 0.11 is reproduced: the Overhead column
  /// was computed from the printed ST.
  @Test func deepseekOverheadFollowsPrintedST() {
    let model = PaperModel.deepseekV3
    #expect(model.figures.intermediateGiB == 1.25)
    let percent = 100 * (model.published.symmetricTensorGB + model.figures.intermediateGiB) / model.figures.modelGiB
    #expect((percent * 100).rounded() == (model.published.overheadPercent * 100).rounded())
  }

  /// Overhead is not ST / Model: that reading matches no row.
  @Test(arguments: PaperModel.allCases)
  func overheadIsNotSymmetricTensorOverModel(model: PaperModel) {
    let stOnly = (model.figures.symmetricTensorPercent * 100).rounded()
    #expect(stOnly != (model.published.overheadPercent * 100).rounded())
  }

  @Test func paperTableRenders() {
    let text = MemoryPlan.renderPaperTable()
    for model in PaperModel.allCases { #expect(text.contains(model.displayName)) }
    #expect(text.contains("17.50"))
    #expect(text.contains("yes/yes/yes"))
    let tableLines = text.split(separator: "\n").dropFirst(1).prefix(7).map(String.init)
    // Every row's last column starts where the header's does.
    let start = tableLines[0].count - "agree ST/Model/Ovh".count
    for line in tableLines.dropFirst() {
      let last = line.dropFirst(start)
      #expect(last.hasPrefix("yes/") || last.hasPrefix("no/"), "columns are aligned:\n\(text)")
      #expect(line.dropFirst(start - 1).first == " ")
    }
  }

  // MARK: Symmetric tensor from first principles

  struct Case: Sendable, CustomTestStringConvertible {
    let tokens, hidden, experts, topK, gpus, tileM: Int
    let capacity: Capacity
    let dtype: DType
    let c, cPadded, bytes: Int
    var testDescription: String { "S=\(tokens) H=\(hidden) E=\(experts) k=\(topK) P=\(gpus) bM=\(tileM) \(capacity) \(dtype)" }
  }

  @Test(arguments: [
    // C = 2 · 256 / 4 = 128; L = P · 2 · 2 · E_local · C' · H · 4 B, the same for P = 1 and P = 2.
    Case(tokens: 256, hidden: 64, experts: 4, topK: 2, gpus: 1, tileM: 128, capacity: .factor(1), dtype: .fp32,
         c: 128, cPadded: 128, bytes: 1 * 2 * 2 * 4 * 128 * 64 * 4),
    Case(tokens: 256, hidden: 64, experts: 4, topK: 2, gpus: 2, tileM: 128, capacity: .factor(1), dtype: .fp32,
         c: 128, cPadded: 128, bytes: 2 * 2 * 2 * 2 * 128 * 64 * 4),
    // C = ⌈2 · 100 / 8⌉ = 25, padded to 128 (or 32 with bM = 16); bf16.
    Case(tokens: 100, hidden: 32, experts: 8, topK: 2, gpus: 2, tileM: 128, capacity: .factor(1), dtype: .bf16,
         c: 25, cPadded: 128, bytes: 2 * 2 * 2 * 4 * 128 * 32 * 2),
    Case(tokens: 100, hidden: 32, experts: 8, topK: 2, gpus: 2, tileM: 16, capacity: .factor(1), dtype: .bf16,
         c: 25, cPadded: 32, bytes: 2 * 2 * 2 * 4 * 32 * 32 * 2),
    // C = ⌈1.25 · 2 · 1000 / 8⌉ = 313 → 384; P = 4, E_local = 2.
    Case(tokens: 1000, hidden: 16, experts: 8, topK: 2, gpus: 4, tileM: 128, capacity: .factor(1.25), dtype: .fp16,
         c: 313, cPadded: 384, bytes: 4 * 2 * 2 * 2 * 384 * 16 * 2),
    // A factor giving C > S is capped at S: ⌈8 · 2 · 64 / 2⌉ = 512 → 64 → 128.
    Case(tokens: 64, hidden: 8, experts: 2, topK: 2, gpus: 1, tileM: 128, capacity: .factor(8), dtype: .fp32,
         c: 64, cPadded: 128, bytes: 1 * 2 * 2 * 2 * 128 * 8 * 4),
    // Dropless: C = S per source.
    Case(tokens: 300, hidden: 16, experts: 8, topK: 2, gpus: 2, tileM: 128, capacity: .dropless, dtype: .fp32,
         c: 300, cPadded: 384, bytes: 2 * 2 * 2 * 4 * 384 * 16 * 4),
    Case(tokens: 256, hidden: 16, experts: 4, topK: 4, gpus: 4, tileM: 128, capacity: .dropless, dtype: .bf16,
         c: 256, cPadded: 256, bytes: 4 * 2 * 2 * 1 * 256 * 16 * 2),
  ])
  func symmetricTensor(_ t: Case) throws {
    let plan = try MemoryPlan(
      config: config(tokens: t.tokens, hidden: t.hidden, experts: t.experts, topK: t.topK, capacity: t.capacity, dtype: t.dtype),
      gpus: t.gpus, tileM: t.tileM)
    #expect(plan.localExperts == t.experts / t.gpus)
    #expect(plan.capacity == t.c)
    #expect(plan.paddedCapacity == t.cPadded)
    #expect(plan.symmetricTensorBytes == t.bytes)
    // P · E_local = E, so the size does not depend on P.
    #expect(plan.symmetricTensorBytes == 4 * t.experts * t.cPadded * t.hidden * t.dtype.size)
  }

  /// C' = C rounded up to a multiple of bM (k = 1, E = 1, so C = S).
  @Test(arguments: [(1, 128, 128), (128, 128, 128), (129, 128, 256), (300, 16, 304), (5, 1, 5), (64, 64, 64), (65, 64, 128)])
  func capacityRoundsUpToTile(c: Int, tileM: Int, padded: Int) throws {
    let plan = try MemoryPlan(config: config(tokens: c, experts: 1, topK: 1), gpus: 1, tileM: tileM)
    #expect(plan.capacity == c)
    #expect(plan.paddedCapacity == padded)
    #expect(plan.paddedCapacity % tileM == 0)
    #expect(plan.tilesPerCell == padded / tileM)
  }

  /// The paper's two cases (k = 1, f = 1): Size(L) = 4 · Size(T) when S/E ≥ bM (and divides evenly),
  /// and 4 · (bM · E / S) · Size(T) otherwise.
  @Test(arguments: [(8192, 64, 2048), (4096, 128, 512), (1024, 32, 64)])
  func paperSizeFormula(tokens: Int, experts: Int, hidden: Int) throws {
    let plan = try MemoryPlan(config: config(tokens: tokens, hidden: hidden, experts: experts, topK: 1), gpus: 1)
    let sizeT = tokens * hidden * 4
    if tokens / experts >= 128 {
      #expect(plan.symmetricTensorBytes == 4 * sizeT)
    } else {
      #expect(plan.symmetricTensorBytes * tokens == 4 * 128 * experts * sizeT)
    }
  }

  /// Dropless: a source whose S tokens all rank expert 0 first sends S pairs to it; C = S holds them.
  @Test(arguments: [1, 2, 4])
  func droplessHoldsWorstCase(topK: Int) throws {
    let (s, e) = (200, 8)
    let plan = try MemoryPlan(config: config(tokens: s, experts: e, topK: topK, capacity: .dropless), gpus: 2)
    #expect(plan.capacity == s)
    #expect(plan.paddedCapacity == 256)
    var logits = [Float](repeating: 0, count: s * e)
    for i in 0..<s { for j in 0..<e { logits[i * e + j] = Float(e - j) } }  // every token: 0, 1, 2, ...
    let routing = Router.route(logits: logits, tokens: s, experts: e, topK: topK, renormalize: true, capacity: nil)
    let perExpert = routing.pairsByExpert().map(\.count)
    #expect(perExpert.max() == s)
    #expect(routing.slot.max().map(Int.init)! < plan.capacity)
  }

  // MARK: The other lines

  @Test func otherLines() throws {
    let c = config(tokens: 100, hidden: 8, ffn: 16, experts: 8, topK: 3, form: .plain, biases: true)
    let plan = try MemoryPlan(config: c, gpus: 2, tileM: 16)
    // C = ⌈3 · 100 / 8⌉ = 38 → 48, T = 3.
    #expect(plan.paddedCapacity == 48 && plan.tilesPerCell == 3)
    #expect(plan.expertWeightBytes == 4 * (2 * 16 * 8 + 16 + 8) * 4)
    #expect(plan.gateWeightBytes == 8 * 8 * 4)
    #expect(plan.inputBytes == 100 * 8 * 4)
    #expect(plan.outputBytes == 100 * 8 * 4)
    #expect(plan.intermediateBytes == 2 * 4 * 48 * 16 * 4)
    #expect(plan.signalBytes == 2 * 2 * 4 * 3 * 8)
    #expect(plan.routingBytes == 100 * 3 * 8)
    #expect(plan.items.map(\.bytes).reduce(0, +) == plan.totalBytes)
    #expect(plan.totalBytes == 4480 + 256 + 3200 + 3200 + 24576 + 49152 + 384 + 2400)

    let gated = try MemoryPlan(config: config(tokens: 100, hidden: 8, ffn: 16, experts: 8, topK: 3, form: .gated, dtype: .bf16), gpus: 2)
    #expect(gated.expertWeightBytes == 4 * 3 * 16 * 8 * 2)
    let gatedBiases = try MemoryPlan(
      config: config(tokens: 100, hidden: 8, ffn: 16, experts: 8, topK: 3, form: .gated, biases: true, dtype: .bf16), gpus: 2)
    #expect(gatedBiases.expertWeightBytes == 4 * (3 * 16 * 8 + 2 * 16 + 8) * 2)
  }

  /// Every row of L has one offset, every incoming tile one signal: the layout is a bijection.
  @Test(arguments: [(1, 128), (2, 16), (4, 8)])
  func layoutIsBijective(gpus: Int, tileM: Int) throws {
    let plan = try MemoryPlan(config: config(tokens: 40, hidden: 3, experts: 8, topK: 2), gpus: gpus, tileM: tileM)
    var offsets = Set<Int>()
    for p in 0..<gpus { for r in 0..<2 { for b in 0..<2 { for e in 0..<plan.localExperts { for s in 0..<plan.paddedCapacity {
      offsets.insert(plan.symmetricOffset(peer: p, round: r, buffer: b, localExpert: e, slot: s))
    } } } } }
    #expect(offsets == Set(stride(from: 0, to: plan.symmetricTensorElements, by: 3)))
    var signals = Set<Int>()
    for p in 0..<gpus { for r in 0..<2 { for e in 0..<plan.localExperts { for t in 0..<plan.tilesPerCell {
      signals.insert(plan.signalIndex(peer: p, round: r, localExpert: e, tile: t))
    } } } }
    #expect(signals == Set(0..<(plan.signalBytes / 8)))
    #expect(plan.destinationIndex(expert: 7, slot: plan.paddedCapacity - 1) == Int32(8 * plan.paddedCapacity - 1))
    #expect(MemoryPlan.signalValue(epoch: 3, rows: 17) == 3 << 32 | 17)
  }

  @Test(arguments: [
    (1, 0, 128, "gpus"), (8, 3, 128, "gpus"), (8, 2, 0, "tile-m"), (0, 1, 128, "experts"),
  ])
  func rejectsInvalid(experts: Int, gpus: Int, tileM: Int, field: String) {
    #expect {
      _ = try MemoryPlan(config: config(tokens: 16, experts: experts, topK: 1), gpus: gpus, tileM: tileM)
    } throws: { ($0 as? ConfigError)?.field == field }
  }

  @Test func rejectsDestinationIndexOverflow() {
    // E · C' = 65536 · 65536 > Int32.max with dropless S = 65536.
    #expect(throws: ConfigError.self) {
      _ = try MemoryPlan(config: config(tokens: 65536, hidden: 1, ffn: 1, experts: 65536, topK: 1, capacity: .dropless), gpus: 1)
    }
  }

  @Test func codableRoundTrip() throws {
    let plan = try MemoryPlan(config: config(tokens: 100, experts: 8, topK: 2, dtype: .bf16), gpus: 2, tileM: 64)
    let data = try JSONEncoder().encode(plan)
    let json = String(decoding: data, as: UTF8.self)
    #expect(json.contains("\"symmetricTensorBytes\":\(plan.symmetricTensorBytes)"))
    #expect(try JSONDecoder().decode(MemoryPlan.self, from: data) == plan)
  }

  @Test(arguments: [(0, "0 B"), (512, "512 B"), (1536, "1.50 KiB"), (1_879_048_192, "1.75 GiB"), (3 << 20, "3.00 MiB")])
  func formatBytes(bytes: Int, text: String) {
    #expect(MemoryPlan.formatBytes(bytes) == text)
  }

  @Test func rendersPlan() {
    let text = PaperModel.arctic.tablePlan.render()
    #expect(text.contains("symmetric tensor L"))
    #expect(text.contains("1.75 GiB"))
    #expect(text.contains("C' = 128"))
    #expect(text.contains("total"))
  }
}

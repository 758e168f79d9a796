import ArgumentParser
import FlashMoE

struct Plan: ParsableCommand {
  static let configuration = CommandConfiguration(
    abstract: "Memory per GPU: weights, activations, and the symmetric tensor of §3.2 / Appendix D.",
    discussion: """
      flashmoe plan --tokens 8192 --hidden 2048 --ffn 2048 --experts 32 --gpus 2
      flashmoe plan --model qwen3-235b      one row of the paper's Table 3, ours beside it
      flashmoe plan --paper-table           all six rows (docs/MEMORY.md explains where they differ)
      """)

  @OptionGroup var shape: ShapeOptions
  @OptionGroup var layer: LayerOptions
  @OptionGroup var display: DisplayOptions
  @Option(help: "GPUs the experts are spread over (P).") var gpus: Int = 1
  @Option(help: "Tile height bM that expert capacity is padded to (§3.2.1).") var tileM: Int = 128
  @Option(help: "One of the paper's Table 3 models: \(PaperModel.allCases.map(\.rawValue).joined(separator: ", ")).")
  var model: String?
  @Flag(help: "All six Table 3 models, ours next to the paper's figures.") var paperTable = false

  func validate() throws {
    if let model, PaperModel(rawValue: model.lowercased()) == nil {
      throw ConfigError(field: "model", value: "'\(model)'", expected: "one of \(PaperModel.allCases.map(\.rawValue).joined(separator: ", "))")
    }
    if model == nil && !paperTable { _ = try plan() }
  }

  func plan() throws -> MemoryPlan {
    if let model, let paper = PaperModel(rawValue: model.lowercased()) { return paper.tablePlan }
    let config = try layer.config(
      tokens: shape.tokens, hidden: shape.hidden, ffn: shape.ffn, experts: shape.experts, topK: shape.topk)
    return try MemoryPlan(config: config, gpus: gpus, tileM: tileM)
  }

  func run() throws {
    if paperTable {
      if display.json {
        print(try jsonString(PaperModel.allCases.map { PaperRow(model: $0) }))
      } else {
        print(MemoryPlan.renderPaperTable())
      }
      return
    }
    let plan = try plan()
    if display.json {
      print(try jsonString(PlanReport(plan: plan, paper: model.flatMap { PaperModel(rawValue: $0.lowercased()) })))
      return
    }
    print(plan.render())
    if let model, let paper = PaperModel(rawValue: model.lowercased()) {
      let f = paper.figures, p = paper.published
      print("")
      print("Table 3, \(paper.displayName): symmetric tensor \(formatFixed(f.symmetricTensorGiB, 2)) GiB (paper \(formatFixed(p.symmetricTensorGB, 2))), "
        + "model \(formatFixed(f.modelGiB, 0)) GiB (paper \(formatFixed(p.modelGB, 0))), "
        + "overhead \(formatFixed(f.overheadPercent, 2)) % (paper \(formatFixed(p.overheadPercent, 2))): \(paper.symmetricTensorAgreement.rawValue)")
      print("docs/MEMORY.md explains each row.")
    }
  }
}

struct PlanReport: Encodable {
  let plan: MemoryPlan
  let items: [MemoryPlan.Item]
  let totalBytes: Int
  let paper: PaperRow?

  init(plan: MemoryPlan, paper: PaperModel?) {
    self.plan = plan
    items = plan.items
    totalBytes = plan.totalBytes
    self.paper = paper.map(PaperRow.init)
  }
}

struct PaperRow: Encodable {
  let model: String
  let ours: PaperModel.Figures
  let paper: PaperModel.Published
  let symmetricTensorAgreement: String

  init(model: PaperModel) {
    self.model = model.rawValue
    ours = model.figures
    paper = model.published
    symmetricTensorAgreement = model.symmetricTensorAgreement.rawValue
  }
}

/// The six models of FlashDMoE Table 3 (Appendix D, "Memory overhead of FlashMoE", bM = 128,
/// Size(T) = Tokens × 4 KB), with the table's shapes and published figures, and our figures
/// computed with `MemoryPlan` the way the table computes them. docs/MEMORY.md discusses each row.
public enum PaperModel: String, CaseIterable, Sendable, Codable {
  case moonlight
  case grok1
  case arctic
  case qwen3_235b = "qwen3-235b"
  case mixtral8x7b = "mixtral-8x7b"
  case deepseekV3 = "deepseek-v3"

  /// The figures Table 3 prints for a row.
  public struct Published: Sendable, Codable, Equatable {
    /// ST (GB): the symmetric tensor.
    public let symmetricTensorGB: Double
    /// Model (GB).
    public let modelGB: Double
    /// Overhead (%).
    public let overheadPercent: Double
  }

  /// Our figures for a row, in GiB (the table's "GB" are binary gigabytes, see docs/MEMORY.md).
  public struct Figures: Sendable, Codable, Equatable {
    /// Size(L) = 4 · E · C' · H · 4 B with C' = ⌈S / E⌉ rounded up to a multiple of 128.
    public let symmetricTensorGiB: Double
    /// params × 4 B.
    public let modelGiB: Double
    /// The expert intermediate E · C' · I · 4 B (`MemoryPlan.intermediateBytes`).
    public let intermediateGiB: Double
    /// 100 · (ST + intermediate) / Model: the definition that reproduces the table's Overhead column.
    public let overheadPercent: Double
    /// 100 · ST / Model: what "ST accounts for x% additional memory" would mean literally.
    public let symmetricTensorPercent: Double
  }

  /// How one of our figures compares with the published one.
  public enum Agreement: String, Sendable, Codable {
    /// Equal at the table's printed precision.
    case yes
    /// One unit off in the table's last printed digit.
    case nearly
    case no
  }

  public var displayName: String {
    switch self {
    case .moonlight: return "Moonlight-16B-A3B"
    case .grok1: return "Grok-1"
    case .arctic: return "Snowflake-Arctic"
    case .qwen3_235b: return "Qwen3-235B-A22B"
    case .mixtral8x7b: return "Mixtral 8x7B"
    case .deepseekV3: return "DeepSeek-V3"
    }
  }

  /// Params, as the table prints it ("16B" is taken as 16 · 10⁹).
  public var parameters: Int {
    switch self {
    case .moonlight: return 16_000_000_000
    case .grok1: return 314_000_000_000
    case .arctic: return 479_000_000_000
    case .qwen3_235b: return 235_000_000_000
    case .mixtral8x7b: return 47_000_000_000
    case .deepseekV3: return 685_000_000_000
    }
  }

  /// S, the table's "8K" read as 8 · 1024 (every K in the table is 1024).
  public var tokens: Int {
    switch self {
    case .moonlight, .grok1: return 8 * 1024
    case .arctic: return 4 * 1024
    case .qwen3_235b: return 40 * 1024
    case .mixtral8x7b: return 32 * 1024
    case .deepseekV3: return 160 * 1024
    }
  }

  /// E.
  public var experts: Int {
    switch self {
    case .moonlight: return 64
    case .grok1, .mixtral8x7b: return 8
    case .arctic, .qwen3_235b: return 128
    case .deepseekV3: return 256
    }
  }

  /// H (the table prints 2K, 6K, 7K, 4K, 4K, 7K; 7K is the models' 7168).
  public var hidden: Int {
    switch self {
    case .moonlight: return 2048
    case .grok1: return 6144
    case .arctic, .deepseekV3: return 7168
    case .qwen3_235b, .mixtral8x7b: return 4096
    }
  }

  /// I, the expert FFN width (the table prints 1.38K, 32K, 4.75K, 1.5K, 14K, 2K).
  public var ffn: Int {
    switch self {
    case .moonlight: return 1408
    case .grok1: return 32768
    case .arctic: return 4864
    case .qwen3_235b: return 1536
    case .mixtral8x7b: return 14336
    case .deepseekV3: return 2048
    }
  }

  public var published: Published {
    switch self {
    case .moonlight: return Published(symmetricTensorGB: 0.25, modelGB: 59, overheadPercent: 0.49)
    case .grok1: return Published(symmetricTensorGB: 0.75, modelGB: 1169, overheadPercent: 0.15)
    case .arctic: return Published(symmetricTensorGB: 1.75, modelGB: 1784, overheadPercent: 0.12)
    case .qwen3_235b: return Published(symmetricTensorGB: 3.00, modelGB: 875, overheadPercent: 0.38)
    case .mixtral8x7b: return Published(symmetricTensorGB: 2.00, modelGB: 175, overheadPercent: 2.15)
    case .deepseekV3: return Published(symmetricTensorGB: 1.50, modelGB: 2551, overheadPercent: 0.11)
    }
  }

  /// The layer as Table 3 sizes it: fp32 tokens (H · 4 bytes each), one GPU, and C = ⌈S / E⌉
  /// (capacity factor 1 with k = 1: the table has no k factor). All six models use gated experts
  /// without biases; that only affects the weight lines of the plan, not the table's figures.
  public var tableConfig: MoEConfig {
    MoEConfig(
      tokens: tokens, hidden: hidden, ffn: ffn, experts: experts, topK: 1,
      capacity: .factor(1.0), activation: self == .grok1 ? .gelu : .silu,
      expertForm: .gated, biases: false, dtype: .fp32)
  }

  /// `tableConfig` planned on one GPU with bM = 128 (Size(L) does not depend on P).
  public var tablePlan: MemoryPlan {
    // The table's shapes are valid by construction.
    try! MemoryPlan(config: tableConfig, gpus: 1, tileM: 128)
  }

  /// Our figures for this row.
  public var figures: Figures {
    let plan = tablePlan
    let gib = Double(1 << 30)
    let st = Double(plan.symmetricTensorBytes) / gib
    let model = Double(parameters) * 4 / gib
    let intermediate = Double(plan.intermediateBytes) / gib
    return Figures(
      symmetricTensorGiB: st, modelGiB: model, intermediateGiB: intermediate,
      overheadPercent: 100 * (st + intermediate) / model, symmetricTensorPercent: 100 * st / model)
  }

  /// ST: equal when our value rounds to the printed one at two decimals.
  public var symmetricTensorAgreement: Agreement {
    Self.compare(figures.symmetricTensorGiB, published.symmetricTensorGB, scale: 100)
  }

  /// Model: the table prints params × 4 B in GiB truncated to an integer (59.6 → 59).
  public var modelAgreement: Agreement {
    figures.modelGiB.rounded(.down) == published.modelGB ? .yes : .no
  }

  /// Overhead: equal at two decimals, or one hundredth of a percentage point off.
  public var overheadAgreement: Agreement {
    Self.compare(figures.overheadPercent, published.overheadPercent, scale: 100)
  }

  static func compare(_ ours: Double, _ theirs: Double, scale: Double) -> Agreement {
    let a = (ours * scale).rounded(), b = (theirs * scale).rounded()
    if a == b { return .yes }
    return abs(a - b) <= 1 ? .nearly : .no
  }
}

extension MemoryPlan {
  /// Table 3 of the paper, our figures next to the published ones, with notes.
  public static func renderPaperTable() -> String {
    var rows = [[
      "model", "S", "E", "H", "I", "ST ours", "ST paper", "Model ours", "Model paper",
      "Ovh ours", "Ovh paper", "agree ST/Model/Ovh",
    ]]
    for model in PaperModel.allCases {
      let ours = model.figures, paper = model.published
      rows.append([
        model.displayName, String(model.tokens), String(model.experts), String(model.hidden), String(model.ffn),
        fixed(ours.symmetricTensorGiB, decimals: 2), fixed(paper.symmetricTensorGB, decimals: 2),
        fixed(ours.modelGiB, decimals: 2), fixed(paper.modelGB, decimals: 0),
        fixed(ours.overheadPercent, decimals: 4), fixed(paper.overheadPercent, decimals: 2),
        "\(model.symmetricTensorAgreement.rawValue)/\(model.modelAgreement.rawValue)/\(model.overheadAgreement.rawValue)",
      ])
    }
    var lines = ["FlashDMoE Table 3 (bM = 128, fp32 tokens): ours vs paper; sizes in GiB, overhead in %", ""]
    lines += alignedRows(rows, rightAligned: Set(1...10))
    let deepseek = PaperModel.deepseekV3
    let withPaperST = 100 * (deepseek.published.symmetricTensorGB + deepseek.figures.intermediateGiB)
      / deepseek.figures.modelGiB
    lines += [
      "",
      "ST = 4 · E · C' · H · 4 B, C' = ⌈S/E⌉ rounded up to a multiple of 128 (no k factor).",
      "Model = params × 4 B; the paper truncates it to whole GiB.",
      "Ovh = (ST + E · C' · I · 4 B) / Model: the intermediate buffer is counted, ST alone is not the column.",
      "nearly = one unit off in the last printed digit.",
      "DeepSeek-V3: S = 160K, H = 7168 give ST = 17.50 GiB; the printed 1.50 matches no shape "
        + "(likely a dropped digit). With the printed 1.50, Ovh = \(fixed(withPaperST, decimals: 4))%, as printed.",
    ]
    return lines.joined(separator: "\n") + "\n"
  }
}

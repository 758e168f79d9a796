import MoECore

/// The sizes a suite sweeps: the paper's §4 grid, or a reduced one that a CPU finishes in seconds.
///
/// Every sweep holds the other sizes at a base value, as the paper's figures do: tokens per GPU
/// at `baseExperts` experts (Figure 8), experts at `expertsTokens` tokens (Figure 12), GPUs at
/// `scalingTokens` tokens per GPU and `baseExperts` experts (Figures 10 and 11).
public struct SuiteGrid: Codable, Equatable, Sendable {
  /// `paper` or `small`; `small` is labelled as such on every chart and table.
  public var name: String
  public var hidden: Int
  public var ffn: Int
  public var topK: Int
  /// Figure 8's x-axis.
  public var tokens: [Int]
  /// Figure 12's x-axis.
  public var experts: [Int]
  public var expertsTokens: Int
  public var baseExperts: Int
  public var scalingTokens: Int

  public init(
    name: String, hidden: Int, ffn: Int, topK: Int, tokens: [Int], experts: [Int], expertsTokens: Int,
    baseExperts: Int, scalingTokens: Int
  ) {
    self.name = name
    self.hidden = hidden
    self.ffn = ffn
    self.topK = topK
    self.tokens = tokens
    self.experts = experts
    self.expertsTokens = expertsTokens
    self.baseExperts = baseExperts
    self.scalingTokens = scalingTokens
  }

  /// §4: H = D = 2048, top-2, 4K/8K/16K tokens per GPU, 8…128 experts at 16K. The paper does not
  /// name the token count of its GPU sweep; 8K per GPU is where issue #5 sets its targets.
  public static let paper = SuiteGrid(
    name: "paper", hidden: 2048, ffn: 2048, topK: 2, tokens: [4096, 8192, 16384], experts: [8, 16, 32, 64, 128],
    expertsTokens: 16384, baseExperts: 32, scalingTokens: 8192)

  /// The same sweeps at 1/8 of the widths and 1/16 of the tokens, so that the CPU backend runs
  /// the whole suite in well under a minute.
  public static let small = SuiteGrid(
    name: "small", hidden: 256, ffn: 256, topK: 2, tokens: [256, 512, 1024], experts: [8, 16, 32, 64, 128],
    expertsTokens: 1024, baseExperts: 32, scalingTokens: 512)

  public static let all = [paper, small]

  public static var allowedNames: String { all.map(\.name).joined(separator: ", ") }

  public static func named(_ text: String, field: String) throws(ConfigError) -> SuiteGrid {
    guard let grid = all.first(where: { $0.name == text.lowercased() }) else {
      throw ConfigError(field: field, value: "'\(text)'", expected: "one of \(allowedNames)")
    }
    return grid
  }

  /// Whether these are the paper's sizes (charts of any other grid say so in their title).
  public var isPaper: Bool { self == .paper }
}

import MoECore

/// One row per point, for spreadsheets and plotting scripts. Numbers are written exactly (the
/// shortest text that reads back as the same Double); an empty cell means "not measured"; `math`
/// is the GEMM math of the fp32 rows.
public enum CSVWriter {
  public static let header = [
    "dtype", "math", "gpus", "tokens_per_gpu", "experts", "hidden", "ffn", "topk", "sweeps", "card",
    "flashmoe_median_ms", "flashmoe_mean_ms", "flashmoe_min_ms", "runs", "flashmoe_tokens_per_s",
    "baseline_impl", "baseline_median_ms", "baseline_tokens_per_s", "speedup",
    "efficiency_t1", "efficiency_t2", "baseline_efficiency_t1", "baseline_efficiency_t2",
    "flashmoe_error", "baseline_missing",
  ]

  public static func text(_ report: SuiteReport) -> String {
    var lines = [header.joined(separator: ",")]
    for r in report.results {
      let n: (Double?) -> String = { $0.map(NumberText.exact) ?? "" }
      let row: [String] = [
        r.point.dtype.rawValue, r.point.dtype == .fp32 ? report.fp32Math : "",
        "\(r.point.gpus)", "\(r.point.tokensPerGPU)", "\(r.point.experts)",
        "\(report.grid.hidden)", "\(report.grid.ffn)", "\(report.grid.topK)", r.sweeps.map(\.rawValue).joined(separator: ";"),
        r.card ?? "",
        n(r.flashmoe?.medianMs), n(r.flashmoe?.meanMs), n(r.flashmoe?.minMs), r.flashmoe.map { "\($0.runs)" } ?? "",
        n(r.tokensPerSecond),
        r.baseline?.impl ?? "", n(r.baseline?.medianMs), n(r.baselineTokensPerSecond), n(r.speedup),
        n(r.efficiency), n(r.efficiencyVs2), n(r.baselineEfficiency), n(r.baselineEfficiencyVs2),
        r.flashmoeError ?? "", r.baselineMissing ?? "",
      ]
      lines.append(row.map(field).joined(separator: ","))
    }
    return lines.joined(separator: "\n") + "\n"
  }

  /// RFC 4180: a field with a comma, quote or line break is quoted, quotes doubled.
  static func field(_ text: String) -> String {
    guard text.contains(where: { $0 == "," || $0 == "\"" || $0 == "\n" || $0 == "\r" }) else { return text }
    return "\"" + text.split(separator: "\"", omittingEmptySubsequences: false).joined(separator: "\"\"") + "\""
  }
}

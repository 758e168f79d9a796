import BenchSuite
import Foundation
import MoECore

/// A report over `plan` with made-up but distinct timings: FlashMoE's median at a point is
/// `latency(point)`, the baseline's three times it (or missing where `baselineMissing` says).
func fakeReport(
  plan: SuitePlan, backend: String = "cuda", card: String = "NVIDIA H100 80GB HBM3",
  latency: (SuitePoint) -> Double = { Double($0.tokensPerGPU) / 4096 + Double($0.experts) / 64 + Double($0.gpus) / 10 },
  baselineMissing: (SuitePoint) -> String? = { _ in nil }, baseline: Bool = true
) -> SuiteReport {
  let results = plan.points.map { planned -> PointResult in
    let p = planned.point
    let ms = latency(p)
    let outcome: BaselineOutcome? = !baseline ? nil
      : baselineMissing(p).map { .missing($0) } ?? .measured(BaselineTiming(medianMs: 3 * ms, impl: p.dtype == .fp32 ? "loop" : "grouped"))
    return PointResult(
      point: p, sweeps: planned.sweeps, card: card,
      flashmoe: Timing(medianMs: ms, meanMs: ms * 1.01, minMs: ms * 0.99, runs: 32), baseline: outcome)
  }
  return SuiteReport(
    plan: plan, backend: backend, gpusAvailable: plan.gpuCounts.max()!, layer: "plain gelu, biases, capacity factor 1.0",
    fp32Math: "tf32", warmup: 32, runs: 32, baseline: baseline ? "python3 torch_moe.py" : nil, results: results)
}

/// A fresh directory under /tmp, removed when `body` returns.
func withTemporaryDirectory<T>(_ body: (String) throws -> T) throws -> T {
  let path = NSTemporaryDirectory() + "benchsuite-tests-\(getpid())-\(UUID().uuidString)"
  try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
  defer { try? FileManager.default.removeItem(atPath: path) }
  return try body(path)
}

/// RFC 4180 records, parsed independently of the writer (quotes, doubled quotes, commas inside).
func parseCSV(_ text: String) -> [[String]] {
  var records: [[String]] = [], field = "", record: [String] = []
  var quoted = false, chars = Array(text), i = 0
  while i < chars.count {
    let c = chars[i]
    if quoted {
      if c == "\"" {
        if i + 1 < chars.count && chars[i + 1] == "\"" { field.append("\""); i += 1 } else { quoted = false }
      } else {
        field.append(c)
      }
    } else if c == "\"" {
      quoted = true
    } else if c == "," {
      record.append(field); field = ""
    } else if c == "\n" {
      record.append(field); field = ""
      records.append(record); record = []
    } else {
      field.append(c)
    }
    i += 1
  }
  if !field.isEmpty || !record.isEmpty { record.append(field); records.append(record) }
  return records
}

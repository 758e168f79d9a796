import BenchSuite
import Foundation
import MoECore
import MoEFiles
import Testing

@Suite struct WriterTests {
  /// A header and one row per point; every number reads back as the report's value, empty cells
  /// where there is none; a card name with a comma and a quote survives.
  @Test func csvRowsHoldTheNumbers() throws {
    let plan = try SuitePlan(grid: .paper, dtypes: [.bf16, .fp32], gpusAvailable: 2)
    let report = fakeReport(
      plan: plan, card: "Card \"X\", rev 2", baselineMissing: { $0.experts == 128 ? "timed out, killed" : nil })
    let records = parseCSV(CSVWriter.text(report))
    #expect(records.first == CSVWriter.header)
    #expect(records.count == 1 + report.results.count)
    let column = Dictionary(uniqueKeysWithValues: CSVWriter.header.enumerated().map { ($1, $0) })
    for (record, r) in zip(records.dropFirst(), report.results) {
      #expect(record.count == CSVWriter.header.count)
      func number(_ name: String) -> Double? { Double(record[column[name]!]) }
      #expect(record[column["dtype"]!] == r.point.dtype.rawValue)
      #expect(record[column["math"]!] == (r.point.dtype == .fp32 ? "tf32" : ""))
      #expect(Int(record[column["gpus"]!]) == r.point.gpus)
      #expect(Int(record[column["tokens_per_gpu"]!]) == r.point.tokensPerGPU)
      #expect(Int(record[column["experts"]!]) == r.point.experts)
      #expect(Int(record[column["hidden"]!]) == 2048)
      #expect(record[column["card"]!] == "Card \"X\", rev 2")
      #expect(number("flashmoe_median_ms") == r.flashmoe?.medianMs)
      #expect(number("flashmoe_mean_ms") == r.flashmoe?.meanMs)
      #expect(number("flashmoe_min_ms") == r.flashmoe?.minMs)
      #expect(number("flashmoe_tokens_per_s") == r.tokensPerSecond)
      #expect(number("baseline_median_ms") == r.baseline?.medianMs)
      #expect(number("speedup") == r.speedup)
      #expect(number("efficiency_t1") == r.efficiency)
      #expect(record[column["sweeps"]!] == r.sweeps.map(\.rawValue).joined(separator: ";"))
      if r.point.experts == 128 {
        #expect(record[column["baseline_missing"]!] == "timed out, killed")
        #expect(record[column["baseline_median_ms"]!] == "" && record[column["speedup"]!] == "")
      }
    }
  }

  @Test func jsonRoundTrips() throws {
    let plan = try SuitePlan(grid: .small, dtypes: [.fp32, .bf16], gpusAvailable: 1)
    let report = fakeReport(plan: plan, backend: "cpu", card: "CPU (2 threads)", baselineMissing: { _ in "not run" })
    let text = try JSONWriter.text(report)
    #expect(try JSONWriter.report(from: text) == report)
    // Independent of our decoder: a generic JSON parser sees the fields scripts will read.
    let object = try #require(try JSONSerialization.jsonObject(with: Data(text.utf8)) as? [String: Any])
    let results = try #require(object["results"] as? [[String: Any]])
    #expect(results.count == plan.points.count)
    let first = try #require(results.first?["flashmoe"] as? [String: Any])
    #expect(first["medianMs"] as? Double == report.results[0].flashmoe?.medianMs)
    #expect((object["grid"] as? [String: Any])?["name"] as? String == "small")
  }

  /// Every file lands in a directory made on the way, written whole; a file in the way is an
  /// error naming it.
  @Test func outputDirectory() throws {
    try withTemporaryDirectory { dir in
      let plan = try SuitePlan(grid: .small, dtypes: [.bf16], gpusAvailable: 1)
      let out = dir + "/a/b/bench-out"
      let written = try SuiteOutput.write(fakeReport(plan: plan), to: out)
      let names = try FileManager.default.contentsOfDirectory(atPath: out).sorted()
      #expect(names == [
        "fig08-latency-vs-tokens-bf16.svg", "fig10-throughput-vs-gpus-bf16.svg", "fig11-weak-scaling-bf16.svg",
        "fig12-latency-vs-experts-bf16.svg", "results.csv", "results.json",
      ])
      #expect(written.map { String($0.split(separator: "/").last!) }.sorted() == names)
      // Written again over the old files: still exactly these (no temporary files left).
      try SuiteOutput.write(fakeReport(plan: plan), to: out + "/")
      #expect(try FileManager.default.contentsOfDirectory(atPath: out).sorted() == names)

      #expect(FileManager.default.createFile(atPath: dir + "/file", contents: Data("x".utf8)))
      #expect { try SuiteOutput.write(fakeReport(plan: plan), to: dir + "/file/sub") } throws: { error in
        (error as? FileError)?.file == dir + "/file" && "\(error)".contains("not a directory")
      }
    }
  }
}

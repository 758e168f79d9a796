import BenchSuite
import MoECore
import Testing

@Suite struct TableTests {
  /// Each sweep's rows in x order; a missing baseline reads "missing", a failed point "failed", and
  /// each reason is listed once under the table with the points it hit.
  @Test func missingAndFailedAreShown() throws {
    let plan = try SuitePlan(grid: .paper, dtypes: [.bf16], gpusAvailable: 2)
    var report = fakeReport(plan: plan, baselineMissing: { $0.experts == 64 || $0.experts == 128 ? "CUDA out of memory" : nil })
    let bad = try #require(report.results.firstIndex { $0.point.experts == 8 })
    report.results[bad].flashmoe = nil
    report.results[bad].flashmoeError = "kernel watchdog: Scheduler"
    let rows = SuiteTable.rows(report)
    #expect(rows[0].count == rows[1].count)
    #expect(rows.count == 1 + 3 + 5 + 2)  // tokens, experts and gpus sweeps, shared points listed in each
    let experts = rows.filter { $0[1] == "experts" }
    #expect(experts.map { $0[4] } == ["8", "16", "32", "64", "128"])
    #expect(experts[0][5] == "failed")
    #expect(experts[3][7] == "missing" && experts[4][7] == "missing")
    #expect(experts[1][7].hasSuffix("(grouped)"))
    let notes = SuiteTable.notes(report)
    #expect(notes.contains("PyTorch baseline missing at bf16 P=2 T=16384 E=64; bf16 P=2 T=16384 E=128: CUDA out of memory"))
    #expect(notes.contains("FlashMoE failed at bf16 P=2 T=16384 E=8: kernel watchdog: Scheduler"))
  }
}

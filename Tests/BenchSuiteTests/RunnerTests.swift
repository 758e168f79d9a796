import BenchSuite
import MoECore
import Testing

@Suite struct RunnerTests {
  struct Failure: Error, CustomStringConvertible { var description: String { "engine failed" } }

  /// A point that fails is recorded and the run goes on; the baseline runs at every point, only
  /// after every FlashMoE point and the release of its engines; the measure closure is told each
  /// layer's largest token count.
  @Test func failuresAreRecordedAndTheRunGoesOn() throws {
    let plan = try SuitePlan(grid: .small, dtypes: [.bf16], gpusAvailable: 1)
    let bad = SuitePoint(dtype: .bf16, gpus: 1, tokensPerGPU: 1024, experts: 64)
    var events: [String] = []
    var asked: [SuitePoint] = []
    let runner = SuiteRunner(
      plan: plan,
      measure: { point, maxTokens in
        #expect(maxTokens == plan.maxTokens(for: point.layer))
        if point == bad { throw Failure() }
        return Measurement(milliseconds: [2, 1, 3], card: "test card")
      },
      release: { events.append("release") },
      baseline: { point in
        #expect(events.contains("release"))
        asked.append(point)
        return point.experts == 8 ? .missing("no torch") : .measured(BaselineTiming(medianMs: 4, impl: "loop"))
      },
      report: { event in
        switch event {
        case .measuring(let i, _, _): events.append("m\(i)")
        case .measured(let i, _, let r): events.append("r\(i)"); #expect(r.baseline == nil && r.baselineMissing == nil)
        case .baseline(let i, _, _): events.append("b\(i)")
        case .baselineDone(let i, _, _, _): events.append("d\(i)")
        }
      })
    let results = runner.run()
    #expect(results.count == plan.points.count)
    #expect(asked == plan.points.map(\.point))
    let n = plan.points.count
    let measuring: [String] = (1...n).flatMap { i -> [String] in ["m\(i)", "r\(i)"] }
    let baselines: [String] = (1...n).flatMap { i -> [String] in ["b\(i)", "d\(i)"] }
    #expect(events == measuring + ["release"] + baselines)
    for r in results {
      if r.point == bad {
        #expect(r.flashmoe == nil && r.flashmoeError == "engine failed" && r.card == nil)
      } else {
        #expect(r.flashmoe?.medianMs == 2 && r.card == "test card")
      }
      if r.point.experts == 8 {
        #expect(r.baseline == nil && r.baselineMissing == "no torch" && r.speedup == nil)
      } else {
        #expect(r.baseline?.medianMs == 4)
      }
    }
  }

  @Test func noBaselineMeansNotAsked() throws {
    let plan = try SuitePlan(grid: .small, dtypes: [.fp32], gpusAvailable: 1)
    let results = SuiteRunner(plan: plan, measure: { _, _ in Measurement(milliseconds: [0, 0], card: "c") }, baseline: nil).run()
    #expect(results.allSatisfy { $0.baseline == nil && $0.baselineMissing == nil })
    // Times of 0 ms are no measurement: recorded as a failure, not as infinite throughput.
    #expect(results.allSatisfy { $0.flashmoe == nil && $0.flashmoeError?.contains("no usable times") == true })
  }
}

import BenchSuite
import MoECore
import Testing

@Suite struct ResultTests {
  @Test(arguments: [
    ([3.0, 1, 2], 2.0, 2.0, 1.0),
    ([4.0, 1, 3, 2], 2.5, 2.5, 1.0),
    ([5.0], 5.0, 5.0, 5.0),
    ([1.0, 1, 1, 10], 1.0, 3.25, 1.0),
  ])
  func timingStatistics(times: [Double], median: Double, mean: Double, min: Double) throws {
    let t = try #require(Timing(milliseconds: times))
    #expect(t.medianMs == median)
    #expect(t.meanMs == mean)
    #expect(t.minMs == min)
    #expect(t.runs == times.count)
  }

  @Test(arguments: [[Double](), [1, 0], [1, -2], [1, .nan], [.infinity]])
  func unusableTimesGiveNoTiming(times: [Double]) {
    #expect(Timing(milliseconds: times) == nil)
  }

  /// T(ref) / T(N): 1 at the reference, below 1 where N GPUs take longer.
  @Test func efficiency() {
    let latencies = [1: 2.0, 2: 2.5, 4: 4.0, 8: 8.0]
    #expect(WeakScaling.efficiency(latencies, reference: 1) == [1: 1.0, 2: 0.8, 4: 0.5, 8: 0.25])
    #expect(WeakScaling.efficiency(latencies, reference: 2) == [1: 1.25, 2: 1.0, 4: 0.625, 8: 0.3125])
    #expect(WeakScaling.efficiency([2: 1.0, 4: 2.0], reference: 1).isEmpty)
  }

  /// The report fills efficiency on the GPU sweep only, per dtype, for both implementations;
  /// throughput is T · N / latency and speedup is theirs / ours.
  @Test func reportDerivesThroughputEfficiencyAndSpeedup() throws {
    let plan = try SuitePlan(grid: .paper, dtypes: [.bf16, .fp32], gpusAvailable: 4)
    // Latency grows with GPUs: 1 → 2 ms, 2 → 2.5 ms, 4 → 4 ms (at every size).
    let byGPUs = [1: 2.0, 2: 2.5, 4: 4.0]
    let report = fakeReport(plan: plan, latency: { byGPUs[$0.gpus]! })
    for r in report.results {
      let ms = byGPUs[r.point.gpus]!
      #expect(r.tokensPerSecond == Double(r.point.tokensPerGPU * r.point.gpus) / (ms / 1e3))
      #expect(r.baselineTokensPerSecond == Double(r.point.tokensPerGPU * r.point.gpus) / (3 * ms / 1e3))
      #expect(r.speedup == 3)
      if r.sweeps.contains(.gpus) {
        #expect(r.efficiency == 2.0 / ms)
        #expect(r.efficiencyVs2 == 2.5 / ms)
        #expect(r.baselineEfficiency == 6.0 / (3 * ms))
      } else {
        #expect(r.efficiency == nil && r.baselineEfficiency == nil)
      }
    }
  }

  /// A missing T(1) (FlashMoE failed on one GPU) leaves T(1)/T(N) empty but keeps T(2)/T(N).
  @Test func efficiencyWithoutReference() throws {
    let plan = try SuitePlan(grid: .paper, dtypes: [.bf16], gpusAvailable: 2)
    var results = fakeReport(plan: plan).results
    let one = try #require(results.firstIndex { $0.point.gpus == 1 && $0.sweeps.contains(.gpus) })
    results[one] = PointResult(point: results[one].point, sweeps: results[one].sweeps, card: nil, flashmoe: nil, flashmoeError: "boom", baseline: nil)
    let report = SuiteReport(
      plan: plan, backend: "cuda", gpusAvailable: 2, layer: "", fp32Math: "fp32", warmup: 32, runs: 32, baseline: nil,
      results: results)
    let two = try #require(report.results(.gpus, dtype: .bf16).last)
    #expect(two.point.gpus == 2)
    #expect(two.efficiency == nil)
    #expect(two.efficiencyVs2 == 1)
    #expect(report.card == "NVIDIA H100 80GB HBM3")
  }
}

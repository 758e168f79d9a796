import BenchSuite
import MoECore
import Testing

@Suite struct PlanTests {
  /// GPU counts: 1 … available, those that E = 32 divides; the tokens and experts sweeps run on the
  /// largest; nothing ever asks for more GPUs than the machine has.
  @Test(arguments: [
    (1, [1], 1), (2, [1, 2], 2), (3, [1, 2], 2), (4, [1, 2, 4], 4), (6, [1, 2, 4], 4), (8, [1, 2, 4, 8], 8),
  ])
  func gpuCounts(available: Int, counts: [Int], full: Int) throws {
    let plan = try SuitePlan(grid: .paper, dtypes: [.bf16], gpusAvailable: available)
    #expect(plan.gpuCounts == counts)
    #expect(plan.fullGPUs == full)
    #expect(plan.points.allSatisfy { $0.point.gpus <= available })
    let gpusSweep = plan.points.filter { $0.sweeps.contains(.gpus) }.map(\.point.gpus).sorted()
    #expect(gpusSweep == counts)
    let multi = plan.points.filter { $0.point.gpus > 1 }
    if available == 1 { #expect(multi.isEmpty) }
    for p in plan.points where p.sweeps.contains(.tokens) || p.sweeps.contains(.experts) { #expect(p.point.gpus == full) }
    let skipped = (1...available).filter { 32 % $0 != 0 }
    #expect(plan.notes.contains { $0.contains("GPU counts") } == !skipped.isEmpty)
  }

  /// Each sweep holds the grid's x values and the other sizes at their base; a point that two
  /// sweeps share is planned once.
  @Test(arguments: [1, 2, 8])
  func sweepsCoverTheGrid(available: Int) throws {
    let grid = SuiteGrid.paper
    let plan = try SuitePlan(grid: grid, dtypes: [.bf16, .fp32], gpusAvailable: available)
    for dtype in [DType.bf16, .fp32] {
      let mine = plan.points.filter { $0.point.dtype == dtype }
      let tokens = mine.filter { $0.sweeps.contains(.tokens) }
      #expect(tokens.map(\.point.tokensPerGPU).sorted() == [4096, 8192, 16384])
      #expect(tokens.allSatisfy { $0.point.experts == 32 })
      let experts = mine.filter { $0.sweeps.contains(.experts) }
      #expect(experts.map(\.point.experts).sorted() == [8, 16, 32, 64, 128])
      #expect(experts.allSatisfy { $0.point.tokensPerGPU == 16384 })
      let gpus = mine.filter { $0.sweeps.contains(.gpus) }
      #expect(gpus.allSatisfy { $0.point.tokensPerGPU == 8192 && $0.point.experts == 32 })
      // 3 + 5 + |counts| entries, of which 16K@E32 (tokens, experts) and 8K@full GPUs (tokens, gpus) are shared.
      #expect(mine.count == 3 + 5 + plan.gpuCounts.count - 2)
      #expect(Set(mine.map(\.point)).count == mine.count)
    }
  }

  /// Points of one layer come together (one compile each), and a layer is built for its largest S.
  @Test func layersAreContiguous() throws {
    let plan = try SuitePlan(grid: .paper, dtypes: [.fp32, .bf16], gpusAvailable: 4)
    var seen: [LayerKey] = []
    for p in plan.points {
      if seen.last != p.point.layer {
        #expect(!seen.contains(p.point.layer), "layer \(p.point) comes back after another")
        seen.append(p.point.layer)
      }
    }
    #expect(plan.points.first?.point.dtype == .fp32)  // dtypes run in the order given
    #expect(plan.maxTokens(for: LayerKey(dtype: .bf16, gpus: 4, experts: 32)) == 16384)
    #expect(plan.maxTokens(for: LayerKey(dtype: .bf16, gpus: 1, experts: 32)) == 8192)
    #expect(plan.maxTokens(for: LayerKey(dtype: .bf16, gpus: 4, experts: 8)) == 16384)
  }

  /// Experts that do not divide over the GPUs are left out and named in a note.
  @Test func expertsThatDoNotDivideAreLeftOut() throws {
    let grid = SuiteGrid(
      name: "odd", hidden: 64, ffn: 64, topK: 2, tokens: [128], experts: [2, 4, 6, 8], expertsTokens: 128, baseExperts: 4,
      scalingTokens: 128)
    let plan = try SuitePlan(grid: grid, dtypes: [.bf16], gpusAvailable: 4)
    #expect(plan.gpuCounts == [1, 2, 4])
    #expect(plan.points.filter { $0.sweeps.contains(.experts) }.map(\.point.experts).sorted() == [4, 8])
    #expect(plan.notes.contains { $0.contains("experts 2, 6") })
    #expect(plan.notes.contains { $0.contains("not the paper's sizes") })
  }

  @Test(arguments: [([DType](), 1, "dtypes"), ([.bf16, .bf16], 1, "dtypes"), ([.bf16], 0, "gpus")])
  func badInputIsRejected(dtypes: [DType], gpus: Int, field: String) {
    #expect { try SuitePlan(grid: .paper, dtypes: dtypes, gpusAvailable: gpus) } throws: { error in
      (error as? ConfigError)?.field == field
    }
  }

  @Test func gridNames() throws {
    #expect(try SuiteGrid.named("PAPER", field: "sizes") == .paper)
    #expect(try SuiteGrid.named("small", field: "sizes") == .small)
    #expect { try SuiteGrid.named("huge", field: "sizes") } throws: { error in
      let e = error as? ConfigError
      return e?.field == "sizes" && e?.value == "'huge'" && e?.expected.contains("paper") == true
    }
  }
}

import MoEKernels
import Testing
@testable import MoECUDA

/// The counters buffer the host allocates holds every counter the kernel resets and counts
/// (layout.cuh's Counter enum, read from the embedded source): a kernel with one more counter
/// than the host allocates would write past the buffer.
struct WorkspaceCounterTests {
  @Test("Workspace.counterCount is layout.cuh's kCounters")
  func counterCountMatchesTheKernel() throws {
    let text = try #require(KernelSources.contents(of: "layout.cuh"))
    let range = try #require(text.range(of: "kCounters = "))
    #expect(Int(text[range.upperBound...].prefix { $0.isNumber }) == Workspace.counterCount)
  }
}

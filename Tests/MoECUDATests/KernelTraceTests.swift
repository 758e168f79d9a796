import MoEKernels
import Testing
@testable import MoECUDA

/// The trace words of trace.cuh, decoded: events relative to the first block's start, unreached
/// events left out, Processors' busy time and utilisation.
struct KernelTraceTests {
  static let start: UInt64 = 5_000_000_000

  static func words(processors: Int) -> [UInt64] { KernelTrace.initialWords(processors: processors) }

  /// The words the host sizes and decodes are the ones the kernel writes: trace.cuh's counts, read
  /// from the embedded source (a mismatch would decode one Processor's words as the next one's).
  @Test("KernelTrace's word counts are trace.cuh's")
  func wordCountsMatchTheKernel() throws {
    let text = try #require(KernelSources.contents(of: "trace.cuh"))
    func constant(_ declaration: String) -> Int? {
      guard let range = text.range(of: declaration) else { return nil }
      return Int(text[range.upperBound...].prefix { $0.isNumber })
    }
    #expect(constant("kTraceEvents = ") == KernelTrace.eventWords)
    #expect(constant("constexpr int kTracePerProcessor = ") == KernelTrace.perProcessor)
  }

  @Test("events come out in time order, µs from the start; unreached ones are left out")
  func events() {
    var w = Self.words(processors: 2)
    w[0] = Self.start
    w[1] = Self.start + 170_000      // gate tiles done
    w[3] = Self.start + 185_500      // slots done
    w[9] = Self.start + 180_000      // first cell from a peer (an earliest event)
    w[10] = Self.start + 1_000_000   // end
    let t = KernelTrace(words: w, gpu: 1, processors: 2)
    #expect(t.marks.map(\.name) == ["gate tiles done", "first cell from a peer seen", "slots done", "end"])
    #expect(t.marks.map(\.microseconds) == [170, 180, 185.5, 1000])
    #expect(t.spanMicroseconds == 1000)
    // Words still at their initial values (0, or the largest value for earliest events) are unreached.
    #expect(!t.marks.contains { $0.name == "first task started" || $0.name == "last task handed out" })
  }

  @Test("the grid's start: the last block's start is a latest event, the first block past the gate an earliest one")
  func gridStart() {
    let initial = Self.words(processors: 1)
    #expect(initial[11] == 0 && initial[12] == UInt64.max)
    var w = initial
    w[0] = Self.start
    w[11] = Self.start + 300         // last block started
    w[12] = Self.start + 51_200      // first block past the gate
    w[1] = Self.start + 53_000       // gate tiles done (the last block)
    w[10] = Self.start + 600_000
    let t = KernelTrace(words: w, gpu: 0, processors: 1)
    #expect(t.marks.map(\.microseconds) == [0.3, 51.2, 53, 600])
    #expect(t.marks[0].name == "last block started" && t.marks[1].name.hasPrefix("first block past the gate"))
    // Unreached (the kernel of an older build): both left out.
    #expect(initial[13] == 0 && initial[14] == 0 && initial[15] == UInt64.max)
    var old = initial
    old[0] = Self.start
    old[10] = Self.start + 600_000
    #expect(KernelTrace(words: old, gpu: 0, processors: 1).marks.map(\.name) == ["end"])
  }

  @Test("the start of the forward: barrier passages are latest events, the first hand-out an earliest one")
  func startOfForward() {
    var w = Self.words(processors: 1)
    w[0] = Self.start
    w[1] = Self.start + 24_000       // gate tiles done
    w[13] = Self.start + 26_500      // every block past the gate's barrier
    w[2] = Self.start + 31_000       // capacity scan done
    w[3] = Self.start + 35_000       // slots done
    w[14] = Self.start + 37_250      // every block past the slots' barrier
    w[15] = Self.start + 39_000      // first task handed out
    w[8] = Self.start + 42_500       // first task started
    w[10] = Self.start + 600_000
    let t = KernelTrace(words: w, gpu: 0, processors: 1)
    #expect(t.marks.map(\.name) == [
      "gate tiles done", "every block past the gate's barrier", "capacity scan done", "slots done",
      "every block past the slots' barrier", "first task handed out", "first task started", "end",
    ])
    #expect(t.marks.map(\.microseconds) == [24, 26.5, 31, 35, 37.25, 39, 42.5, 600])
  }

  @Test("busy time, task counts, utilisation, time between tasks and the spread of Processors' last task")
  func processors() {
    var w = Self.words(processors: 2)
    w[0] = Self.start
    w[10] = Self.start + 1_000_000
    // Processor 0: first 10 µs, last 900 µs, 400 µs GEMM0 (4 tasks, 320 of them in the k loop),
    // 300 µs GEMM1 (3, 270 in the loop), 0 Combine; 150 µs reading the mailbox, its producer 40;
    // of the 110 µs outside the k loops, 56 of epilogue (21 staging, 35 storing) and 21 of signals.
    w[16 ..< 32] = [
      Self.start + 10_000, Self.start + 900_000, 400_000, 300_000, 0, 4, 3, 0, 320_000, 270_000, 150_000, 40_000, 56_000, 21_000,
      21_000, 35_000,
    ]
    // Processor 1: 100 µs of Combine (2 tasks) from 800 to 1000 µs; 50 µs reading the mailbox.
    w[32 ..< 48] = [Self.start + 800_000, Self.start + 1_000_000, 0, 0, 100_000, 0, 0, 2, 0, 0, 50_000, 0, 0, 0, 0, 0]
    let t = KernelTrace(words: w, gpu: 0, processors: 2)
    #expect(KernelTrace.words(processors: 2) == 16 + 2 * 16)
    // Per GEMM task (7): 8 µs of epilogue (3 staging, 5 storing), 3 of signal, (110 − 56 − 21) / 7 = 4.7 waiting.
    #expect(t.epilogueMicroseconds == 56 && t.signalMicroseconds == 21)
    #expect(t.stagingMicroseconds == 21 && t.storingMicroseconds == 35)
    #expect(t.lines.contains {
      $0.contains("epilogue 8.0 µs (staging 3.0, storing 5.0), waiting for the other warps' stores 4.7 µs, signal 3.0 µs")
    })
    // (890 − 700) + (200 − 100) µs outside tasks, over two Processors.
    #expect(t.betweenTasksMicroseconds == 290 && t.fetchMicroseconds == 200 && t.producerFetchMicroseconds == 40)
    #expect(t.lines.contains { $0.contains("per Processor: 145.0 µs between") && $0.contains("mailbox: 100.0 µs, its producer 20.0 µs") })
    #expect(t.busyMicroseconds == [400, 300, 100])
    #expect(t.tasks == [4, 3, 2])
    #expect(t.loopMicroseconds == [320, 270])
    #expect(abs(t.utilisation - 800.0 / 2000.0) < 1e-12)
    #expect(t.lastTaskEnd.earliest == 900 && t.lastTaskEnd.latest == 1000)
    #expect(t.lines.contains {
      $0.contains("GEMM0 4 × 100.0 µs (k loop 80.0)") && $0.contains("GEMM1 3 × 100.0 µs (k loop 90.0)") && $0.contains("Combine 2 × 50.0 µs")
    })
  }

  @Test("the CUDA-event span joins the first line; the group line gives each GPU's start and end against GPU 0")
  func eventsAndSkew() throws {
    var w0 = Self.words(processors: 2), w1 = Self.words(processors: 2)
    w0[0] = Self.start
    w0[10] = Self.start + 800_000
    w1[0] = Self.start + 42_500        // GPU 1 started 42.5 µs later
    w1[10] = Self.start + 790_000      // and ended 10 µs earlier
    var t0 = KernelTrace(words: w0, gpu: 0, processors: 2)
    let t1 = KernelTrace(words: w1, gpu: 1, processors: 2)
    #expect(t0.startNanoseconds == Self.start && t1.endNanoseconds == Self.start + 790_000)
    t0.eventMicroseconds = 833.25
    #expect(t0.lines[0].contains("800.0 µs, CUDA events 833.3 µs"))
    #expect(!t1.lines[0].contains("CUDA events"))
    let line = try #require(KernelTrace.skewLine([t0, t1]))
    #expect(line.contains("GPU 1 start +42.5 µs, end -10.0 µs"))
    #expect(KernelTrace.skewLine([t0]) == nil)
  }
}

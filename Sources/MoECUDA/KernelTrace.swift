/// The timeline of one forward on one GPU, decoded from the kernel's trace words
/// (Sources/MoEKernels/cuda/trace.cuh): when each phase was last (or first) reached, in
/// microseconds from the first block's start, and how busy the Processors were.
public struct KernelTrace: Sendable {
  static let eventWords = 16, perProcessor = 16
  /// Events recorded with atomicMin start at the largest value; the others at 0 ("not reached").
  static let earliestEvents: Set<Int> = [0, 8, 9, 12, 15]
  static let names: [Int: String] = [
    1: "gate tiles done", 2: "capacity scan done", 3: "slots done", 4: "every cell's signal seen",
    5: "last task handed out", 6: "dispatch rows stored", 7: "results complete (Combine opens)",
    8: "first task started", 9: "first cell from a peer seen", 10: "end", 11: "last block started",
    12: "first block past the gate (a block without gate tiles: at once)",
    13: "every block past the gate's barrier", 14: "every block past the slots' barrier",
    15: "first task handed out",
  ]

  static func words(processors: Int) -> Int { eventWords + perProcessor * processors }
  static func initialWords(processors: Int) -> [UInt64] {
    (0..<words(processors: processors)).map { earliestEvents.contains($0) ? UInt64.max : 0 }
  }

  public let gpu: Int
  /// (event, µs since start), in time order; events not reached in this forward are left out.
  public let marks: [(name: String, microseconds: Double)]
  /// Kernel span, first block start to last block end, µs.
  public let spanMicroseconds: Double
  public let processors: Int
  /// Busy µs summed over Processors, and task counts: GEMM0, GEMM1, Combine.
  public let busyMicroseconds: [Double]
  public let tasks: [Int]
  /// µs of GEMM0 and GEMM1 tasks spent in their k loop, summed over Processors (the rest of a task
  /// is its epilogue and the handing over of tasks).
  public let loopMicroseconds: [Double]
  /// µs between a Processor's first task start and last task end spent outside tasks, summed over
  /// Processors; and of it, µs the computing threads' lead spent reading the mailbox for the next
  /// task; and µs the producer warpgroup's thread 0 spent so (it reads ahead; 0 without one).
  public let betweenTasksMicroseconds: Double, fetchMicroseconds: Double, producerFetchMicroseconds: Double
  /// Over GEMM tasks, summed over Processors: µs from the k loop's end to the computing threads'
  /// lead having issued its epilogue stores, and µs of its signal that the task is done. The rest
  /// of a task outside its k loop is the lead waiting for the other warps' stores.
  public let epilogueMicroseconds: Double, signalMicroseconds: Double
  /// With a producer warpgroup, that epilogue split (µs, summed over Processors): staging the
  /// tile's halves in shared memory (their values, then the barrier), and storing them.
  public let stagingMicroseconds: Double, storingMicroseconds: Double
  /// When Processors finished their last task (µs since start): earliest, median, latest.
  public let lastTaskEnd: (earliest: Double, median: Double, latest: Double)
  /// The first block's start and the last block's end by this GPU's %globaltimer (ns): comparable
  /// across GPUs only as far as their timers agree.
  public let startNanoseconds: UInt64, endNanoseconds: UInt64
  /// The same forward by CUDA events around the launch on this GPU's stream, µs: what `bench`
  /// times. Above `spanMicroseconds` by the launch and the time the grid takes to start and drain.
  public internal(set) var eventMicroseconds: Double?

  init(words w: [UInt64], gpu: Int, processors: Int) {
    let start = w[0]
    startNanoseconds = start
    endNanoseconds = w[10]
    func us(_ t: UInt64) -> Double { t >= start ? Double(t - start) / 1e3 : -Double(start - t) / 1e3 }
    var marks: [(String, Double)] = []
    for (event, name) in Self.names {
      let v = w[event]
      if v == 0 || v == UInt64.max { continue }
      marks.append((name, us(v)))
    }
    self.marks = marks.sorted { $0.1 < $1.1 }
    spanMicroseconds = w[10] > start ? us(w[10]) : 0
    self.gpu = gpu
    self.processors = processors
    var busy = [0.0, 0.0, 0.0], tasks = [0, 0, 0], loop = [0.0, 0.0]
    var ends: [Double] = []
    var between = 0.0, fetch = 0.0, producerFetch = 0.0, epilogue = 0.0, signal = 0.0, staging = 0.0, storing = 0.0
    for i in 0..<processors {
      let base = Self.eventWords + i * Self.perProcessor
      var taskBusy = 0.0
      for t in 0..<3 {
        let b = Double(w[base + 2 + t]) / 1e3
        busy[t] += b
        taskBusy += b
        tasks[t] += Int(w[base + 5 + t])
      }
      if w[base + 1] > w[base] { between += Double(w[base + 1] - w[base]) / 1e3 - taskBusy }
      fetch += Double(w[base + 10]) / 1e3
      producerFetch += Double(w[base + 11]) / 1e3
      epilogue += Double(w[base + 12]) / 1e3
      signal += Double(w[base + 13]) / 1e3
      staging += Double(w[base + 14]) / 1e3
      storing += Double(w[base + 15]) / 1e3
      for t in 0..<2 { loop[t] += Double(w[base + 8 + t]) / 1e3 }
      if w[base + 1] != 0 { ends.append(us(w[base + 1])) }
    }
    busyMicroseconds = busy
    loopMicroseconds = loop
    betweenTasksMicroseconds = between
    fetchMicroseconds = fetch
    producerFetchMicroseconds = producerFetch
    epilogueMicroseconds = epilogue
    signalMicroseconds = signal
    stagingMicroseconds = staging
    storingMicroseconds = storing
    self.tasks = tasks
    ends.sort()
    lastTaskEnd = ends.isEmpty ? (0, 0, 0) : (ends[0], ends[ends.count / 2], ends[ends.count - 1])
  }

  /// Σ busy / (Processors × span): the share of the Processors' time spent inside tasks.
  public var utilisation: Double {
    spanMicroseconds > 0 ? busyMicroseconds.reduce(0, +) / (Double(processors) * spanMicroseconds) : 0
  }

  /// A short report, one line per event and one for the Processors.
  public var lines: [String] {
    func f(_ v: Double) -> String {
      let r = (v * 10).rounded() / 10
      return String(r)
    }
    let events = eventMicroseconds.map { ", CUDA events \(f($0)) µs" } ?? ""
    var out = ["GPU \(gpu): \(f(spanMicroseconds)) µs\(events), \(processors) Processors \(f(utilisation * 100)) % busy"]
    for (name, t) in marks { out.append("  \(f(t)) µs  \(name)") }
    let kinds = ["GEMM0", "GEMM1", "Combine"]
    let perTask = (0..<3).map { k -> String in
      guard tasks[k] > 0 else { return "\(kinds[k]) 0" }
      let loop = k < 2 && loopMicroseconds[k] > 0 ? " (k loop \(f(loopMicroseconds[k] / Double(tasks[k]))))" : ""
      return "\(kinds[k]) \(tasks[k]) × \(f(busyMicroseconds[k] / Double(tasks[k]))) µs\(loop)"
    }
    out.append("  tasks: " + perTask.joined(separator: ", "))
    if processors > 0, tasks.reduce(0, +) > 0 {
      let n = Double(processors)
      let producer = producerFetchMicroseconds > 0 ? ", its producer \(f(producerFetchMicroseconds / n)) µs" : ""
      out.append("  per Processor: \(f(betweenTasksMicroseconds / n)) µs between its first task's start and last task's end outside tasks; reading the mailbox: \(f(fetchMicroseconds / n)) µs\(producer)")
    }
    let gemmTasks = Double(tasks[0] + tasks[1])
    if gemmTasks > 0, epilogueMicroseconds + signalMicroseconds > 0 {
      let outside = busyMicroseconds[0] + busyMicroseconds[1] - loopMicroseconds[0] - loopMicroseconds[1]
      let waiting = outside - epilogueMicroseconds - signalMicroseconds
      let split = stagingMicroseconds + storingMicroseconds > 0
        ? " (staging \(f(stagingMicroseconds / gemmTasks)), storing \(f(storingMicroseconds / gemmTasks)))" : ""
      out.append("  per GEMM task outside its k loop: epilogue \(f(epilogueMicroseconds / gemmTasks)) µs\(split), waiting for the other warps' stores \(f(waiting / gemmTasks)) µs, signal \(f(signalMicroseconds / gemmTasks)) µs")
    }
    out.append("  Processors' last task ended: earliest \(f(lastTaskEnd.earliest)) µs, median \(f(lastTaskEnd.median)) µs, latest \(f(lastTaskEnd.latest)) µs")
    return out
  }
}

extension KernelTrace {
  /// For a group's traces: each GPU's kernel start and end against GPU 0's by %globaltimer, µs.
  /// The GPUs' timers are not aligned (580 µs apart on the 4 × H200 machine), so only the
  /// difference between a GPU's start and end offsets means something: how much longer or shorter
  /// its kernel ran than GPU 0's.
  public static func skewLine(_ traces: [KernelTrace]) -> String? {
    guard let first = traces.first, traces.count > 1 else { return nil }
    func offset(_ a: UInt64, _ b: UInt64) -> String {
      let us = a >= b ? Double(a - b) / 1e3 : -Double(b - a) / 1e3
      return (us >= 0 ? "+" : "") + String((us * 10).rounded() / 10)
    }
    let parts = traces.dropFirst().map {
      "GPU \($0.gpu) start \(offset($0.startNanoseconds, first.startNanoseconds)) µs, end \(offset($0.endNanoseconds, first.endNanoseconds)) µs"
    }
    return "globaltimer against GPU \(first.gpu) (the GPUs' clocks are not aligned: compare a GPU's start and end offsets with each other): "
      + parts.joined(separator: "; ")
  }
}

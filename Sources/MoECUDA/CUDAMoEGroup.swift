import CUDADriver
import Dispatch
import MoECore
import MoEJIT
import Synchronization

/// The layer spread over P GPUs of one host (expert parallelism, issue #4): GPU r holds tokens
/// r·S ..< (r+1)·S and experts r·E/P ..< (r+1)·E/P; each forward is ONE cooperative launch per GPU,
/// and the GPUs exchange token rows and results by stores into each other's memory (transport.cuh).
public final class CUDAMoEGroup: @unchecked Sendable {
  public let config: MoEConfig
  public let group: DeviceGroup
  public let engines: [CUDAMoE]
  private let epoch = Mutex<UInt32>(0)
  /// Forwards share every engine's buffers: one at a time.
  let serial = Mutex<Void>(())

  /// - Parameter debugStall: fault injection (tests); nil reads FLASHMOE_DEBUG_STALL.
  public init(
    config: MoEConfig, weights: MoEWeights, group: DeviceGroup, maxTokens: Int? = nil, debugStall: DebugStall? = nil,
    watchdogMs: Int? = nil
  ) throws {
    try group.check(config)
    let compiler = try KernelCompiler()
    var engines: [CUDAMoE] = []
    for (rank, device) in group.devices.enumerated() {
      engines.append(try CUDAMoE(
        config: config, weights: weights, maxTokens: maxTokens, deviceIndex: device.index, compiler: compiler,
        rank: rank, ranks: group.count, context: group.contexts[rank], debugStall: debugStall,
        watchdogMs: watchdogMs))
    }
    // Every GPU gets the same table of everyone's symmetric buffers (peer pointers).
    let table = engines.flatMap { $0.work.peerEntry.bytes }
    for engine in engines { try engine.work.peers?.upload(table) }
    self.config = config
    self.group = group
    self.engines = engines
  }

  /// Environment variable: "parallel" launches each GPU's kernel from its own thread (opt-in until
  /// measured); anything else launches them one after the other from the calling thread.
  public static let launchVariable = "FLASHMOE_GROUP_LAUNCH"
  static let parallelLaunch = CUDAEnvironment.value(launchVariable) == "parallel"

  public var ranks: Int { engines.count }
  public var maxTokens: Int { engines[0].maxTokens }

  /// Launches forward number `epoch` on every GPU without waiting in between, then waits for all
  /// of them; the first GPU's error (watchdog or CUDA) is thrown after every GPU has stopped.
  func run(tokens: Int, events: [(Event, Event)]? = nil, trace: Bool = false) throws {
    let e = epoch.withLock { value -> UInt32 in
      value = value == UInt32.max ? 1 : value + 1
      return value
    }
    let engines = self.engines
    if trace { for engine in engines { try engine.resetTrace() } }
    @Sendable func launch(_ rank: Int) throws {
      let engine = engines[rank]
      if let events { try events[rank].0.record(on: engine.stream) }
      try engine.launch(
        input: engine.work.input.address, output: engine.work.output.address, tokens: tokens, stream: engine.stream,
        epoch: e, trace: trace)
      if let events { try events[rank].1.record(on: engine.stream) }
    }
    if Self.parallelLaunch && engines.count > 1 {
      // One thread per GPU, so that GPU P−1's kernel does not start a whole launch call after GPU 0's
      // (the first GPU would otherwise wait that long for the last one's rows).
      let failures = Mutex<[(rank: Int, error: any Error)]>([])
      DispatchQueue.concurrentPerform(iterations: engines.count) { rank in
        do { try launch(rank) } catch { failures.withLock { $0.append((rank, error)) } }
      }
      if let first = failures.withLock({ $0.min { $0.rank < $1.rank } }) {
        _ = finish()
        throw first.error
      }
    } else {
      for rank in engines.indices {
        do { try launch(rank) } catch {
          _ = finish()
          throw error
        }
      }
    }
    // The error to report is the one of the GPU that gave up; the others only say they were stopped.
    let errors = finish()
    if let origin = errors.first(where: { ($0 as? CUDABackendError).map { if case .peerAborted = $0 { false } else { true } } ?? true }) {
      throw origin
    }
    if let first = errors.first { throw first }
  }

  /// Waits for every GPU's kernel and reads its status; the errors, in GPU order. After a failed
  /// launch this also lets the GPUs already launched stop (by their watchdog: a peer never
  /// arrives) and clears their state, so the next forward starts clean.
  private func finish() -> [any Error] {
    var errors: [any Error] = []
    for engine in engines {
      do {
        try engine.stream.synchronize()
        try engine.checkStatus()
      } catch {
        errors.append(error)
      }
    }
    return errors
  }

  /// One forward over P·S tokens ([P·S, H], GPU r's tokens are rows r·S ..< (r+1)·S).
  public func forward(_ input: [Float], tokensPerGPU tokens: Int, poison: Bool = false) throws -> [Float] {
    let h = config.hidden
    guard input.count == ranks * tokens * h else {
      throw ConfigError(field: "input", value: "\(input.count) values", expected: "\(ranks) GPUs × \(tokens) tokens × \(h)")
    }
    return try serial.withLock { _ in
      for (rank, engine) in engines.enumerated() {
        try engine.upload(Array(input[rank * tokens * h..<(rank + 1) * tokens * h]), to: engine.work.input)
        if poison { try engine.work.output.fill(word: CUDAMoE.nanWord(config.dtype), stream: engine.stream) }
      }
      try run(tokens: tokens)
      var output: [Float] = []
      output.reserveCapacity(input.count)
      for engine in engines { output += try engine.download(engine.work.output, count: tokens * h) }
      return output
    }
  }

  /// The routing of the last forward over all P·S tokens: experts, and rows (−1 when dropped).
  public func lastRouting(tokensPerGPU tokens: Int) throws -> (expert: [Int32], row: [Int32]) {
    var expert: [Int32] = [], row: [Int32] = []
    for engine in engines {
      let r = try engine.lastRouting(tokens: tokens)
      expert += r.expert
      row += r.row
    }
    return (expert, row)
  }

  /// One forward with every GPU's timeline recorded (`flashmoe bench --trace`); inputs as `time`
  /// left them.
  public func trace(tokensPerGPU tokens: Int) throws -> [KernelTrace] {
    try serial.withLock { _ in
      let events = try engines.map { (try Event(context: $0.context), try Event(context: $0.context)) }
      try run(tokens: tokens, events: events, trace: true)
      return try zip(engines, events).map { engine, pair in
        var trace = try engine.readTrace()
        trace.eventMicroseconds = Double(try pair.1.elapsedMilliseconds(since: pair.0)) * 1e3
        return trace
      }
    }
  }

  /// Milliseconds per forward (the slowest GPU's CUDA-event time), `runs` after `warmup`.
  public func time(_ input: [Float], tokensPerGPU tokens: Int, warmup: Int, runs: Int) throws -> [Double] {
    try serial.withLock { _ in try timeLocked(input, tokensPerGPU: tokens, warmup: warmup, runs: runs) }
  }

  private func timeLocked(_ input: [Float], tokensPerGPU tokens: Int, warmup: Int, runs: Int) throws -> [Double] {
    let h = config.hidden
    for (rank, engine) in engines.enumerated() {
      try engine.upload(Array(input[rank * tokens * h..<(rank + 1) * tokens * h]), to: engine.work.input)
    }
    let events = try engines.map { (try Event(context: $0.context), try Event(context: $0.context)) }
    var times: [Double] = []
    for i in 0..<(warmup + runs) {
      try run(tokens: tokens, events: events)
      if i >= warmup {
        times.append(try events.map { Double(try $0.1.elapsedMilliseconds(since: $0.0)) }.max()!)
      }
    }
    return times
  }
}

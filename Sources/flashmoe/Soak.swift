import ArgumentParser
import FlashMoE

#if canImport(Glibc)
import Glibc
#endif

/// Long runs (issue #7 §5): many forwards of the same tokens must give the same bits every time,
/// and neither host nor device memory may grow.
struct Soak: ParsableCommand {
  static let configuration = CommandConfiguration(
    abstract: "Run many forwards of the same tokens: outputs must stay bitwise identical and memory flat.",
    discussion: """
      Prints a line every --report-every forwards: forwards done, forwards/s, host resident memory
      (and device memory on a GPU). Fails (exit 1) on the first output that differs from the first
      forward's, or when memory at the end exceeds memory after the first report by more than
      --memory-slack-mb.
      """)

  @OptionGroup var shape: ShapeOptions
  @OptionGroup var layer: LayerOptions
  @OptionGroup var backendOptions: BackendOptions
  @Option(help: "Forwards to run.") var forwards: Int = 100_000
  @Option(help: "Forwards between progress lines.") var reportEvery: Int = 10_000
  @Option(help: "Allowed growth of host (and device) memory after the first report, in MiB.") var memorySlackMb: Int = 8
  @Option(help: "Seed for random weights and tokens.") var seed: UInt64 = 1
  @Option(help: "Expert parallelism (CUDA): a GPU count or list; S is then per GPU.") var gpus: String?

  func validate() throws {
    guard forwards >= 2 else { throw ConfigError(field: "forwards", value: forwards, expected: "at least 2") }
    guard reportEvery >= 1 else { throw ConfigError(field: "report-every", value: reportEvery, expected: "at least 1") }
    guard memorySlackMb >= 0 else { throw ConfigError(field: "memory-slack-mb", value: memorySlackMb, expected: "≥ 0") }
    _ = try parseGPUList(gpus)
    _ = try layer.config(tokens: shape.tokens, hidden: shape.hidden, ffn: shape.ffn, experts: shape.experts, topK: shape.topk)
  }

  func run() throws {
    let config = try layer.config(tokens: shape.tokens, hidden: shape.hidden, ffn: shape.ffn, experts: shape.experts, topK: shape.topk)
    let weights = MoEWeights.random(config, seed: seed)
    var rng = SeededGenerator(seed: seed &+ 1)
    let backend = try Backends.resolve(try backendOptions.choice())
    let engine: Engine
    let gpuList = backend == .cuda ? try parseGPUList(gpus) ?? [0] : nil
    if let list = gpuList {
      // On the GPU the tokens stay resident and each output is fingerprinted there (fingerprint.cu):
      // 100,000 copies of 16 MB to the host would take longer than the forwards.
      let input = rng.normals(list.count * config.tokens * config.hidden)
      engine = try Self.residentEngine(config: config, weights: weights, gpus: list, input: input, forwards: forwards)
    } else {
      let layer = try MoELayer(config: config, weights: weights, backend: backend, threads: try backendOptions.threadCount())
      let input = rng.normals(config.tokens * config.hidden)
      engine = Engine(name: layer.backend.rawValue, forward: { _ in try layer.forward(input).values }, deviceMemory: nil)
    }
    print("soak: \(engine.name), S=\(config.tokens) H=\(config.hidden) D=\(config.ffn) E=\(config.experts) k=\(config.topK) \(config.dtype.rawValue), \(forwards) forwards")
    print(table([["forwards", "forwards/s", "host RSS MiB"] + (engine.deviceMemory != nil ? ["device MiB"] : [])]))
    let first = try engine.forward(1)
    let clock = ContinuousClock()
    var last = clock.now
    var baseline: (host: Int, device: Int)?
    var current = (host: 0, device: 0)
    for i in 2...forwards {
      let output = try engine.forward(i)
      guard engine.finish != nil || output == first else {
        print("FAIL  forward \(i) differs from the first")
        throw ExitCode(1)
      }
      if i % reportEvery == 0 || i == forwards {
        let now = clock.now
        let span = (now - last).components
        let seconds = Double(span.seconds) + Double(span.attoseconds) / 1e18
        last = now
        current = (residentBytes(), try engine.deviceMemory?() ?? 0)
        if baseline == nil { baseline = current }
        let steps = i % reportEvery == 0 ? reportEvery : i % reportEvery
        print([String(i), formatFixed(Double(steps) / max(seconds, 1e-9), 0), formatFixed(Double(current.host) / 1048576, 1)]
              .joined(separator: "  ") + (engine.deviceMemory != nil ? "  " + formatFixed(Double(current.device) / 1048576, 1) : ""))
      }
    }
    if let finish = engine.finish {
      let (ok, line) = try finish(first)
      print(line)
      if !ok { throw ExitCode(1) }
    }
    let slack = memorySlackMb << 20
    let base = baseline ?? current
    let grew = current.host > base.host + slack || current.device > base.device + slack
    print("\(grew ? "FAIL" : "PASS")  \(forwards) forwards bitwise identical; host RSS \(base.host) → \(current.host) bytes" +
          (engine.deviceMemory != nil ? ", device \(base.device) → \(current.device) bytes" : "") + " (slack \(memorySlackMb) MiB)")
    if grew { throw ExitCode(1) }
  }

  struct Engine {
    let name: String
    /// Forward number i (from 1): its output, or on the GPU a short stand-in that is equal for
    /// equal fingerprints (the full outputs are compared by `finish`).
    let forward: (_ i: Int) throws -> [Float]
    let deviceMemory: (() throws -> Int)?
    /// After the last forward: every fingerprint against the first's, and the last output against
    /// the first, bit for bit.
    var finish: ((_ first: [Float]) throws -> (ok: Bool, line: String))? = nil
  }

  /// The CUDA engine: one GPU or a group, tokens uploaded once, outputs fingerprinted on the GPU.
  static func residentEngine(config: MoEConfig, weights: MoEWeights, gpus list: [Int], input: [Float], forwards: Int) throws -> Engine {
    let run: (Int) throws -> Void, output: () throws -> [Float], fingerprints: () throws -> [[UInt64]]
    let memory: () throws -> Int
    if list.count > 1 {
      let group = try CUDAMoEGroup(config: config, weights: weights, group: try DeviceGroup(indices: list))
      let prints = try group.makeFingerprints(capacity: forwards)
      try group.uploadResident(input, tokensPerGPU: config.tokens)
      run = { try group.residentForward(tokensPerGPU: config.tokens, fingerprints: prints, slot: $0 - 1) }
      output = { try group.residentOutput(tokensPerGPU: config.tokens) }
      fingerprints = { try prints.map { try $0.values(count: forwards) } }
      memory = { try group.engines.reduce(0) { $0 + (try $1.memoryInUse()) } }
    } else {
      let single = try CUDAMoE(config: config, weights: weights, deviceIndex: list[0])
      let prints = try single.makeFingerprint(capacity: forwards)
      try single.uploadResident(input, tokens: config.tokens)
      run = { try single.residentForward(tokens: config.tokens, fingerprint: prints, slot: $0 - 1) }
      output = { try single.residentOutput(tokens: config.tokens) }
      fingerprints = { [try prints.values(count: forwards)] }
      memory = { try single.memoryInUse() }
    }
    let name = "cuda \(list.count == 1 ? "GPU \(list[0])" : "\(list.count) GPUs"), outputs fingerprinted on the GPU"
    var engine = Engine(
      name: name,
      forward: { i in
        try run(i)
        // Forward 1's output is the reference; later ones are checked by fingerprint in `finish`.
        return i == 1 ? try output() : []
      },
      deviceMemory: memory)
    engine.finish = { first in
      let last = try output()
      let sameBits = last.count == first.count && zip(last, first).allSatisfy { $0.bitPattern == $1.bitPattern }
      var differing: [(gpu: Int, forward: Int)] = []
      for (gpu, values) in try fingerprints().enumerated() {
        for (slot, value) in values.enumerated() where value != values[0] { differing.append((gpu, slot + 1)) }
      }
      let ok = sameBits && differing.isEmpty
      let where_ = differing.prefix(3).map { "forward \($0.forward) on GPU \(list[$0.gpu])" }.joined(separator: ", ")
      return (ok, "\(ok ? "PASS" : "FAIL")  fingerprints of all \(forwards) forwards equal on every GPU: \(differing.isEmpty ? "yes" : "no (\(differing.count) differ: \(where_))"); last output equal to the first bit for bit: \(sameBits ? "yes" : "no")")
    }
    return engine
  }
}

/// This process's resident set size in bytes (/proc/self/statm: size and resident, in pages).
func residentBytes() -> Int {
  guard let file = fopen("/proc/self/statm", "r") else { return 0 }
  defer { fclose(file) }
  var buffer = [CChar](repeating: 0, count: 256)
  guard fgets(&buffer, Int32(buffer.count), file) != nil else { return 0 }
  let bytes = buffer.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }
  let fields = String(decoding: bytes, as: UTF8.self).split(separator: " ")
  guard fields.count >= 2, let pages = Int(fields[1]) else { return 0 }
  return pages * sysconf(Int32(_SC_PAGESIZE))
}

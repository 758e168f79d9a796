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
    if backend == .cuda, let list = try parseGPUList(gpus) {
      let group = try CUDAMoEGroup(config: config, weights: weights, group: try DeviceGroup(indices: list))
      let input = rng.normals(list.count * config.tokens * config.hidden)
      engine = Engine(name: "cuda \(list.count) GPUs", forward: { try group.forward(input, tokensPerGPU: config.tokens) },
                      deviceMemory: { try group.engines.reduce(0) { $0 + (try $1.memoryInUse()) } })
    } else {
      let layer = try MoELayer(config: config, weights: weights, backend: backend, threads: try backendOptions.threadCount())
      let input = rng.normals(config.tokens * config.hidden)
      engine = Engine(name: layer.backend.rawValue, forward: { try layer.forward(input).values }, deviceMemory: nil)
    }
    print("soak: \(engine.name), S=\(config.tokens) H=\(config.hidden) D=\(config.ffn) E=\(config.experts) k=\(config.topK) \(config.dtype.rawValue), \(forwards) forwards")
    print(table([["forwards", "forwards/s", "host RSS MiB"] + (engine.deviceMemory != nil ? ["device MiB"] : [])]))
    let first = try engine.forward()
    let clock = ContinuousClock()
    var last = clock.now
    var baseline: (host: Int, device: Int)?
    var current = (host: 0, device: 0)
    for i in 2...forwards {
      guard try engine.forward() == first else {
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
    let slack = memorySlackMb << 20
    let base = baseline ?? current
    let grew = current.host > base.host + slack || current.device > base.device + slack
    print("\(grew ? "FAIL" : "PASS")  \(forwards) forwards bitwise identical; host RSS \(base.host) → \(current.host) bytes" +
          (engine.deviceMemory != nil ? ", device \(base.device) → \(current.device) bytes" : "") + " (slack \(memorySlackMb) MiB)")
    if grew { throw ExitCode(1) }
  }

  struct Engine {
    let name: String
    let forward: () throws -> [Float]
    let deviceMemory: (() throws -> Int)?
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

import CUDADriver
import MoECore
import MoEKernels

/// 64-bit fingerprints of a GPU's outputs, one slot per forward (fingerprint.cu), for long runs
/// that must show every output identical without copying each one to the host.
public final class OutputFingerprint: @unchecked Sendable {
  let context: Context
  private let module: Module
  private let kernel: Kernel
  private let slots: DeviceBuffer
  public let capacity: Int

  /// Compiles the fingerprint kernel for `context`'s GPU and zeroes `capacity` slots.
  init(context: Context, capacity: Int) throws {
    guard capacity >= 1 else { throw ConfigError(field: "fingerprint slots", value: capacity, expected: "≥ 1") }
    guard let source = KernelSources.contents(of: "fingerprint.cu") else {
      throw CUDABackendError.layoutMismatch("fingerprint.cu is not among the embedded kernel sources")
    }
    let cc = context.device.computeCapability
    let program = try NVRTC.shared().compile(
      source: source, name: "fingerprint.cu", options: ["--gpu-architecture=sm_\(cc.major)\(cc.minor)", "-std=c++17"])
    self.context = context
    module = try Module(context: context, image: program.cubin)
    kernel = try module.kernel(named: "flashmoe_fingerprint")
    slots = try DeviceBuffer(context: context, count: capacity, of: UInt64.self)
    try slots.fill(byte: 0)
    self.capacity = capacity
  }

  /// Queues the fingerprint of `bytes` bytes at `address` (a multiple of 4) into `slot` on `stream`.
  func record(address: UInt64, bytes: Int, slot: Int, stream: Stream) throws {
    guard slot >= 0, slot < capacity else { throw ConfigError(field: "fingerprint slot", value: slot, expected: "0..<\(capacity)") }
    guard bytes % 4 == 0 else { throw ConfigError(field: "fingerprint bytes", value: bytes, expected: "a multiple of 4") }
    let words = bytes / 4
    let blocks = max(1, min(4 * context.device.multiprocessorCount, (words + 255) / 256))
    try kernel.launch(
      grid: Dim3(blocks), block: 256, stream: stream,
      arguments: [.pointer(address), .uint64(UInt64(words)), .buffer(slots, byteOffset: slot * 8)])
  }

  /// The first `count` slots.
  public func values(count: Int) throws -> [UInt64] {
    try slots.download(UInt64.self, count: min(count, capacity))
  }
}

extension CUDAMoE {
  /// A fingerprint of this GPU's outputs with `capacity` slots.
  public func makeFingerprint(capacity: Int) throws -> OutputFingerprint {
    try OutputFingerprint(context: context, capacity: capacity)
  }

  /// Uploads the tokens that `residentForward` runs on.
  public func uploadResident(_ input: [Float], tokens: Int) throws {
    try serial.withLock { _ in try uploadResidentLocked(input, tokens: tokens) }
  }

  private func uploadResidentLocked(_ input: [Float], tokens: Int) throws {
    guard input.count == tokens * config.hidden, tokens >= 1, tokens <= maxTokens else {
      throw ConfigError(field: "input", value: "\(input.count) values", expected: "\(tokens) × \(config.hidden), 1...\(maxTokens) tokens")
    }
    try upload(input, to: work.input)
  }

  /// One forward on the uploaded tokens, its output fingerprinted into `slot`; waits and checks
  /// the watchdog record like `forward`.
  public func residentForward(tokens: Int, fingerprint: OutputFingerprint, slot: Int) throws {
    try serial.withLock { _ in
      try launch(input: work.input.address, output: work.output.address, tokens: tokens)
      try fingerprint.record(address: work.output.address, bytes: tokens * config.hidden * config.dtype.size, slot: slot, stream: stream)
      try stream.synchronize()
      try checkStatus()
    }
  }

  /// The output of the last forward.
  public func residentOutput(tokens: Int) throws -> [Float] {
    try download(work.output, count: tokens * config.hidden)
  }
}

extension CUDAMoEGroup {
  /// One fingerprint per GPU, `capacity` slots each.
  public func makeFingerprints(capacity: Int) throws -> [OutputFingerprint] {
    try engines.map { try OutputFingerprint(context: $0.context, capacity: capacity) }
  }

  /// Uploads each GPU's S tokens ([P·S, H], GPU r's are rows r·S ..< (r+1)·S).
  public func uploadResident(_ input: [Float], tokensPerGPU tokens: Int) throws {
    let h = config.hidden
    guard input.count == ranks * tokens * h else {
      throw ConfigError(field: "input", value: "\(input.count) values", expected: "\(ranks) GPUs × \(tokens) tokens × \(h)")
    }
    for (rank, engine) in engines.enumerated() {
      try engine.uploadResident(Array(input[rank * tokens * h..<(rank + 1) * tokens * h]), tokens: tokens)
    }
  }

  /// One forward on every GPU's uploaded tokens; each GPU's output is fingerprinted into `slot`.
  public func residentForward(tokensPerGPU tokens: Int, fingerprints: [OutputFingerprint], slot: Int) throws {
    guard fingerprints.count == ranks else {
      throw ConfigError(field: "fingerprints", value: fingerprints.count, expected: "one per GPU (\(ranks))")
    }
    try serial.withLock { _ in
      try run(tokens: tokens)
      for (engine, fingerprint) in zip(engines, fingerprints) {
        try fingerprint.record(
          address: engine.work.output.address, bytes: tokens * config.hidden * config.dtype.size, slot: slot, stream: engine.stream)
      }
      for engine in engines { try engine.stream.synchronize() }
    }
  }

  /// Every GPU's output of the last forward, in GPU order.
  public func residentOutput(tokensPerGPU tokens: Int) throws -> [Float] {
    try engines.flatMap { try $0.residentOutput(tokens: tokens) }
  }
}

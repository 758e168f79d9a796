import CUDADriver
import Synchronization
import MoEJIT
import MoEKernels

/// What one run of the put transport's probe saw on this PE (transport_probe.cu).
public struct TransportProbeResult: Sendable, CustomStringConvertible {
  public let staged: Bool
  public let rows: Int, words: Int
  /// Words that arrived wrong, over all sources, and the first of them.
  public let wrongWords: Int
  public let firstWrong: (source: Int, row: Int, word: Int, found: UInt32, expected: UInt32)?
  /// Rows counted and the last signal, per source PE (this PE's own entries are zero).
  public let arrivals: [UInt64]
  public let signals: [UInt64]
  let me: Int, epoch: UInt32

  public var ok: Bool {
    wrongWords == 0 && arrivals.indices.allSatisfy { s in
      s == me || (arrivals[s] == UInt64(rows) && signals[s] == UInt64(epoch) << 32 | UInt64(rows))
    }
  }

  public var description: String {
    let source = staged ? "rows written by the kernel itself (staged, like results)" : "rows the host uploaded (like tokens)"
    var text = "\(rows) rows × \(words * 4) B to every other PE, \(source): \(wrongWords) words wrong"
    if let w = firstWrong {
      text += " (first from PE \(w.source), row \(w.row), word \(w.word): 0x\(String(w.found, radix: 16)), expected 0x\(String(w.expected, radix: 16)))"
    }
    let others = arrivals.indices.filter { $0 != me }
    text += "; rows counted " + others.map { "from PE \($0): \(arrivals[$0])" }.joined(separator: ", ")
    text += "; signals " + others.map { "PE \($0): epoch \(signals[$0] >> 32) rows \(signals[$0] & 0xffff_ffff)" }.joined(separator: ", ")
    return text
  }
}

/// The probe's cubin per architecture (the kernel does not depend on the job).
private let probeCubins = Mutex<[String: [UInt8]]>([:])

extension NVSHMEMJob {
  /// Checks the NVSHMEM put transport (remote.cuh) outside the layer: every PE puts `rows` rows of
  /// `words` words to every other PE with a counted signal, then checks what arrived. Collective.
  /// - Parameter staged: the rows are written by the putting kernel just before the puts (as the
  ///   layer stages results) instead of by the host (as tokens are).
  public func probePutTransport(rows: Int = 512, words: Int = 1024, staged: Bool, epoch: UInt32 = 1) throws -> TransportProbeResult {
    guard let source = KernelSources.contents(of: "transport_probe.cu") else {
      throw CUDABackendError.layoutMismatch("transport_probe.cu is not among the embedded kernel sources")
    }
    let cc = context.device.computeCapability
    let architecture = "sm_\(cc.major)\(cc.minor)a"
    // Compiled once per process and architecture: verify runs the probe three times.
    let cubin = try probeCubins.withLock { cubins in
      if let cubin = cubins[architecture] { return cubin }
      let build = try KernelCompiler(cache: nil).compileNVSHMEM(
        source: source, name: "transport_probe.cu", headers: KernelSources.files, architecture: architecture, options: ["-lineinfo"])
      cubins[architecture] = build.cubin
      return build.cubin
    }
    let module = try Module(context: context, image: cubin)
    try library.initializeModule(module)
    let put = try module.kernel(named: "flashmoe_probe_put"), check = try module.kernel(named: "flashmoe_probe_check")
    let p = worldSize
    let src = try symmetricBuffer(bytes: rows * words * 4)
    let dst = try symmetricBuffer(bytes: p * rows * words * 4)
    let arrive = try symmetricBuffer(bytes: p * 8)
    let signal = try symmetricBuffer(bytes: p * 8)
    let report = try DeviceBuffer(context: context, byteCount: (8 + 4 * p) * 4)
    // Everything on this stream, so that its synchronize covers the zeroing and the upload.
    let stream = try Stream(context: context)
    for b in [dst, arrive, signal, report] { try b.fill(byte: 0, stream: stream) }
    if staged {
      try src.fill(byte: 0, stream: stream)
    } else {
      let values = (0..<rows * words).map { UInt32(rank) * 0x0100_0000 + epoch * 0x0010_0000 + UInt32($0) }
      try src.upload(values, stream: stream)
    }
    try stream.synchronize()
    try barrier("the transport probe's setup")
    let params = ProbeParams(
      src: src.address, dst: dst.address, arrive: arrive.address, signal: signal.address, report: report.address,
      rows: Int32(rows), words: Int32(words), me: Int32(rank), npes: Int32(p), epoch: epoch, staged: staged ? 1 : 0)
    try put.launch(grid: 8, block: 128, stream: stream, arguments: [.value(params)])
    try stream.synchronize()
    try barrier("the transport probe's puts")
    try check.launch(grid: 8, block: 128, stream: stream, arguments: [.value(params)])
    try stream.synchronize()
    let r = try report.download(UInt32.self, stream: stream)
    let wrong = Int(r[0])
    let result = TransportProbeResult(
      staged: staged, rows: rows, words: words, wrongWords: wrong,
      firstWrong: wrong > 0 ? (Int(r[1]), Int(r[2]), Int(r[3]), r[4], r[5]) : nil,
      arrivals: (0..<p).map { UInt64(r[8 + 2 * $0]) | UInt64(r[9 + 2 * $0]) << 32 },
      signals: (0..<p).map { UInt64(r[8 + 2 * p + 2 * $0]) | UInt64(r[9 + 2 * p + 2 * $0]) << 32 },
      me: rank, epoch: epoch)
    try barrier("the transport probe's check")
    for b in [signal, arrive, dst, src] { try library.free(b.address) }
    return result
  }
}

/// transport_probe.cu's `Params` (five pointers, then six 4-byte fields: the same C layout).
private struct ProbeParams {
  var src: UInt64, dst: UInt64, arrive: UInt64, signal: UInt64, report: UInt64
  var rows: Int32, words: Int32, me: Int32, npes: Int32
  var epoch: UInt32, staged: Int32
}

/// The kernel's `flashmoe::Params` (Sources/MoEKernels/cuda/layout.cuh) as bytes, field by field in
/// declaration order with C alignment. `KernelParams.size` must equal the kernel's
/// `sizeof(Params)` (flashmoe_layout[2]); the backend checks it when it loads a kernel.
struct KernelParams {
  var x: UInt64 = 0, out: UInt64 = 0, gate: UInt64 = 0
  var w1: UInt64 = 0, b1: UInt64 = 0, w2: UInt64 = 0, b2: UInt64 = 0, w3: UInt64 = 0, b3: UInt64 = 0
  var tokens: Int32 = 0, capacity: Int32 = 0, renormalize: Int32 = 1, maxRows: Int32 = 0, processors: Int32 = 0
  var epoch: UInt32 = 0
  var timeoutNs: UInt64 = 0
  var pairExpert: UInt64 = 0, pairWeight: UInt64 = 0, pairRank: UInt64 = 0, pairRow: UInt64 = 0
  var chunkCount: UInt64 = 0, chunkOffset: UInt64 = 0, expertCount: UInt64 = 0
  var rowToken: UInt64 = 0, rowTileExpert: UInt64 = 0, readyRows: UInt64 = 0
  var hidden: UInt64 = 0, expertOut: UInt64 = 0
  var rowDone: UInt64 = 0, counters: UInt64 = 0, mailbox: UInt64 = 0, finished: UInt64 = 0
  var barrier: UInt64 = 0, abortEpoch: UInt64 = 0, error: UInt64 = 0
  var rank: Int32 = 0, cellRows: Int32 = 0, ranks: Int32 = 1, dispatchers: Int32 = 0
  var peers: UInt64 = 0
  var trace: UInt64 = 0
  var dispatchSent: UInt64 = 0
  var stallRole: UInt32 = 0, stallRank: Int32 = 0
  var dispatchArrive: UInt64 = 0, combineArrive: UInt64 = 0, stageOut: UInt64 = 0
  var xRounded: UInt64 = 0
  var tensorMaps: UInt64 = 0
  var rowWeight: UInt64 = 0

  static let size = 352

  var bytes: [UInt8] {
    var b = ByteWriter()
    for p in [x, out, gate, w1, b1, w2, b2, w3, b3] { b.u64(p) }
    for v in [tokens, capacity, renormalize, maxRows, processors] { b.i32(v) }
    b.u32(epoch)
    b.u64(timeoutNs)
    for p in [pairExpert, pairWeight, pairRank, pairRow, chunkCount, chunkOffset, expertCount,
              rowToken, rowTileExpert, readyRows, hidden, expertOut,
              rowDone, counters, mailbox, finished, barrier, abortEpoch, error] { b.u64(p) }
    for v in [rank, cellRows, ranks, dispatchers] { b.i32(v) }
    b.u64(peers)
    b.u64(trace)
    b.u64(dispatchSent)
    b.u32(stallRole)
    b.i32(stallRank)
    for p in [dispatchArrive, combineArrive, stageOut, xRounded, tensorMaps, rowWeight] { b.u64(p) }
    b.align(8)
    return b.bytes
  }
}

/// Little-endian bytes with C alignment.
struct ByteWriter {
  var bytes: [UInt8] = []
  mutating func align(_ n: Int) { while bytes.count % n != 0 { bytes.append(0) } }
  mutating func u64(_ v: UInt64) { align(8); for i in 0..<8 { bytes.append(UInt8(truncatingIfNeeded: v >> (8 * UInt64(i)))) } }
  mutating func u32(_ v: UInt32) { align(4); for i in 0..<4 { bytes.append(UInt8(truncatingIfNeeded: v >> (8 * UInt32(i)))) } }
  mutating func i32(_ v: Int32) { u32(UInt32(bitPattern: v)) }
}

/// The kernel's `ErrorRecord`, read back after a forward.
struct ErrorRecord {
  static let size = 48
  let epoch: UInt32, code: UInt32, role: UInt32, phase: UInt32, block: UInt32, thread: UInt32
  let awaited: UInt64, observed: UInt64, elapsedNs: UInt64

  init(_ b: [UInt8]) {
    func u32(_ o: Int) -> UInt32 { (0..<4).reduce(0) { $0 | UInt32(b[o + $1]) << (8 * UInt32($1)) } }
    func u64(_ o: Int) -> UInt64 { (0..<8).reduce(0) { $0 | UInt64(b[o + $1]) << (8 * UInt64($1)) } }
    epoch = u32(0); code = u32(4); role = u32(8); phase = u32(12); block = u32(16); thread = u32(20)
    awaited = u64(24); observed = u64(32); elapsedNs = u64(40)
  }
}

/// One entry of the kernel's `PeerTable` (layout.cuh): where a GPU's symmetric buffers are.
struct PeerEntry {
  var dispatchIn: UInt64, combineIn: UInt64, dispatchSignal: UInt64, combineCount: UInt64, abortEpoch: UInt64
  static let size = 40
  var bytes: [UInt8] {
    var b = ByteWriter()
    for p in [dispatchIn, combineIn, dispatchSignal, combineCount, abortEpoch] { b.u64(p) }
    return b.bytes
  }
}

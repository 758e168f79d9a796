import CUDADriver
import MoECore
import MoEJIT

/// Every device buffer the kernel's actors share, sized once for `maxTokens` and zeroed once at
/// creation. Nothing here is cleared between forwards: the kernel resets its per-forward counters
/// itself and tags mailboxes, finished counters and the error record with the forward's epoch.
final class Workspace: @unchecked Sendable {
  static let tileM = 128
  /// The kernel's mailbox depth (kMailboxDepth, layout.cuh) by default; the slots allocated per
  /// Processor cover any depth an experimental build may set (FLASHMOE_MAILBOX_DEPTH ≤ 4).
  static let mailboxDepth = 2, maxMailboxDepth = 4
  static let mailboxSlotSize = 32
  /// The kernel's per-forward counters (layout.cuh's `kCounters`: GEMM1 tasks finished, output
  /// shares zeroed); WorkspaceCounterTests reads the kernel's number.
  static let counterCount = 2
  let maxRows: Int
  let input, output: DeviceBuffer
  let pairExpert, pairWeight, pairRank, pairRow: DeviceBuffer
  let chunkCount, chunkOffset, expertCount: DeviceBuffer
  let rowToken, rowWeight, rowTileExpert, readyRows, rowDone: DeviceBuffer
  let hidden, expertOut: DeviceBuffer
  let counters, mailbox, finished, barrier, abortEpoch, error: DeviceBuffer
  /// The timeline of a traced forward (trace.cuh; KernelTrace decodes it).
  let trace: DeviceBuffer
  /// Expert parallelism (P > 1): rows of one cell of the symmetric tensor, and this GPU's incoming
  /// halves of L (dispatch and combine), their signals and the peer table.
  let cellRows: Int
  let dispatchIn, combineIn, dispatchSignal, combineCount, dispatchSent, peers: DeviceBuffer?
  /// The NVSHMEM put transport only (remote.cuh): arrival counts and the staging of results.
  let dispatchArrive, combineArrive, stageOut: DeviceBuffer?
  /// tf32 math: the tokens rounded to tf32 by the gate (layout.cuh); 8 bytes otherwise.
  let xRounded: DeviceBuffer

  /// C' for `maxTokens` tokens per GPU: the capacity (S for dropless, never more than S) rounded
  /// up to the tile height (in-place padding, §3.2.1).
  static func cellRows(config: MoEConfig, maxTokens: Int) -> Int {
    let c = min(maxTokens, config.expertCapacity(tokens: maxTokens) ?? maxTokens)
    return (max(c, 1) + tileM - 1) / tileM * tileM
  }

  /// Rows of the grouped buffers: every kept pair plus each expert's padding to the tile height.
  static func maxRows(config: MoEConfig, maxTokens: Int) -> Int {
    let rows = maxTokens * config.topK + config.experts * tileM
    return (rows + tileM - 1) / tileM * tileM
  }

  /// Every buffer's size in bytes, by name: the one place that sizes the workspace, used to check
  /// that it fits before anything is allocated and then to allocate it.
  static func plan(config: MoEConfig, maxTokens: Int, processors: Int, ranks: Int, transport: Transport = .peer) -> [(name: String, bytes: Int)] {
    let e = config.experts, k = config.topK, size = config.dtype.size
    let pairs = maxTokens * k
    let chunks = (maxTokens + 31) / 32
    let cells = cellRows(config: config, maxTokens: maxTokens)
    // P > 1: row tiles are cells (source, local expert) of C' rows each: P · E_local = E cells.
    let rows = ranks > 1 ? e * cells : maxRows(config: config, maxTokens: maxTokens)
    let rowTiles = rows / tileM
    var plan: [(String, Int)] = [
      ("input", maxTokens * config.hidden * size), ("output", maxTokens * config.hidden * size),
      ("pairExpert", pairs * 4), ("pairWeight", pairs * 4), ("pairRank", pairs * 4), ("pairRow", pairs * 4),
      ("chunkCount", chunks * e * 4), ("chunkOffset", chunks * e * 4), ("expertCount", e * 4),
      ("rowToken", rows * 4), ("rowWeight", rows * 4), ("rowTileExpert", rowTiles * 4), ("readyRows", rowTiles * 4), ("rowDone", rowTiles * 4),
      ("hidden", rows * config.ffn * size), ("expertOut", ranks > 1 ? 8 : rows * config.hidden * size),
      ("counters", counterCount * 4), ("mailbox", processors * maxMailboxDepth * mailboxSlotSize), ("finished", processors * 8),
      ("barrier", 8), ("abortEpoch", 4), ("error", ErrorRecord.size), ("trace", KernelTrace.words(processors: processors) * 8),
      ("xRounded", config.math == .tf32 ? maxTokens * config.hidden * 4 : 8),
    ]
    if ranks > 1 {
      plan += [
        ("dispatchIn", e * cells * config.hidden * size), ("combineIn", e * cells * config.hidden * size),
        ("dispatchSignal", e * 8), ("combineCount", e * (cells / tileM) * 4), ("dispatchSent", e * 4),
        ("peers", ranks * PeerEntry.size),
      ]
      if transport == .nvshmem {
        plan += [
          ("dispatchArrive", e * 8), ("combineArrive", e * (cells / tileM) * 8), ("stageOut", e * cells * config.hidden * size),
        ]
      }
    }
    return plan.map { (name: $0.0, bytes: max($0.1, 8)) }
  }

  /// Allocates `plan` (zeroed). Should an allocation fail, the buffers already made are released
  /// with this half-built object: nothing stays allocated.
  init(
    config: MoEConfig, maxTokens: Int, processors: Int, context: Context, ranks: Int = 1, transport: Transport = .peer,
    symmetric: ((_ bytes: Int) throws -> DeviceBuffer)? = nil
  ) throws {
    var made: [String: DeviceBuffer] = [:]
    let symmetricNames = Self.symmetricBufferNames(transport)
    for (name, bytes) in Self.plan(config: config, maxTokens: maxTokens, processors: processors, ranks: ranks, transport: transport) {
      let b = try symmetric.flatMap { symmetricNames.contains(name) ? $0 : nil }?(bytes)
        ?? DeviceBuffer(context: context, byteCount: bytes)
      try b.fill(byte: 0)
      made[name] = b
    }
    func take(_ name: String) -> DeviceBuffer { made[name]! }
    cellRows = Self.cellRows(config: config, maxTokens: maxTokens)
    maxRows = ranks > 1 ? config.experts * cellRows : Self.maxRows(config: config, maxTokens: maxTokens)
    input = take("input")
    output = take("output")
    pairExpert = take("pairExpert")
    pairWeight = take("pairWeight")
    pairRank = take("pairRank")
    pairRow = take("pairRow")
    chunkCount = take("chunkCount")
    chunkOffset = take("chunkOffset")
    expertCount = take("expertCount")
    rowToken = take("rowToken")
    rowWeight = take("rowWeight")
    rowTileExpert = take("rowTileExpert")
    readyRows = take("readyRows")
    rowDone = take("rowDone")
    hidden = take("hidden")
    expertOut = take("expertOut")
    dispatchIn = made["dispatchIn"]
    combineIn = made["combineIn"]
    dispatchSignal = made["dispatchSignal"]
    combineCount = made["combineCount"]
    dispatchSent = made["dispatchSent"]
    peers = made["peers"]
    dispatchArrive = made["dispatchArrive"]
    combineArrive = made["combineArrive"]
    stageOut = made["stageOut"]
    xRounded = take("xRounded")
    counters = take("counters")
    mailbox = take("mailbox")
    finished = take("finished")
    barrier = take("barrier")
    abortEpoch = take("abortEpoch")
    error = take("error")
    trace = take("trace")
  }

  func fill(_ p: inout KernelParams) {
    p.pairExpert = pairExpert.address
    p.pairWeight = pairWeight.address
    p.pairRank = pairRank.address
    p.pairRow = pairRow.address
    p.chunkCount = chunkCount.address
    p.chunkOffset = chunkOffset.address
    p.expertCount = expertCount.address
    p.rowToken = rowToken.address
    p.rowWeight = rowWeight.address
    p.rowTileExpert = rowTileExpert.address
    p.readyRows = readyRows.address
    p.hidden = hidden.address
    // With peers, expert outputs come home into this GPU's combine cells.
    p.expertOut = combineIn?.address ?? expertOut.address
    p.cellRows = Int32(cellRows)
    p.peers = peers?.address ?? 0
    p.dispatchSent = dispatchSent?.address ?? 0
    p.dispatchArrive = dispatchArrive?.address ?? 0
    p.combineArrive = combineArrive?.address ?? 0
    p.stageOut = stageOut?.address ?? 0
    p.xRounded = xRounded.address
    p.rowDone = rowDone.address
    p.counters = counters.address
    p.mailbox = mailbox.address
    p.finished = finished.address
    p.barrier = barrier.address
    p.abortEpoch = abortEpoch.address
    p.error = error.address
  }
}

extension Workspace {
  /// The buffers that peers write into (the peer table's entries): in a multi-process job they
  /// come from NVSHMEM's symmetric heap, the rest from cuMemAlloc.
  static let symmetricNames: Set<String> = ["dispatchIn", "combineIn", "dispatchSignal", "combineCount", "abortEpoch"]

  /// With the put transport also the arrival counts peers add to, and what this GPU puts from: the
  /// tokens (dispatch; with tf32 math their rounded copy) and the staged results (a remote
  /// transport reads only registered memory).
  static func symmetricBufferNames(_ transport: Transport) -> Set<String> {
    transport == .nvshmem
      ? symmetricNames.union(["dispatchArrive", "combineArrive", "stageOut", "input", "xRounded"]) : symmetricNames
  }

  /// Bytes of the symmetric buffers in `plan`.
  static func symmetricBytes(config: MoEConfig, maxTokens: Int, processors: Int, ranks: Int, transport: Transport = .peer) -> Int {
    let names = symmetricBufferNames(transport)
    return plan(config: config, maxTokens: maxTokens, processors: processors, ranks: ranks, transport: transport)
      .filter { names.contains($0.name) }.reduce(0) { $0 + $1.bytes }
  }

  /// This GPU's entry of the peer table.
  var peerEntry: PeerEntry {
    PeerEntry(
      dispatchIn: dispatchIn?.address ?? 0, combineIn: combineIn?.address ?? 0,
      dispatchSignal: dispatchSignal?.address ?? 0, combineCount: combineCount?.address ?? 0,
      abortEpoch: abortEpoch.address)
  }
}

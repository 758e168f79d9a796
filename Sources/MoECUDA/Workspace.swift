import CUDADriver
import MoECore

/// Every device buffer the kernel's actors share, sized once for `maxTokens` and zeroed once at
/// creation. Nothing here is cleared between forwards: the kernel resets its per-forward counters
/// itself and tags mailboxes, finished counters and the error record with the forward's epoch.
final class Workspace: @unchecked Sendable {
  static let tileM = 128
  static let mailboxDepth = 2
  static let mailboxSlotSize = 32
  let maxRows: Int
  let input, output: DeviceBuffer
  let pairExpert, pairWeight, pairRank, pairRow: DeviceBuffer
  let chunkCount, chunkOffset, expertCount: DeviceBuffer
  let rowToken, rowTileExpert, readyRows, rowDone: DeviceBuffer
  let hidden, expertOut: DeviceBuffer
  let gemm1Done, mailbox, finished, barrier, abortEpoch, error: DeviceBuffer
  /// The timeline of a traced forward (trace.cuh; KernelTrace decodes it).
  let trace: DeviceBuffer
  /// Expert parallelism (P > 1): rows of one cell of the symmetric tensor, and this GPU's incoming
  /// halves of L (dispatch and combine), their signals and the peer table.
  let cellRows: Int
  let dispatchIn, combineIn, dispatchSignal, combineCount, dispatchSent, peers: DeviceBuffer?

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

  init(config: MoEConfig, maxTokens: Int, processors: Int, context: Context, ranks: Int = 1) throws {
    let e = config.experts, k = config.topK, size = config.dtype.size
    let pairs = maxTokens * k
    let chunks = (maxTokens + 31) / 32
    cellRows = Self.cellRows(config: config, maxTokens: maxTokens)
    // P > 1: row tiles are cells (source, local expert) of C' rows each: P · E_local = E cells.
    maxRows = ranks > 1 ? e * cellRows : Self.maxRows(config: config, maxTokens: maxTokens)
    let rowTiles = maxRows / Self.tileM
    func zeroed(_ bytes: Int) throws -> DeviceBuffer {
      let b = try DeviceBuffer(context: context, byteCount: max(bytes, 8))
      try b.fill(byte: 0)
      return b
    }
    input = try zeroed(maxTokens * config.hidden * size)
    output = try zeroed(maxTokens * config.hidden * size)
    pairExpert = try zeroed(pairs * 4)
    pairWeight = try zeroed(pairs * 4)
    pairRank = try zeroed(pairs * 4)
    pairRow = try zeroed(pairs * 4)
    chunkCount = try zeroed(chunks * e * 4)
    chunkOffset = try zeroed(chunks * e * 4)
    expertCount = try zeroed(e * 4)
    rowToken = try zeroed(maxRows * 4)
    rowTileExpert = try zeroed(rowTiles * 4)
    readyRows = try zeroed(rowTiles * 4)
    rowDone = try zeroed(rowTiles * 4)
    hidden = try zeroed(maxRows * config.ffn * size)
    expertOut = try zeroed(ranks > 1 ? 8 : maxRows * config.hidden * size)
    if ranks > 1 {
      dispatchIn = try zeroed(e * cellRows * config.hidden * size)
      combineIn = try zeroed(e * cellRows * config.hidden * size)
      dispatchSignal = try zeroed(e * 8)
      combineCount = try zeroed(e * (cellRows / Self.tileM) * 4)
      dispatchSent = try zeroed(e * 4)
      peers = try zeroed(ranks * PeerEntry.size)
    } else {
      (dispatchIn, combineIn, dispatchSignal, combineCount, dispatchSent, peers) = (nil, nil, nil, nil, nil, nil)
    }
    gemm1Done = try zeroed(4)
    mailbox = try zeroed(processors * Self.mailboxDepth * Self.mailboxSlotSize)
    finished = try zeroed(processors * 8)
    barrier = try zeroed(8)
    abortEpoch = try zeroed(4)
    error = try zeroed(ErrorRecord.size)
    trace = try zeroed(KernelTrace.words(processors: processors) * 8)
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
    p.rowTileExpert = rowTileExpert.address
    p.readyRows = readyRows.address
    p.hidden = hidden.address
    // With peers, expert outputs come home into this GPU's combine cells.
    p.expertOut = combineIn?.address ?? expertOut.address
    p.cellRows = Int32(cellRows)
    p.peers = peers?.address ?? 0
    p.dispatchSent = dispatchSent?.address ?? 0
    p.rowDone = rowDone.address
    p.gemm1Done = gemm1Done.address
    p.mailbox = mailbox.address
    p.finished = finished.address
    p.barrier = barrier.address
    p.abortEpoch = abortEpoch.address
    p.error = error.address
  }
}

extension Workspace {
  /// This GPU's entry of the peer table.
  var peerEntry: PeerEntry {
    PeerEntry(
      dispatchIn: dispatchIn?.address ?? 0, combineIn: combineIn?.address ?? 0,
      dispatchSignal: dispatchSignal?.address ?? 0, combineCount: combineCount?.address ?? 0,
      abortEpoch: abortEpoch.address)
  }
}

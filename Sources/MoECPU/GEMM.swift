// The CPU backend's matrix multiply: a grouped, multi-threaded fp32 NT GEMM, BLIS-style.
//
// For each problem, C[m×n] = A[m×k] · B[n×k]ᵀ. C is cut into tiles of at most MC rows × NC
// columns; a tile is one task. Each thread owns a contiguous chunk of the tile list (about equal
// work) and takes its tiles through an atomic cursor; a thread done with its chunk takes tiles
// from the others' cursors. A thread packs B's columns of the tile (all of k, in KC-deep blocks of
// NR-wide panels) and keeps that packing for its next tile on the same columns; per KC block it
// packs the tile's rows of A into MR-tall panels and runs the 6×16 micro-kernel
// (GEMM+MicroKernel.swift) over the tile: B micro-panel in L1, packed A block in L2. When a tile
// has seen all of k, the caller's epilogue runs on it, on the same thread.
//
// Summation order: an element's value is ((blk₀ + blk₁) + blk₂) + … over the fixed KC blocks of k,
// where each blkᵢ is a fused multiply-add chain over its k in order starting from zero. That order
// depends on nothing but k, so every tiling, thread count and schedule gives the same bits.

import Dispatch
import Synchronization

/// One NT problem: C[m×n] (=|+=) A[m×k] · B[n×k]ᵀ, all row-major fp32. A's rows are lda apart,
/// B's rows ldb apart, C's ldc apart.
struct GEMMProblem: @unchecked Sendable {
  var m: Int, n: Int, k: Int
  var a: UnsafePointer<Float>
  var lda: Int
  var b: UnsafePointer<Float>
  var ldb: Int
  var c: UnsafeMutablePointer<Float>
  var ldc: Int

  init(
    m: Int, n: Int, k: Int, a: UnsafePointer<Float>, lda: Int, b: UnsafePointer<Float>, ldb: Int,
    c: UnsafeMutablePointer<Float>, ldc: Int
  ) {
    self.m = m; self.n = n; self.k = k
    self.a = a; self.lda = lda; self.b = b; self.ldb = ldb; self.c = c; self.ldc = ldc
  }
}

/// Depth of a packed block of k (a B micro-panel of KC×NR floats = 16 KiB sits in L1).
let gemmKC = 256
/// Most rows of C per task (a packed A block of MC×KC floats = 144 KiB sits in L2).
let gemmMC = 144
/// Most columns of C per task.
let gemmNCMax = 1024
/// Most floats of packed B a thread keeps (all of k for a task's columns): 8 MiB.
let gemmPackedBBudget = 1 << 21

/// One tile of C: rows × cols of a problem, computed over all of k by one thread.
struct GEMMTile: Sendable {
  var problem: Int
  var rows: Range<Int>
  var cols: Range<Int>
}

/// Cuts the problems into tiles, ordered problem by problem, column block by column block, so that
/// consecutive tasks share packed B. Enough tiles for `threads` threads where the shapes allow.
func gemmTiles(_ problems: [GEMMProblem], threads: Int) -> [GEMMTile] {
  func roundUp(_ x: Int, _ to: Int) -> Int { (x + to - 1) / to * to }
  func plan(ncCap: Int) -> [GEMMTile] {
    var tiles: [GEMMTile] = []
    for (p, q) in problems.enumerated() where q.m > 0 && q.n > 0 {
      let rowBlocks = (q.m + gemmMC - 1) / gemmMC
      let mb = roundUp((q.m + rowBlocks - 1) / rowBlocks, gemmMR)
      let kcap = max(gemmNR, gemmPackedBBudget / max(q.k, 1) / gemmNR * gemmNR)
      let cap = max(gemmNR, min(ncCap, kcap))
      let colBlocks = (q.n + cap - 1) / cap
      let nb = roundUp((q.n + colBlocks - 1) / colBlocks, gemmNR)
      for j0 in stride(from: 0, to: q.n, by: nb) {
        for i0 in stride(from: 0, to: q.m, by: mb) {
          tiles.append(GEMMTile(problem: p, rows: i0..<min(q.m, i0 + mb), cols: j0..<min(q.n, j0 + nb)))
        }
      }
    }
    return tiles
  }
  var ncCap = gemmNCMax
  var tiles = plan(ncCap: ncCap)
  // Few big tiles (small m): narrower column blocks, so every thread has work.
  while threads > 1 && tiles.count < 4 * threads && ncCap > 64 {
    ncCap /= 2
    tiles = plan(ncCap: ncCap)
  }
  return tiles
}

/// A thread's packing buffers, 64-byte aligned.
private struct GEMMWorkspace {
  let a: UnsafeMutablePointer<Float>
  let b: UnsafeMutablePointer<Float>
  /// The problem and first column whose B is packed in `b` (all of k), if any.
  var packedB: (problem: Int, col: Int, cols: Int)? = nil

  init(bFloats: Int) {
    let aFloats = gemmMC * gemmKC
    a = UnsafeMutableRawPointer.allocate(byteCount: aFloats * 4, alignment: 64)
      .bindMemory(to: Float.self, capacity: aFloats)
    b = UnsafeMutableRawPointer.allocate(byteCount: max(bFloats, 1) * 4, alignment: 64)
      .bindMemory(to: Float.self, capacity: max(bFloats, 1))
  }

  func free() {
    a.deallocate()
    b.deallocate()
  }
}

/// Computes one tile over all of k into C.
private func gemmRunTile(_ tile: GEMMTile, _ q: GEMMProblem, _ ws: inout GEMMWorkspace) {
  let nc = tile.cols.count
  let ncPad = (nc + gemmNR - 1) / gemmNR * gemmNR
  let k = q.k

  // Packed B for these columns: KC blocks one after the other, each ncPad/NR panels of kc×NR.
  if ws.packedB.map({ $0 != (tile.problem, tile.cols.lowerBound, nc) }) ?? true {
    for pc in stride(from: 0, to: k, by: gemmKC) {
      let kc = min(gemmKC, k - pc)
      let block = ws.b + pc * ncPad
      for jr in stride(from: 0, to: nc, by: gemmNR) {
        gemmPackBPanel(
          q.b + (tile.cols.lowerBound + jr) * q.ldb + pc, ldb: q.ldb, cols: min(gemmNR, nc - jr), kc: kc,
          into: block + jr * kc)
      }
    }
    ws.packedB = (tile.problem, tile.cols.lowerBound, nc)
  }

  let mc = tile.rows.count
  let cTile = q.c + tile.rows.lowerBound * q.ldc + tile.cols.lowerBound
  for pc in stride(from: 0, to: k, by: gemmKC) {
    let kc = min(gemmKC, k - pc)
    // Packed A: the tile's rows in MR-tall panels of kc×MR.
    for ir in stride(from: 0, to: mc, by: gemmMR) {
      gemmPackAPanel(
        q.a + (tile.rows.lowerBound + ir) * q.lda + pc, lda: q.lda, rows: min(gemmMR, mc - ir), kc: kc,
        into: ws.a + ir * kc)
    }
    let block = ws.b + pc * ncPad
    for jr in stride(from: 0, to: nc, by: gemmNR) {
      let cols = min(gemmNR, nc - jr)
      let bPanel = block + jr * kc
      for ir in stride(from: 0, to: mc, by: gemmMR) {
        gemmMicroKernel6x16(
          kc: kc, a: ws.a + ir * kc, b: bPanel, c: cTile + ir * q.ldc + jr, ldc: q.ldc,
          rows: min(gemmMR, mc - ir), cols: cols, accumulate: pc > 0)
      }
    }
  }
}

/// Carries values that are shared by the worker threads but not Sendable by type: the epilogue
/// (the caller promises it may run concurrently on disjoint tiles), the problems' pointers and the
/// chunk cursors (atomics at fixed addresses).
private struct GEMMShared: @unchecked Sendable {
  let problems: [GEMMProblem]
  let tiles: [GEMMTile]
  let epilogue: ((_ problem: Int, _ rows: Range<Int>, _ cols: Range<Int>) -> Void)?
  let bFloats: Int
  /// Chunk c of the tile list is `chunkStart[c]..<chunkStart[c + 1]`; `cursors[c]` is its next tile.
  let chunkStart: [Int]
  let cursors: UnsafeMutablePointer<Atomic<Int>>
}

/// Runs every problem (a grouped GEMM: e.g. one problem per expert) on `threads` threads.
/// C is overwritten (not accumulated).
///
/// After a tile of C (rows `rows`, cols `cols` of problem `problem`) holds its final sum,
/// `epilogue(problem, rows, cols)` is called once, on the thread that computed it; tiles are
/// disjoint and cover every C element of every problem with m > 0 exactly once, so the epilogue may
/// transform its tile in place (bias, activation, rounding). It may run concurrently for different
/// tiles. The result is bitwise the same for every thread count.
///
/// Requirements: n ≥ 1 and k ≥ 1 where m > 0 (m == 0 problems are skipped); lda, ldb ≥ k; ldc ≥ n;
/// C must not overlap A, B or another problem's C.
func gemmNT(
  _ problems: [GEMMProblem], threads: Int,
  epilogue: ((_ problem: Int, _ rows: Range<Int>, _ cols: Range<Int>) -> Void)? = nil
) {
  let tiles = gemmTiles(problems, threads: max(1, threads))
  if tiles.isEmpty { return }
  var bFloats = 0
  var cost: [Double] = []
  cost.reserveCapacity(tiles.count)
  for t in tiles {
    let ncPad = (t.cols.count + gemmNR - 1) / gemmNR * gemmNR
    bFloats = max(bFloats, ncPad * problems[t.problem].k)
    cost.append(Double(t.rows.count + gemmMR) * Double(ncPad) * Double(problems[t.problem].k))
  }
  let workers = min(max(1, threads), tiles.count)

  // Each worker owns a contiguous chunk of about equal cost, so it packs B of as few
  // (problem, column block) pairs as it can; one that runs out helps the others from their cursors.
  let total = cost.reduce(0, +)
  var chunkStart = [0]
  var sum = 0.0
  for (i, c) in cost.enumerated() {
    sum += c
    if chunkStart.count < workers && sum >= total * Double(chunkStart.count) / Double(workers) {
      chunkStart.append(i + 1)
    }
  }
  while chunkStart.count < workers + 1 { chunkStart.append(tiles.count) }
  chunkStart[workers] = tiles.count

  let cursors = UnsafeMutablePointer<Atomic<Int>>.allocate(capacity: workers)
  for c in 0..<workers { (cursors + c).initialize(to: Atomic(chunkStart[c])) }
  defer {
    _ = cursors.deinitialize(count: workers)
    cursors.deallocate()
  }
  let shared = GEMMShared(
    problems: problems, tiles: tiles, epilogue: epilogue, bFloats: bFloats, chunkStart: chunkStart,
    cursors: cursors)

  @Sendable func work(_ worker: Int) {
    var ws = GEMMWorkspace(bFloats: shared.bFloats)
    defer { ws.free() }
    for step in 0..<workers {
      let chunk = (worker + step) % workers
      let end = shared.chunkStart[chunk + 1]
      while true {
        let i = shared.cursors[chunk].add(1, ordering: .relaxed).oldValue
        if i >= end { break }
        let tile = shared.tiles[i]
        gemmRunTile(tile, shared.problems[tile.problem], &ws)
        shared.epilogue?(tile.problem, tile.rows, tile.cols)
      }
    }
  }

  if workers == 1 {
    work(0)
  } else {
    DispatchQueue.concurrentPerform(iterations: workers) { work($0) }
  }
}

import Testing

import MoECore

// Theorem 3.1 (FlashDMoE Appendix C) checked by enumeration: for a routing of P GPUs' tokens,
// SymmetricWrites.writes lists every row and signal word the expert-parallel forward writes, and
// these tests assert that no two writes from different sources touch the same element of L (or the
// same signal word) on any GPU, that every write satisfies Definition C.2, that the writes are
// exactly the kept pairs' rows, that the signals announce exactly the rows written
// (docs/MEMORY.md §Signals), and that the checker does catch a wrong indexing.

/// How the logits of a case are made.
enum LogitPattern: Sendable, CustomStringConvertible {
  /// Standard normal logits from `SeededGenerator(seed:)`.
  case random
  /// Every token of every GPU prefers global expert `x` (k > 1: then the lowest other experts).
  case allToExpert(Int)
  /// GPU 0's tokens prefer GPU 1's experts; the other GPUs' logits are random.
  case gpu0ToGpu1

  var description: String {
    switch self {
    case .random: return "random"
    case .allToExpert(let x): return "all tokens to expert \(x)"
    case .gpu0ToGpu1: return "GPU 0 to GPU 1's experts"
    }
  }
}

struct WriteCase: Sendable, CustomTestStringConvertible {
  var gpus: Int
  var experts: Int
  var topK: Int
  var capacity: Capacity
  var pattern: LogitPattern
  /// S: tokens per GPU.
  var tokens = 40
  var hidden = 8
  var tileM = 8

  /// Depends on every field, so each case has its own reproducible logits.
  var seed: UInt64 {
    var h: UInt64 = 0xF1A5_4D0E
    let capacityCode: UInt64
    switch capacity {
    case .dropless: capacityCode = 0
    case .factor(let f): capacityCode = f.bitPattern
    }
    let patternCode: UInt64
    switch pattern {
    case .random: patternCode = 1
    case .allToExpert(let x): patternCode = 2 + UInt64(x) << 8
    case .gpu0ToGpu1: patternCode = 3
    }
    for v in [UInt64(gpus), UInt64(experts), UInt64(topK), capacityCode, patternCode, UInt64(tokens), UInt64(tileM)] {
      h = (h ^ v) &* 0x0000_0100_0000_01B3
    }
    return h
  }

  var testDescription: String {
    "P=\(gpus) E=\(experts) k=\(topK) \(capacity) \(pattern) S=\(tokens) H=\(hidden) bM=\(tileM) seed=\(seed)"
  }

  func plan() throws -> MemoryPlan {
    try MemoryPlan(
      config: MoEConfig(tokens: tokens, hidden: hidden, ffn: 4, experts: experts, topK: topK, capacity: capacity),
      gpus: gpus, tileM: tileM)
  }

  func logits() -> [Float] {
    let n = gpus * tokens
    var rng = SeededGenerator(seed: seed)
    var logits = rng.normals(n * experts)
    switch pattern {
    case .random: break
    case .allToExpert(let x):
      for i in logits.indices { logits[i] = i % experts == x ? 8 : 0 }
    case .gpu0ToGpu1:
      let eLocal = experts / gpus
      for t in 0..<tokens { for x in eLocal..<(2 * eLocal) { logits[t * experts + x] += 16 } }
    }
    return logits
  }

  func routing(_ plan: MemoryPlan) -> Routing {
    Router.route(
      logits: logits(), tokens: gpus * tokens, experts: experts, topK: topK, renormalize: true,
      capacity: plan.config.expertCapacity, groups: gpus)
  }
}

/// P ∈ {1, 2, 4, 8} × E ∈ {8, 32, 128} × k ∈ {1, 2, 4} × capacity ∈ {0.5, 1.0, 1.25, dropless}, random logits.
let randomCases: [WriteCase] = {
  var cases: [WriteCase] = []
  for p in [1, 2, 4, 8] {
    for e in [8, 32, 128] where e % p == 0 {
      for k in [1, 2, 4] {
        for c in [Capacity.factor(0.5), .factor(1.0), .factor(1.25), .dropless] {
          cases.append(WriteCase(gpus: p, experts: e, topK: k, capacity: c, pattern: .random))
        }
      }
    }
  }
  return cases
}()

/// Every GPU's tokens to one expert (GPU 0's first or the last GPU's last), and GPU 0's tokens to GPU 1.
let adversarialCases: [WriteCase] = {
  var cases: [WriteCase] = []
  for p in [1, 2, 4, 8] {
    for e in [8, 32] {
      for k in [1, 2, 4] {
        for c in [Capacity.factor(1.0), .dropless] {
          for x in [0, e - 1] {
            cases.append(WriteCase(gpus: p, experts: e, topK: k, capacity: c, pattern: .allToExpert(x)))
          }
          if p >= 2 { cases.append(WriteCase(gpus: p, experts: e, topK: k, capacity: c, pattern: .gpu0ToGpu1)) }
        }
      }
    }
  }
  // Tile sizes at the extremes: one row per tile (every cell fully tiled), and a tile larger than S.
  for m in [1, 128] {
    for c in [Capacity.factor(1.25), .dropless] {
      cases.append(WriteCase(gpus: 4, experts: 8, topK: 2, capacity: c, pattern: .random, tokens: 24, tileM: m))
      cases.append(WriteCase(gpus: 4, experts: 8, topK: 2, capacity: c, pattern: .allToExpert(5), tokens: 24, tileM: m))
    }
  }
  return cases
}()

/// Asserts (1)–(4) of the brief for one routing; `label` (with the seed) goes into every failure message.
func verifyWrites(plan: MemoryPlan, routing: Routing, label: String) {
  let (data, signals) = SymmetricWrites.writes(plan: plan, routing: routing)
  let p = plan.gpus, s = plan.config.tokens, h = plan.config.hidden
  let eLocal = plan.localExperts, cPadded = plan.paddedCapacity, tileM = plan.tileM
  let kept = routing.keptPairs

  // (1) No two data writes from different sources overlap on a target, and none repeats.
  let conflicts = SymmetricWrites.conflicts(data, width: h)
  #expect(conflicts.isEmpty, "\(label): \(conflicts.count) conflicts, first \(conflicts.first.map { "\($0.0) vs \($0.1)" } ?? "")")
  let overlaps = SymmetricWrites.overlaps(data, width: h)
  #expect(overlaps.isEmpty, "\(label): \(overlaps.count) overlapping writes (same source)")
  #expect(Set(data.map { [$0.target, $0.offset] }).count == data.count, "\(label): repeated (target, offset)")
  #expect(data.allSatisfy { $0.offset >= 0 && $0.offset + h <= plan.symmetricTensorElements }, "\(label): row outside L")

  // (2) Definition C.2: b = 1 ⇒ p* = source (also self-loops); b = 0 ⇒ source = target; so every
  // inter-device write is an incoming one. Only slots below C are ever written (padding is local).
  func none<W>(_ writes: [W], _ what: String, _ bad: (W) -> Bool) {
    let found = writes.filter(bad)
    #expect(found.isEmpty, "\(label): \(found.count) writes \(what), first \(found.first.map { "\($0)" } ?? "")")
  }
  none(data, "violate Definition C.2") { !$0.isValidCoordinate }
  none(data, "incoming (b = 1) with p ≠ source") { $0.buffer == 1 && $0.peerIndex != $0.source }
  none(data, "staging (b = 0) to another GPU") { $0.buffer == 0 && $0.source != $0.target }
  none(data, "inter-device but not to b = 1") { $0.source != $0.target && $0.buffer != 1 }
  none(data, "beyond slot C = \(plan.capacity)") { $0.slot >= plan.capacity }

  // (3) Signals: one word per (target, index), written by one source, with p* = source.
  let signalConflicts = SymmetricWrites.conflicts(signals)
  #expect(signalConflicts.isEmpty, "\(label): \(signalConflicts.count) signal conflicts, first \(signalConflicts.first.map { "\($0.0) vs \($0.1)" } ?? "")")
  #expect(SymmetricWrites.overlaps(signals).isEmpty, "\(label): a signal word written twice")
  let signalWords = plan.signalBytes / MemoryPlan.signalSize
  none(signals, "violate Definition C.2") { !$0.isValidCoordinate || $0.peerIndex != $0.source }
  none(signals, "outside the signal array") { $0.index < 0 || $0.index >= signalWords }
  none(signals, "with rows outside 0…bM") { $0.rows < 0 || $0.rows > tileM }

  // (4) Exactly the kept pairs' rows: 2 puts + 2 staging rows each, computed here from
  // docs/MEMORY.md's offset formula ((((p·2 + r)·2 + b)·E_local + e)·C' + c)·H, not from MemoryPlan.
  #expect(data.count == 4 * kept, "\(label): \(data.count) data writes for \(kept) kept pairs")
  #expect(data.filter { $0.buffer == 1 }.count == 2 * kept, "\(label): puts ≠ 2 × kept pairs")
  let written = Set(data)
  func row(_ src: Int, _ tgt: Int, _ peer: Int, _ r: Int, _ b: Int, _ e: Int, _ c: Int) -> SymmetricWrite {
    SymmetricWrite(
      source: src, target: tgt, round: r, buffer: b, peerIndex: peer, localExpert: e, slot: c,
      offset: ((((peer * 2 + r) * 2 + b) * eLocal + e) * cPadded + c) * h)
  }
  // rows[g][x]: kept pairs from GPU g to expert x; slots[g][x]: their slots.
  var rows = [[Int]](repeating: [Int](repeating: 0, count: plan.config.experts), count: p)
  var slotSets = [[Set<Int>]](repeating: [Set<Int>](repeating: [], count: plan.config.experts), count: p)
  var missing = 0
  for pair in 0..<routing.pairs where routing.isKept(pair) {
    let g = pair / routing.topK / s, x = Int(routing.expert[pair]), c = Int(routing.slot[pair])
    let o = x / eLocal, e = x % eLocal
    rows[g][x] += 1
    slotSets[g][x].insert(c)
    for w in [row(g, o, g, 0, 1, e, c), row(o, g, o, 1, 1, e, c), row(g, g, o, 0, 0, e, c), row(o, o, g, 1, 0, e, c)]
    where !written.contains(w) {
      missing += 1
      if missing <= 3 { Issue.record("\(label): pair \(pair) lacks \(w)") }
    }
  }
  #expect(missing == 0, "\(label): \(missing) expected rows missing")

  // Signals follow docs/MEMORY.md: each (writer, target, e) cell of each round announces its n rows
  // as tiles 0, 1, … read in order until a tile with rows < bM (or T tiles), and nothing more; the
  // rows written in the cell are exactly slots 0 ..< n, so the reader sees every row it is sent.
  struct Cell: Hashable { var round, writer, target, expert: Int }
  var byCell: [Cell: [Int: Int]] = [:]
  for w in signals { byCell[Cell(round: w.round, writer: w.source, target: w.target, expert: w.localExpert), default: [:]][w.tile] = w.rows }
  #expect(byCell.count == 2 * p * p * eLocal, "\(label): \(byCell.count) signalled cells, expected every one of 2·P·P·E_local")
  for g in 0..<p {
    for x in 0..<plan.config.experts {
      let n = rows[g][x], o = x / eLocal, e = x % eLocal
      #expect(slotSets[g][x] == Set(0..<n), "\(label): GPU \(g) → expert \(x): slots not 0 ..< \(n)")
      for cell in [Cell(round: 0, writer: g, target: o, expert: e), Cell(round: 1, writer: o, target: g, expert: e)] {
        let tiles = byCell[cell] ?? [:]
        var seen = 0, read = 0
        while read < plan.tilesPerCell, let r = tiles[read] {
          seen += r
          read += 1
          if r < tileM { break }
        }
        let complete = read == plan.tilesPerCell || (read > 0 && tiles[read - 1]! < tileM)
        #expect(complete && seen == n && tiles.count == read, "\(label): \(cell) announces \(seen) rows in \(read) of \(tiles.count) tiles, expected \(n)")
      }
    }
  }
  let expectedSignals = 2 * (0..<p).reduce(0) { acc, g in
    acc + rows[g].reduce(0) { $0 + ($1 + tileM - 1) / tileM + ($1 % tileM == 0 && $1 < cPadded ? 1 : 0) }
  }
  #expect(signals.count == expectedSignals, "\(label): \(signals.count) signals, expected \(expectedSignals)")
}

@Suite struct SymmetricWritesTests {
  @Test(arguments: randomCases)
  func randomRoutingIsConflictFree(_ c: WriteCase) throws {
    let plan = try c.plan()
    verifyWrites(plan: plan, routing: c.routing(plan), label: c.testDescription)
  }

  @Test(arguments: adversarialCases)
  func adversarialRoutingIsConflictFree(_ c: WriteCase) throws {
    let plan = try c.plan()
    let routing = c.routing(plan)
    if case .allToExpert(let x) = c.pattern {
      // The pattern did what it says: every GPU filled expert x's capacity (S with dropless).
      let perSource = (0..<routing.pairs).filter { routing.isKept($0) && routing.expert[$0] == Int32(x) }.count
      #expect(perSource == c.gpus * min(plan.capacity, c.tokens), "\(c.testDescription)")
    }
    verifyWrites(plan: plan, routing: routing, label: c.testDescription)
  }

  /// A hand-checked instance pinning the indexing: P = 2, E = 2 (E_local = 1), S = 1, k = 1,
  /// H = 1, bM = 1, dropless (C = C' = 1); both GPUs' token goes to expert 1 on GPU 1.
  /// L per GPU is [p][r][b] = 8 elements, offset (p·2 + r)·2 + b; signals [p][r] = 4 words, p·2 + r.
  @Test func handCheckedExample() throws {
    let plan = try MemoryPlan(
      config: MoEConfig(tokens: 1, hidden: 1, ffn: 1, experts: 2, topK: 1, capacity: .dropless), gpus: 2, tileM: 1)
    let routing = Routing(tokens: 2, experts: 2, topK: 1, expert: [1, 1], weight: [1, 1], slot: [0, 0])
    let (data, signals) = SymmetricWrites.writes(plan: plan, routing: routing)
    func w(_ src: Int, _ tgt: Int, _ p: Int, _ r: Int, _ b: Int) -> SymmetricWrite {
      SymmetricWrite(source: src, target: tgt, round: r, buffer: b, peerIndex: p, localExpert: 0, slot: 0, offset: (p * 2 + r) * 2 + b)
    }
    #expect(
      data == [
        w(0, 0, 1, 0, 0), w(0, 1, 0, 0, 1), w(1, 1, 0, 1, 0), w(1, 0, 1, 1, 1),  // GPU 0's token
        w(1, 1, 1, 0, 0), w(1, 1, 1, 0, 1), w(1, 1, 1, 1, 0), w(1, 1, 1, 1, 1),  // GPU 1's token (self-loop)
      ])
    #expect(data.map(\.offset) == [4, 1, 2, 7, 4, 5, 6, 7])
    func sig(_ src: Int, _ tgt: Int, _ r: Int, _ rows: Int) -> SignalWrite {
      SignalWrite(source: src, target: tgt, round: r, peerIndex: src, localExpert: 0, tile: 0, rows: rows, index: src * 2 + r)
    }
    // Empty cells are announced with a 0-row terminator (n = 0 < C' = 1).
    #expect(
      signals == [
        sig(0, 0, 0, 0), sig(0, 1, 0, 1), sig(1, 0, 0, 0), sig(1, 1, 0, 1),
        sig(0, 0, 1, 0), sig(1, 0, 1, 1), sig(0, 1, 1, 0), sig(1, 1, 1, 1),
      ])
    // Offsets 4 and 7 occur on both GPUs: different targets, so no conflict.
    #expect(SymmetricWrites.conflicts(data, width: 1).isEmpty)
    verifyWrites(plan: plan, routing: routing, label: "hand-checked")
  }

  /// (5) Negative controls: the checker flags a wrong indexing, so the tests above can fail.
  @Test(arguments: [2, 4, 8])
  func wrongIndexingIsDetected(gpus: Int) throws {
    let c = WriteCase(gpus: gpus, experts: 32, topK: 2, capacity: .factor(1.0), pattern: .allToExpert(3))
    let plan = try c.plan()
    let (data, signals) = SymmetricWrites.writes(plan: plan, routing: c.routing(plan))
    #expect(SymmetricWrites.conflicts(data, width: c.hidden).isEmpty, "\(c.testDescription)")

    // p = target instead of p = source in every put: all sources' slot-c rows for one expert land
    // on the same row of the owner, which the checker must report, between every pair of GPUs.
    let wrong = data.map { w in
      w.buffer == 1
        ? SymmetricWrite(plan: plan, source: w.source, target: w.target, round: w.round, buffer: 1, peerIndex: w.target, localExpert: w.localExpert, slot: w.slot)
        : w
    }
    let conflicts = SymmetricWrites.conflicts(wrong, width: c.hidden)
    #expect(!conflicts.isEmpty, "\(c.testDescription): p = target not detected")
    let dispatchPairs = Set(conflicts.filter { $0.0.round == 0 }.map { [min($0.0.source, $0.1.source), max($0.0.source, $0.1.source)] })
    #expect(dispatchPairs.count == gpus * (gpus - 1) / 2, "\(c.testDescription): \(dispatchPairs.count) conflicting GPU pairs in dispatch")
    #expect(conflicts.allSatisfy { $0.0.target == $0.1.target && $0.0.offset == $0.1.offset })
    #expect(wrong.contains { !$0.isValidCoordinate }, "Definition C.2 check misses p = target")

    // Staging straight into another GPU's outgoing buffer (b = 0, source ≠ target) violates rule 2.
    let remoteStaging = data.first { $0.buffer == 0 && $0.peerIndex != $0.source }!
    var bad = remoteStaging
    bad.target = bad.peerIndex
    #expect(!bad.isValidCoordinate)

    // A misaligned row (offset + H/2) overlaps its neighbour from another source without sharing
    // its offset: the range check catches what an offset-equality check would not.
    let o = 3 / plan.localExperts
    let incoming = data.filter { $0.round == 0 && $0.buffer == 1 && $0.target == o }
    let a = incoming.first { $0.source == 0 && $0.slot == 0 }!
    let b = incoming.first { $0.source == 1 && $0.slot == 0 }!
    var shifted = b
    shifted.offset = a.offset + c.hidden / 2
    #expect(SymmetricWrites.conflicts(data.filter { $0 != b } + [shifted], width: c.hidden).count >= 1)
    #expect(Set((data.filter { $0 != b } + [shifted]).map { [$0.target, $0.offset] }).count == data.count)

    // Signals indexed by the target instead of the writer collide likewise.
    let wrongSignals = signals.map { w in
      var v = w
      v.peerIndex = w.target
      v.index = plan.signalIndex(peer: w.target, round: w.round, localExpert: w.localExpert, tile: w.tile)
      return v
    }
    #expect(SymmetricWrites.conflicts(signals).isEmpty)
    #expect(!SymmetricWrites.conflicts(wrongSignals).isEmpty, "\(c.testDescription): signal p = target not detected")
  }

  /// Without staging the model lists the puts only: exactly 2 × kept pairs rows, all with b = 1 and p = source.
  @Test func putsOnly() throws {
    let c = WriteCase(gpus: 4, experts: 32, topK: 2, capacity: .factor(1.25), pattern: .random)
    let plan = try c.plan()
    let routing = c.routing(plan)
    let (data, _) = SymmetricWrites.writes(plan: plan, routing: routing, staging: false)
    #expect(data.count == 2 * routing.keptPairs, "\(c.testDescription)")
    #expect(data.allSatisfy { $0.buffer == 1 && $0.peerIndex == $0.source })
    #expect(SymmetricWrites.conflicts(data, width: c.hidden).isEmpty)
  }
}

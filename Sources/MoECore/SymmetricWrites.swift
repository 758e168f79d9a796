/// Every write the expert-parallel forward makes into the symmetric tensor L and its signals, as a
/// model: which GPU writes which row (or signal word) on which GPU. The indexing here is the one
/// docs/MEMORY.md fixes (§The symmetric tensor L, §Signals) and `MemoryPlan` computes; the GPU
/// backend uses the same helpers (`dispatchWrites`, `combineWrites`, `cellSignals`), and
/// `SymmetricWrites.writes(plan:routing:)` enumerates a whole forward pass so that a CPU test can
/// prove it write-write conflict-free (FlashDMoE Theorem 3.1, Appendix C).
///
/// Data flow of a kept pair of source GPU g routed to global expert x = o · E_local + e with slot c
/// (docs/MEMORY.md):
/// 1. dispatch staging (round 0, b = 0): g writes the token row to L_g[o, 0, 0, e, c];
/// 2. dispatch put (round 0, b = 1): g writes it to L_o[g, 0, 1, e, c];
/// 3. combine staging (round 1, b = 0): o writes the expert output row to L_o[g, 1, 0, e, c];
/// 4. combine put (round 1, b = 1): o writes it to L_g[o, 1, 1, e, c].
/// With P = 1 every "put" is a local copy (source = target = 0), indexed the same way.
///
/// Paper Definition C.2: an inter-device write (and a self-looping one) must use p* = source and
/// b = 1; a write with b = 0 must have source = target. Puts satisfy rule 1, staging writes rule 2.

/// One row write into L: `source` writes the H elements [offset, offset + H) of L on `target`.
public struct SymmetricWrite: Hashable, Sendable, CustomStringConvertible {
  /// The GPU that issues the write.
  public var source: Int
  /// The GPU whose copy of L is written.
  public var target: Int
  /// r: 0 = dispatch, 1 = combine.
  public var round: Int
  /// b: 0 = outgoing staging buffer, 1 = incoming buffer.
  public var buffer: Int
  /// p: the peer coordinate (outgoing: the destination GPU; incoming: the source GPU).
  public var peerIndex: Int
  /// e: the owner's local expert index.
  public var localExpert: Int
  /// c: the slot.
  public var slot: Int
  /// Element offset of the row in L on `target` (`MemoryPlan.symmetricOffset`).
  public var offset: Int

  public init(
    source: Int, target: Int, round: Int, buffer: Int, peerIndex: Int, localExpert: Int, slot: Int, offset: Int
  ) {
    self.source = source
    self.target = target
    self.round = round
    self.buffer = buffer
    self.peerIndex = peerIndex
    self.localExpert = localExpert
    self.slot = slot
    self.offset = offset
  }

  /// The write with its offset computed by `plan.symmetricOffset`.
  public init(
    plan: MemoryPlan, source: Int, target: Int, round: Int, buffer: Int, peerIndex: Int, localExpert: Int, slot: Int
  ) {
    self.init(
      source: source, target: target, round: round, buffer: buffer, peerIndex: peerIndex,
      localExpert: localExpert, slot: slot,
      offset: plan.symmetricOffset(peer: peerIndex, round: round, buffer: buffer, localExpert: localExpert, slot: slot))
  }

  /// Whether the write satisfies the paper's Definition C.2: b = 1 ⇒ p* = source (rule 1, which
  /// covers self-looping puts too), b = 0 ⇒ source = target (rule 2).
  public var isValidCoordinate: Bool {
    buffer == 1 ? peerIndex == source : source == target
  }

  public var description: String {
    "GPU \(source) → L_\(target)[p \(peerIndex), r \(round), b \(buffer), e \(localExpert), c \(slot)] @\(offset)"
  }
}

/// One signal word write: `source` stores `MemoryPlan.signalValue(epoch:rows:)` into word `index`
/// of the signal array on `target`, announcing tile `tile` of cell L_target[peerIndex, round, 1, localExpert].
public struct SignalWrite: Hashable, Sendable, CustomStringConvertible {
  public var source: Int
  public var target: Int
  public var round: Int
  /// p of the announced incoming cell (always the writer under Definition C.2).
  public var peerIndex: Int
  public var localExpert: Int
  public var tile: Int
  /// Valid rows of the tile, 0 … tileM (the low 32 bits of the stored value).
  public var rows: Int
  /// Word index in the signal array on `target` (`MemoryPlan.signalIndex`).
  public var index: Int

  public init(
    source: Int, target: Int, round: Int, peerIndex: Int, localExpert: Int, tile: Int, rows: Int, index: Int
  ) {
    self.source = source
    self.target = target
    self.round = round
    self.peerIndex = peerIndex
    self.localExpert = localExpert
    self.tile = tile
    self.rows = rows
    self.index = index
  }

  /// Signals announce incoming cells only, so the Definition C.2 rule is rule 1: p* = source.
  public var isValidCoordinate: Bool { peerIndex == source }

  public var description: String {
    "GPU \(source) → signal_\(target)[p \(peerIndex), r \(round), e \(localExpert), t \(tile)] #\(index) rows \(rows)"
  }
}

extension MemoryPlan {
  /// GPU that owns global expert `expert` (o = expert / E_local).
  @inlinable
  public func owner(ofExpert expert: Int) -> Int { expert / localExperts }

  /// The two round-0 writes of a kept pair of source GPU `source` routed to global `expert` with
  /// `slot`: the staging write L_source[o, 0, 0, e, slot] and the put L_o[source, 0, 1, e, slot].
  public func dispatchWrites(source: Int, expert: Int, slot: Int) -> (staging: SymmetricWrite, put: SymmetricWrite) {
    let o = owner(ofExpert: expert), e = expert % localExperts
    return (
      SymmetricWrite(plan: self, source: source, target: source, round: 0, buffer: 0, peerIndex: o, localExpert: e, slot: slot),
      SymmetricWrite(plan: self, source: source, target: o, round: 0, buffer: 1, peerIndex: source, localExpert: e, slot: slot)
    )
  }

  /// The two round-1 writes of the same pair, issued by the owner o: the staging write
  /// L_o[source, 1, 0, e, slot] and the put L_source[o, 1, 1, e, slot].
  public func combineWrites(source: Int, expert: Int, slot: Int) -> (staging: SymmetricWrite, put: SymmetricWrite) {
    let o = owner(ofExpert: expert), e = expert % localExperts
    return (
      SymmetricWrite(plan: self, source: o, target: o, round: 1, buffer: 0, peerIndex: source, localExpert: e, slot: slot),
      SymmetricWrite(plan: self, source: o, target: source, round: 1, buffer: 1, peerIndex: o, localExpert: e, slot: slot)
    )
  }

  /// The signals `writer` stores on `target` for the incoming cell L_target[writer, round, 1,
  /// localExpert] holding `rows` rows (docs/MEMORY.md §Signals): tiles 0 … ⌈rows / bM⌉ − 1 with
  /// bM valid rows each but the last, plus, when rows is a multiple of bM below C', tile rows / bM
  /// with 0 rows as a terminator. An empty cell is therefore announced by tile 0 with 0 rows.
  public func cellSignals(writer: Int, target: Int, round: Int, localExpert: Int, rows: Int) -> [SignalWrite] {
    precondition(rows >= 0 && rows <= paddedCapacity, "a cell holds 0 … C' = \(paddedCapacity) rows, not \(rows)")
    func signal(_ tile: Int, _ n: Int) -> SignalWrite {
      SignalWrite(
        source: writer, target: target, round: round, peerIndex: writer, localExpert: localExpert, tile: tile, rows: n,
        index: signalIndex(peer: writer, round: round, localExpert: localExpert, tile: tile))
    }
    let full = rows / tileM, remainder = rows % tileM
    var signals = (0..<full).map { signal($0, tileM) }
    // C' is a multiple of bM, so rows < C' leaves room for tile `full` (partial or terminator).
    if remainder > 0 || rows < paddedCapacity { signals.append(signal(full, remainder)) }
    return signals
  }
}

/// Enumeration of a forward pass's writes, and the conflict checks of Definition C.1.
public enum SymmetricWrites {
  /// Every write of one expert-parallel forward pass over `plan.gpus` GPUs.
  ///
  /// - Parameters:
  ///   - routing: the routing of all P · S tokens, GPU g holding tokens g·S ..< (g+1)·S, with
  ///     slots counted per source GPU (`Router.route(..., groups: P)`); a kept pair's slot must be
  ///     below C'.
  ///   - staging: include the outgoing staging writes (b = 0). docs/MEMORY.md's data flow stages
  ///     every row before putting it, so the default is true; a backend that puts straight from x
  ///     (or from the expert output) writes only the b = 1 rows.
  /// - Returns: `data`: for each kept pair in pair order, its dispatch staging, dispatch put,
  ///   combine staging and combine put (staging ones omitted when `staging` is false), so
  ///   2 (or 4) × kept pairs rows; `signals`: for round 0 then 1, for every (writer, target,
  ///   local expert) cell (P · P · E_local per round, empty ones included), `cellSignals`.
  public static func writes(
    plan: MemoryPlan, routing: Routing, staging: Bool = true
  ) -> (data: [SymmetricWrite], signals: [SignalWrite]) {
    let p = plan.gpus, s = plan.config.tokens, eLocal = plan.localExperts
    precondition(routing.tokens == p * s, "routing has \(routing.tokens) tokens, expected P · S = \(p) · \(s)")
    precondition(routing.experts == plan.config.experts && routing.topK == plan.config.topK)

    var data: [SymmetricWrite] = []
    data.reserveCapacity(routing.keptPairs * (staging ? 4 : 2))
    // rows[g][x]: pairs source g sent to global expert x (= rows of cell L_o[g, r, 1, x % E_local]).
    var rows = [[Int]](repeating: [Int](repeating: 0, count: plan.config.experts), count: p)
    for pair in 0..<routing.pairs where routing.isKept(pair) {
      let g = pair / routing.topK / s
      let x = Int(routing.expert[pair]), c = Int(routing.slot[pair])
      precondition(c < plan.paddedCapacity, "pair \(pair) has slot \(c) ≥ C' = \(plan.paddedCapacity)")
      rows[g][x] += 1
      let dispatch = plan.dispatchWrites(source: g, expert: x, slot: c)
      let combine = plan.combineWrites(source: g, expert: x, slot: c)
      if staging { data.append(dispatch.staging) }
      data.append(dispatch.put)
      if staging { data.append(combine.staging) }
      data.append(combine.put)
    }

    var signals: [SignalWrite] = []
    for round in 0..<MemoryPlan.rounds {
      for g in 0..<p {
        for o in 0..<p {
          for e in 0..<eLocal {
            let n = rows[g][o * eLocal + e]
            // Round 0: g announces its rows for o's expert e; round 1: o announces their outputs to g.
            signals += round == 0
              ? plan.cellSignals(writer: g, target: o, round: 0, localExpert: e, rows: n)
              : plan.cellSignals(writer: o, target: g, round: 1, localExpert: e, rows: n)
          }
        }
      }
    }
    return (data, signals)
  }

  /// Pairs of data writes whose element ranges [offset, offset + width) overlap on the same target,
  /// in ascending (target, offset) order. With `width` = H this is every pair of row writes that
  /// touch a common element of L; a pair with different sources is a write-write conflict
  /// (Definition C.1), one with the same source a repeated write.
  public static func overlaps(_ writes: [SymmetricWrite], width: Int) -> [(SymmetricWrite, SymmetricWrite)] {
    precondition(width >= 1)
    let sorted = writes.sorted { $0.target != $1.target ? $0.target < $1.target : $0.offset < $1.offset }
    var result: [(SymmetricWrite, SymmetricWrite)] = []
    for i in sorted.indices {
      // Every range has the same width, so the earlier ranges that overlap sorted[i] are exactly
      // the contiguous run just before it with offset > sorted[i].offset − width.
      var j = i - 1
      while j >= 0, sorted[j].target == sorted[i].target, sorted[j].offset > sorted[i].offset - width {
        result.append((sorted[j], sorted[i]))
        j -= 1
      }
    }
    return result
  }

  /// Pairs of signal writes to the same word of the same target (a word is written whole).
  public static func overlaps(_ signals: [SignalWrite]) -> [(SignalWrite, SignalWrite)] {
    let sorted = signals.sorted { $0.target != $1.target ? $0.target < $1.target : $0.index < $1.index }
    var result: [(SignalWrite, SignalWrite)] = []
    for i in sorted.indices {
      var j = i - 1
      while j >= 0, sorted[j].target == sorted[i].target, sorted[j].index == sorted[i].index {
        result.append((sorted[j], sorted[i]))
        j -= 1
      }
    }
    return result
  }

  /// Write-write conflicts (Definition C.1): overlapping data writes from different sources.
  public static func conflicts(_ writes: [SymmetricWrite], width: Int) -> [(SymmetricWrite, SymmetricWrite)] {
    overlaps(writes, width: width).filter { $0.0.source != $0.1.source }
  }

  /// Write-write conflicts on signal words: the same word of a target written by different sources.
  public static func conflicts(_ signals: [SignalWrite]) -> [(SignalWrite, SignalWrite)] {
    overlaps(signals).filter { $0.0.source != $0.1.source }
  }
}

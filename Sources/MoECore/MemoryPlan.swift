/// What one GPU holds for one MoE layer, in bytes, and the layout of the symmetric tensor L and its
/// signals (docs/MEMORY.md is the prose version of this file; FlashDMoE §3.2, §3.2.1, Appendix D).
///
/// With P GPUs, GPU g owns experts g·E_local ..< (g+1)·E_local (E_local = E / P, docs/SEMANTICS.md
/// §Several GPUs) and S tokens. Every count below is per GPU; the symmetric ones (L and its signals)
/// are allocated with the same size and layout on every GPU.
///
/// The symmetric tensor is L[P][R = 2][B = 2][E_local][C'][H] in the storage dtype, where
/// - p is the peer: in an outgoing buffer the destination GPU, in an incoming buffer the source GPU,
/// - r = 0 is the dispatch round (tokens to experts), r = 1 the combine round (expert outputs back),
/// - b = 0 is the outgoing staging buffer, b = 1 the incoming one,
/// - C' is the per-source capacity C rounded up to a multiple of `tileM` (in-place padding, §3.2.1).
/// Since P · E_local = E, Size(L) = 4 · E · C' · H · bytes on every GPU whatever P is.
public struct MemoryPlan: Sendable, Codable, Equatable {
  /// R: communication rounds (dispatch and combine).
  public static let rounds = 2
  /// B: staging buffers per round (outgoing and incoming).
  public static let stagingBuffers = 2
  /// Bytes of one signal (a 64-bit flag word, see `signalValue`).
  public static let signalSize = 8
  /// Bytes of one routing-table entry: a 4-byte destination index and a 4-byte fp32 weight.
  public static let routingEntrySize = 8

  public let config: MoEConfig
  /// P: GPUs (expert-parallel world size).
  public let gpus: Int
  /// bM: rows of a tile; every cell of L is padded to a multiple of it.
  public let tileM: Int

  /// E_local = E / P: experts held by one GPU.
  public let localExperts: Int
  /// C: slots one expert keeps for one source GPU, before padding. With a capacity factor it is
  /// min(⌈f · k · S / E⌉, S); dropless it is S (a source's S tokens pick k distinct experts, so at
  /// most S of its pairs can reach one expert).
  public let capacity: Int
  /// C' = C rounded up to a multiple of `tileM`.
  public let paddedCapacity: Int

  /// Expert weights of the E_local local experts (w1, w2, gated w3, and biases when configured).
  public let expertWeightBytes: Int
  /// The gate Wg [E, H], replicated on every GPU.
  public let gateWeightBytes: Int
  /// The layer input x [S, H].
  public let inputBytes: Int
  /// The layer output [S, H].
  public let outputBytes: Int
  /// The expert intermediate a [P · E_local · C', D]: one row per incoming slot of L.
  public let intermediateBytes: Int
  /// The symmetric tensor L [P, 2, 2, E_local, C', H].
  public let symmetricTensorBytes: Int
  /// Signals [P, 2, E_local, C' / tileM], 8 bytes each: one per incoming tile of L.
  public let signalBytes: Int
  /// The routing table [S, k] of (Int32 destination index, Float weight).
  public let routingBytes: Int

  /// - Throws: `ConfigError` for an invalid config, P < 1, E not divisible by P, tileM < 1, a
  ///   destination index that does not fit Int32, or a byte count that does not fit Int.
  public init(config: MoEConfig, gpus: Int, tileM: Int = 128) throws(ConfigError) {
    try config.validate()
    guard gpus >= 1 else {
      throw ConfigError(field: "gpus", value: gpus, expected: "an integer ≥ 1")
    }
    guard config.experts % gpus == 0 else {
      throw ConfigError(field: "gpus", value: gpus, expected: "a divisor of experts = \(config.experts)")
    }
    guard tileM >= 1, tileM <= 1 << 16 else {
      throw ConfigError(field: "tile-m", value: tileM, expected: "an integer in 1...65536")
    }
    let s = config.tokens, h = config.hidden, d = config.ffn, e = config.experts
    let eLocal = e / gpus
    let c = min(config.expertCapacity ?? s, s)
    let cPadded = (c + tileM - 1) / tileM * tileM
    let elementSize = config.dtype.size

    // Destination index of a routed pair: expert · C' + slot, stored as Int32.
    guard e * cPadded <= Int(Int32.max) else {
      throw ConfigError(
        field: "experts × padded capacity", value: "\(e) × \(cPadded)",
        expected: "at most \(Int32.max) (the routing table stores expert · C' + slot as Int32)")
    }

    func product(_ name: String, _ factors: Int...) throws(ConfigError) -> Int {
      var result = 1
      for f in factors {
        let (value, overflow) = result.multipliedReportingOverflow(by: f)
        // Each count stays below 2^59 so that the sum of all eight cannot overflow Int.
        guard !overflow, value < 1 << 59 else {
          throw ConfigError(field: name, value: factors.map(String.init).joined(separator: " × "), expected: "a byte count below 2^59")
        }
        result = value
      }
      return result
    }

    let gated = config.expertForm == .gated
    let matrices = gated ? 3 : 2
    let biasElements = config.biases ? (gated ? 2 * d + h : d + h) : 0
    let expertWeights = try product("expert weights", eLocal, matrices, d, h, elementSize)
      + (try product("expert biases", eLocal, biasElements, elementSize))

    self.config = config
    self.gpus = gpus
    self.tileM = tileM
    self.localExperts = eLocal
    self.capacity = c
    self.paddedCapacity = cPadded
    self.expertWeightBytes = expertWeights
    self.gateWeightBytes = try product("gate weights", e, h, elementSize)
    self.inputBytes = try product("input", s, h, elementSize)
    self.outputBytes = try product("output", s, h, elementSize)
    self.intermediateBytes = try product("intermediate", gpus, eLocal, cPadded, d, elementSize)
    self.symmetricTensorBytes = try product(
      "symmetric tensor", gpus, Self.rounds, Self.stagingBuffers, eLocal, cPadded, h, elementSize)
    self.signalBytes = try product("signals", gpus, Self.rounds, eLocal, cPadded / tileM, Self.signalSize)
    self.routingBytes = try product("routing table", s, config.topK, Self.routingEntrySize)
  }

  /// T = C' / tileM: tiles in one cell L[p, r, b, e].
  public var tilesPerCell: Int { paddedCapacity / tileM }

  /// Elements of L (P · 2 · 2 · E_local · C' · H).
  public var symmetricTensorElements: Int { symmetricTensorBytes / config.dtype.size }

  /// Every byte count above, summed.
  public var totalBytes: Int {
    expertWeightBytes + gateWeightBytes + inputBytes + outputBytes + intermediateBytes
      + symmetricTensorBytes + signalBytes + routingBytes
  }

  // MARK: Layout (the indexing the GPU backend uses)

  /// Element offset of row `slot` of cell L[peer, round, buffer, localExpert] (row-major over
  /// [P, R, B, E_local, C', H]); the row's H elements follow contiguously.
  @inlinable
  public func symmetricOffset(peer: Int, round: Int, buffer: Int, localExpert: Int, slot: Int) -> Int {
    precondition(peer >= 0 && peer < gpus && round >= 0 && round < Self.rounds)
    precondition(buffer >= 0 && buffer < Self.stagingBuffers && localExpert >= 0 && localExpert < localExperts)
    precondition(slot >= 0 && slot < paddedCapacity)
    let cell = ((peer * Self.rounds + round) * Self.stagingBuffers + buffer) * localExperts + localExpert
    return (cell * paddedCapacity + slot) * config.hidden
  }

  /// Index (in 8-byte words) of the signal for incoming tile `tile` of cell L[peer, round, 1, localExpert]
  /// (row-major over [P, R, E_local, T]).
  @inlinable
  public func signalIndex(peer: Int, round: Int, localExpert: Int, tile: Int) -> Int {
    precondition(peer >= 0 && peer < gpus && round >= 0 && round < Self.rounds)
    precondition(localExpert >= 0 && localExpert < localExperts && tile >= 0 && tile < tilesPerCell)
    return ((peer * Self.rounds + round) * localExperts + localExpert) * tilesPerCell + tile
  }

  /// The value a writer stores into a signal: the forward pass's epoch (starting at 1, so that the
  /// zero-initialised word never reads as written) in the high 32 bits, the tile's valid rows
  /// (0…tileM) in the low 32 bits.
  @inlinable
  public static func signalValue(epoch: UInt32, rows: Int) -> UInt64 {
    precondition(rows >= 0 && rows <= 1 << 16)
    return UInt64(epoch) << 32 | UInt64(rows)
  }

  /// The routing table's destination index of a kept pair: global expert · C' + slot (−1 = dropped).
  @inlinable
  public func destinationIndex(expert: Int, slot: Int) -> Int32 {
    precondition(expert >= 0 && expert < config.experts && slot >= 0 && slot < paddedCapacity)
    return Int32(expert * paddedCapacity + slot)
  }

  // MARK: Report

  /// One line of the plan.
  public struct Item: Sendable, Codable, Equatable {
    public let name: String
    public let bytes: Int
    public let shape: String
  }

  /// The plan's lines in the order `render()` prints them, total excluded.
  public var items: [Item] {
    let (s, h, d, e, k) = (config.tokens, config.hidden, config.ffn, config.experts, config.topK)
    let gated = config.expertForm == .gated
    let ty = config.dtype.rawValue
    var weights = "\(localExperts) × (\(gated ? "3" : "2") × \(d)×\(h))"
    if config.biases { weights += " + \(localExperts) × \(gated ? 2 * d + h : d + h) biases" }
    return [
      Item(name: "expert weights", bytes: expertWeightBytes, shape: weights + " \(ty)"),
      Item(name: "gate weights", bytes: gateWeightBytes, shape: "\(e)×\(h) \(ty)"),
      Item(name: "input", bytes: inputBytes, shape: "\(s)×\(h) \(ty)"),
      Item(name: "output", bytes: outputBytes, shape: "\(s)×\(h) \(ty)"),
      Item(name: "intermediate", bytes: intermediateBytes, shape: "\(gpus)×\(localExperts)×\(paddedCapacity)×\(d) \(ty)"),
      Item(
        name: "symmetric tensor L", bytes: symmetricTensorBytes,
        shape: "\(gpus)×\(Self.rounds)×\(Self.stagingBuffers)×\(localExperts)×\(paddedCapacity)×\(h) \(ty)"),
      Item(name: "signals", bytes: signalBytes, shape: "\(gpus)×\(Self.rounds)×\(localExperts)×\(tilesPerCell) × 8 B"),
      Item(name: "routing table", bytes: routingBytes, shape: "\(s)×\(k) × (4 B index + 4 B weight)"),
    ]
  }

  /// The plan as an aligned plain-text table with human units.
  public func render() -> String {
    let capacityText: String
    switch config.capacity {
    case .dropless: capacityText = "dropless: C = S = \(capacity)"
    case .factor(let f):
      let raw = config.expertCapacity ?? capacity
      capacityText = "factor \(f): C = min(⌈f·k·S/E⌉ = \(raw), S) = \(capacity)"
    }
    var lines = [
      "Memory per GPU: P=\(gpus) S=\(config.tokens) H=\(config.hidden) D=\(config.ffn) E=\(config.experts) "
        + "k=\(config.topK) \(config.dtype.rawValue) \(config.expertForm.rawValue)",
      "capacity \(capacityText) per (source, expert); C' = \(paddedCapacity) (multiple of bM=\(tileM)); "
        + "\(localExperts) local expert\(localExperts == 1 ? "" : "s"), \(tilesPerCell) tile\(tilesPerCell == 1 ? "" : "s") per cell",
      "",
    ]
    var rows = [["item", "bytes", "size", "shape"]]
    for item in items {
      rows.append([item.name, String(item.bytes), Self.formatBytes(item.bytes), item.shape])
    }
    rows.append(["total", String(totalBytes), Self.formatBytes(totalBytes), ""])
    lines += Self.alignedRows(rows, rightAligned: [1, 2])
    return lines.joined(separator: "\n") + "\n"
  }

  /// `bytes` in binary units with two decimals ("1.75 GiB"); below 1 KiB in plain bytes ("512 B").
  public static func formatBytes(_ bytes: Int) -> String {
    let units = ["KiB", "MiB", "GiB", "TiB", "PiB", "EiB"]
    if bytes < 1024 { return "\(bytes) B" }
    var value = Double(bytes) / 1024
    var unit = 0
    while value >= 1024 && unit < units.count - 1 {
      value /= 1024
      unit += 1
    }
    // 1023.999 KiB prints as "1024.00 KiB" rather than jumping units; that is fine for a report.
    return "\(fixed(value, decimals: 2)) \(units[unit])"
  }

  /// `value` with exactly `decimals` decimals, rounded half away from zero.
  static func fixed(_ value: Double, decimals: Int) -> String {
    guard value.isFinite else { return "\(value)" }
    var scale = 1.0
    for _ in 0..<decimals { scale *= 10 }
    let scaled = (abs(value) * scale).rounded()
    let sign = value < 0 && scaled > 0 ? "-" : ""
    let whole = scaled / scale
    let integer = whole.rounded(.down)
    let fraction = Int(scaled - integer * scale)
    guard decimals > 0 else { return sign + String(Int(integer)) }
    var fractionText = String(fraction)
    while fractionText.count < decimals { fractionText = "0" + fractionText }
    return sign + String(Int(integer)) + "." + fractionText
  }

  /// Rows padded to common column widths (two spaces apart), trailing spaces removed.
  static func alignedRows(_ rows: [[String]], rightAligned: Set<Int>) -> [String] {
    let columns = rows.map(\.count).max() ?? 0
    var widths = [Int](repeating: 0, count: columns)
    for row in rows { for (i, cell) in row.enumerated() { widths[i] = max(widths[i], cell.count) } }
    return rows.map { row in
      var line = ""
      for (i, cell) in row.enumerated() {
        let pad = String(repeating: " ", count: widths[i] - cell.count)
        if i > 0 { line += "  " }
        line += rightAligned.contains(i) ? pad + cell : cell + pad
      }
      while line.last == " " { line.removeLast() }
      return line
    }
  }

  // MARK: Codable: only the inputs are trusted; everything else is recomputed on decoding.

  private enum CodingKeys: String, CodingKey {
    case config, gpus, tileM, localExperts, capacity, paddedCapacity
    case expertWeightBytes, gateWeightBytes, inputBytes, outputBytes, intermediateBytes
    case symmetricTensorBytes, signalBytes, routingBytes
  }

  public init(from decoder: any Decoder) throws {
    let container = try decoder.container(keyedBy: CodingKeys.self)
    try self.init(
      config: container.decode(MoEConfig.self, forKey: .config),
      gpus: container.decode(Int.self, forKey: .gpus),
      tileM: container.decode(Int.self, forKey: .tileM))
  }
}

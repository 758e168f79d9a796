import MoECore

extension Checkpoint {
  /// The first preset whose gate tensor (with `prefix`) is in the checkpoint.
  public func detectPreset(prefix: String = "") -> NamePreset? {
    NamePreset.allCases.first { contains($0.gateName(prefix: prefix)) }
  }

  /// Loads one MoE layer named by `preset` and `prefix`, rounded to `dtype`.
  ///
  /// E is the number of experts found (numbered 0…E−1 without gaps); H comes from the gate [E, H]
  /// and D from expert 0's w1 [D, H]. The experts are gated when w3 is present. w3 and each bias
  /// kind must be present for every expert or for none. Every tensor's shape is checked; each
  /// error names the tensor concerned.
  public func loadLayer(preset: NamePreset, prefix: String = "", dtype: DType) throws(FileError) -> MoEWeights {
    let experts = try expertCount(preset: preset, prefix: prefix)
    func name(_ tensor: ExpertTensor, _ expert: Int) -> String { preset.name(tensor, expert: expert, prefix: prefix) }

    let gateName = preset.gateName(prefix: prefix)
    guard contains(gateName) else {
      throw FileError(.missingTensor, file: path, tensor: gateName, problem: "the gate weight is missing",
                      expected: "the gate [\(experts), H] next to the experts (preset \(preset.rawValue), prefix '\(prefix)')")
    }
    let gateShape = try info(gateName).shape
    guard gateShape.count == 2, gateShape[0] == experts, gateShape[1] >= 1 else {
      throw FileError(.shapeMismatch, file: try file(of: gateName).path, tensor: gateName, problem: "shape is \(shapeText(gateShape))",
                      expected: "[\(experts), H] with H ≥ 1 (\(experts) experts found)")
    }
    let hidden = gateShape[1]
    let w1Name = name(.w1, 0)
    guard contains(w1Name) else {
      throw FileError(.missingTensor, file: path, tensor: w1Name, problem: "expert 0's w1 is missing", expected: "w1 [D, \(hidden)]")
    }
    let w1Shape = try info(w1Name).shape
    guard w1Shape.count == 2, w1Shape[0] >= 1, w1Shape[1] == hidden else {
      throw FileError(.shapeMismatch, file: try file(of: w1Name).path, tensor: w1Name, problem: "shape is \(shapeText(w1Shape))",
                      expected: "[D, \(hidden)] with D ≥ 1 (H = \(hidden) from \(gateName))")
    }
    let ffn = w1Shape[0]

    let gated = try allOrNone(.w3, experts: experts, name: name)
    let hasBias = (b1: try allOrNone(.b1, experts: experts, name: name),
                   b2: try allOrNone(.b2, experts: experts, name: name),
                   b3: try allOrNone(.b3, experts: experts, name: name))
    if hasBias.b3 && !gated {
      throw FileError(.malformed, file: path, tensor: name(.b3, 0), problem: "b3 is present without w3",
                      expected: "b3 only for gated experts (with w3)")
    }

    let shapes: [ExpertTensor: [Int]] = [.w1: [ffn, hidden], .w2: [hidden, ffn], .w3: [ffn, hidden],
                                         .b1: [ffn], .b2: [hidden], .b3: [ffn]]
    func stacked(_ tensor: ExpertTensor) throws(FileError) -> [Float] {
      try loadStacked((0..<experts).map { name(tensor, $0) }, shape: shapes[tensor]!)
    }
    let gate = try load(gateName, shape: [experts, hidden])
    let w1 = try stacked(.w1)
    let w2 = try stacked(.w2)
    let w3 = gated ? try stacked(.w3) : nil
    let b1 = hasBias.b1 ? try stacked(.b1) : nil
    let b2 = hasBias.b2 ? try stacked(.b2) : nil
    let b3 = hasBias.b3 ? try stacked(.b3) : nil
    var weights: MoEWeights
    do throws(ConfigError) {
      weights = try MoEWeights(hidden: hidden, ffn: ffn, experts: experts, form: gated ? .gated : .plain,
                               gate: gate, w1: w1, w2: w2, w3: w3, b1: b1, b2: b2, b3: b3)
    } catch {
      throw FileError(.malformed, file: path, problem: "the layer's tensors do not fit together: \(error)")
    }
    weights.round(to: dtype)
    return weights
  }

  /// E: the experts found under the preset's experts prefix, checked to be 0…E−1.
  private func expertCount(preset: NamePreset, prefix: String) throws(FileError) -> Int {
    let expertsPrefix = preset.expertsPrefix(prefix: prefix)
    var found = Set<Int>()
    for name in names where name.hasPrefix(expertsPrefix) {
      let rest = name.dropFirst(expertsPrefix.count)
      guard let dot = rest.firstIndex(of: "."), let index = Self.expertIndex(rest[..<dot]) else { continue }
      found.insert(index)
    }
    let first = preset.name(.w1, expert: 0, prefix: prefix)
    guard let last = found.max() else {
      var hint = "tensors named \(expertsPrefix)<e>.… (preset \(preset.rawValue), prefix '\(prefix)')"
      if !prefix.isEmpty && !prefix.hasSuffix(".") { hint += "; the prefix usually ends with '.'" }
      if let other = NamePreset.allCases.first(where: { $0 != preset && contains($0.gateName(prefix: prefix)) }) {
        hint += "; the checkpoint looks like preset \(other.rawValue)"
      }
      throw FileError(.missingTensor, file: path, tensor: first, problem: "no expert tensors found", expected: hint)
    }
    let experts = last + 1
    if found.count != experts {
      let missing = (0..<experts).first { !found.contains($0) }!
      throw FileError(.missingTensor, file: path, tensor: preset.name(.w1, expert: missing, prefix: prefix),
                      problem: "expert \(missing) is missing while expert \(last) exists",
                      expected: "experts numbered 0…\(last) without gaps")
    }
    return experts
  }

  /// A decimal index as written in tensor names ("0", "17"; no sign, no leading zeros).
  private static func expertIndex(_ text: Substring) -> Int? {
    guard let firstDigit = text.first, firstDigit != "0" || text.count == 1,
      text.utf8.allSatisfy({ $0 >= UInt8(ascii: "0") && $0 <= UInt8(ascii: "9") })
    else { return nil }
    return Int(text)
  }

  /// Whether every expert has `tensor`; throws, naming a missing one, when only some have it.
  private func allOrNone(_ tensor: ExpertTensor, experts: Int, name: (ExpertTensor, Int) -> String) throws(FileError) -> Bool {
    let present = (0..<experts).filter { contains(name(tensor, $0)) }
    if present.isEmpty { return false }
    if present.count == experts { return true }
    let missing = (0..<experts).first { !contains(name(tensor, $0)) }!
    throw FileError(.missingTensor, file: path, tensor: name(tensor, missing),
                    problem: "missing while \(name(tensor, present[0])) exists",
                    expected: "\(tensor.rawValue) for every expert or for none")
  }

  /// The tensors `names`, each of shape `shape`, concatenated in order.
  func loadStacked(_ names: [String], shape: [Int]) throws(FileError) -> [Float] {
    // Every shape is checked before anything is allocated; each tensor's bytes are its own part of
    // its file, so the total is bounded by the files' sizes.
    var parts: [(SafetensorsFile, TensorInfo)] = []
    for name in names {
      let file = try file(of: name)
      let info = try file.info(name)
      try file.check(info, shape: shape)
      parts.append((file, info))
    }
    let each = Checked.product(shape)!
    var values = [Float](repeating: 0, count: each * names.count)
    var failure: FileError?
    values.withUnsafeMutableBufferPointer { buffer in
      do throws(FileError) {
        for (i, (file, info)) in parts.enumerated() {
          try file.read(info, into: UnsafeMutableBufferPointer(rebasing: buffer[(i * each)..<((i + 1) * each)]))
        }
      } catch {
        failure = error
      }
    }
    if let failure { throw failure }
    return values
  }
}

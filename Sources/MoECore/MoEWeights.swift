/// The parameters of one MoE layer, held as fp32 values that the layer's dtype represents exactly.
///
/// Layouts follow PyTorch's `nn.Linear` ([out, in]) with the expert index outermost:
/// gate [E, H], w1 [E, D, H], b1 [E, D], w2 [E, H, D], b2 [E, H], w3 [E, D, H], b3 [E, D].
public struct MoEWeights: Sendable, Equatable {
  public let hidden: Int
  public let ffn: Int
  public let experts: Int
  public let form: ExpertForm
  public var gate: [Float]
  public var w1: [Float]
  public var w2: [Float]
  public var w3: [Float]?
  public var b1: [Float]?
  public var b2: [Float]?
  public var b3: [Float]?

  public init(
    hidden: Int, ffn: Int, experts: Int, form: ExpertForm,
    gate: [Float], w1: [Float], w2: [Float], w3: [Float]? = nil,
    b1: [Float]? = nil, b2: [Float]? = nil, b3: [Float]? = nil
  ) throws(ConfigError) {
    self.hidden = hidden
    self.ffn = ffn
    self.experts = experts
    self.form = form
    self.gate = gate
    self.w1 = w1
    self.w2 = w2
    self.w3 = w3
    self.b1 = b1
    self.b2 = b2
    self.b3 = b3
    try checkShapes()
  }

  public var hasBiases: Bool { b1 != nil || b2 != nil || b3 != nil }

  /// Every tensor's element count, checked against H, D and E.
  public func checkShapes() throws(ConfigError) {
    let (h, d, e) = (hidden, ffn, experts)
    func expect(_ name: String, _ count: Int?, _ shape: [Int]) throws(ConfigError) {
      guard let count else { return }
      let want = shape.reduce(1, *)
      guard count == want else {
        throw ConfigError(field: name, value: "\(count) elements", expected: "shape \(shape) = \(want) elements")
      }
    }
    try expect("gate.weight", gate.count, [e, h])
    try expect("w1", w1.count, [e, d, h])
    try expect("w2", w2.count, [e, h, d])
    try expect("b1", b1?.count, [e, d])
    try expect("b2", b2?.count, [e, h])
    switch form {
    case .plain:
      if w3 != nil || b3 != nil {
        throw ConfigError(field: "w3", value: "present", expected: "no w3/b3 for a plain expert (use the gated form)")
      }
    case .gated:
      guard w3 != nil else { throw ConfigError(field: "w3", value: "missing", expected: "w3 [E, D, H] for a gated expert") }
      try expect("w3", w3?.count, [e, d, h])
      try expect("b3", b3?.count, [e, d])
    }
  }

  /// Checks that these weights fit `config` (H, D, E, form).
  public func check(against config: MoEConfig) throws(ConfigError) {
    if hidden != config.hidden { throw ConfigError(field: "hidden", value: config.hidden, expected: "\(hidden) as in the weights") }
    if ffn != config.ffn { throw ConfigError(field: "ffn", value: config.ffn, expected: "\(ffn) as in the weights") }
    if experts != config.experts { throw ConfigError(field: "experts", value: config.experts, expected: "\(experts) as in the weights") }
    if form != config.expertForm {
      throw ConfigError(field: "expert-form", value: config.expertForm.rawValue, expected: "\(form.rawValue) as in the weights")
    }
  }

  /// Rounds every tensor to the values `dtype` stores.
  public mutating func round(to dtype: DType) {
    gate.round(to: dtype)
    w1.round(to: dtype)
    w2.round(to: dtype)
    w3?.round(to: dtype)
    b1?.round(to: dtype)
    b2?.round(to: dtype)
    b3?.round(to: dtype)
  }
}

extension MoEWeights {
  /// Weights drawn like PyTorch's `nn.Linear` initialisation (uniform in ±1/√fan_in), rounded to the
  /// config's dtype; the same seed gives the same weights on every machine.
  public static func random(_ config: MoEConfig, seed: UInt64) -> MoEWeights {
    var rng = SeededGenerator(seed: seed)
    let (h, d, e) = (config.hidden, config.ffn, config.experts)
    func uniform(_ count: Int, fanIn: Int) -> [Float] {
      let bound = 1 / Float(fanIn).squareRoot()
      var values = [Float](repeating: 0, count: count)
      for i in 0..<count { values[i] = rng.nextUniform(in: -bound...bound) }
      return values
    }
    let gated = config.expertForm == .gated
    let gate = uniform(e * h, fanIn: h)
    let w1 = uniform(e * d * h, fanIn: h)
    let w2 = uniform(e * h * d, fanIn: d)
    let w3 = gated ? uniform(e * d * h, fanIn: h) : nil
    let b1 = config.biases ? uniform(e * d, fanIn: h) : nil
    let b2 = config.biases ? uniform(e * h, fanIn: d) : nil
    let b3 = config.biases && gated ? uniform(e * d, fanIn: h) : nil
    // Shapes are right by construction.
    var weights = try! MoEWeights(
      hidden: h, ffn: d, experts: e, form: config.expertForm,
      gate: gate, w1: w1, w2: w2, w3: w3, b1: b1, b2: b2, b3: b3)
    weights.round(to: config.dtype)
    return weights
  }
}

// A float64 reference of the MoE layer, written from docs/SEMANTICS.md alone (not from the CPU
// backend). It is plain and slow on purpose: one token at a time, one (token, pick) pair at a time,
// every sum in Double. Only the roundings the page prescribes are applied: the intermediate
// activation and the expert outputs are stored values (rounded to the storage dtype), the layer
// output is rounded to the storage dtype, and under `--math tf32` every operand of the expert GEMMs
// is rounded to TF32. The three roundings are written here again from the page (bit arithmetic), so
// that the reference does not lean on MoECore's helpers; the tests check the two against each other.

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import MoECore

enum Float64Reference {
  /// What the layer computes, with the routing spelled out per token.
  struct Result {
    /// [tokens, hidden], values of the storage dtype.
    var output: [Float]
    /// [tokens][k]: the picked experts in pick order.
    var experts: [[Int]]
    /// [tokens][k]: the combine weights (renormalised or raw p) in Double.
    var weights: [[Double]]
    /// [tokens][k]: the slot claimed in the expert's capacity for the token's source group, or -1.
    var slots: [[Int]]
    /// [tokens][E]: the softmax probabilities in Double.
    var probabilities: [[Double]]
    /// Tokens whose picks (set or order) hinge on two probabilities closer than fp32 can tell apart
    /// (but not exactly equal): a backend computing p in fp32 may legitimately pick differently.
    var ambiguousTokens: [Int]
    /// C, or nil when dropless.
    var capacity: Int?
  }

  // MARK: Roundings (docs/SEMANTICS.md §Shapes and storage, §Expert)

  /// IEEE round-to-nearest, ties to even, to bf16 (the upper 16 bits of a Float); NaN stays NaN.
  static func bf16(_ v: Float) -> Float {
    if v.isNaN { return v }
    let bits = v.bitPattern
    let low = bits & 0xFFFF
    let down = bits & 0xFFFF_0000
    let downIsOdd = (down >> 16) & 1 == 1
    // Rounding the magnitude (sign-magnitude bits) is round-to-nearest for either sign; carrying
    // into the exponent gives the next binade or infinity, as IEEE rounding does.
    if low > 0x8000 || (low == 0x8000 && downIsOdd) { return Float(bitPattern: down + 0x1_0000) }
    return Float(bitPattern: down)
  }

  /// IEEE round-to-nearest, ties to even, to binary16 (the standard library's conversion is IEEE).
  static func fp16(_ v: Float) -> Float { Float(Float16(v)) }

  /// TF32: 10 explicit mantissa bits, round to nearest with ties away from zero (`cvt.rna.tf32.f32`).
  static func tf32(_ v: Float) -> Float {
    if !v.isFinite { return v }
    let bits = v.bitPattern
    let low = bits & 0x1FFF
    let down = bits & ~UInt32(0x1FFF)
    if low >= 0x1000 { return Float(bitPattern: down + 0x2000) }
    return Float(bitPattern: down)
  }

  static func store(_ v: Float, _ dtype: DType) -> Float {
    switch dtype {
    case .fp32: return v
    case .bf16: return bf16(v)
    case .fp16: return fp16(v)
    }
  }

  /// A Double result stored: rounded to Float, then to the storage dtype.
  static func store(_ v: Double, _ dtype: DType) -> Float { store(Float(v), dtype) }

  // MARK: Capacity (docs/SEMANTICS.md §Capacity)

  /// C = ⌈f · k · S / E⌉ in Double, with a relative slack of 1e-12 before rounding up.
  static func capacity(factor: Double, topK: Int, tokens: Int, experts: Int) -> Int {
    let exact = factor * Double(topK) * Double(tokens) / Double(experts)
    return Int((exact * (1 - 1e-12)).rounded(.up))
  }

  // MARK: Activation (docs/SEMANTICS.md §Expert, table of φ)

  static func phi(_ v: Double, _ activation: Activation) -> Double {
    switch activation {
    case .relu: return max(0, v)
    case .gelu: return v * 0.5 * (1 + erf(v / 2.0.squareRoot()))
    case .geluTanh: return 0.5 * v * (1 + tanh((2 / Double.pi).squareRoot() * (v + 0.044715 * v * v * v)))
    case .silu: return v / (1 + exp(-v))
    }
  }

  // MARK: The layer

  /// - Parameters:
  ///   - input: [groups · S, H] stored values.
  ///   - groups: source GPUs; group g holds tokens g·S ..< (g+1)·S and has its own capacity.
  static func forward(config: MoEConfig, weights: MoEWeights, input: [Float], groups: Int = 1) -> Result {
    let s = config.tokens, h = config.hidden, e = config.experts, k = config.topK
    let tokens = s * groups
    precondition(input.count == tokens * h)

    var capacity: Int? = nil
    if case .factor(let f) = config.capacity {
      capacity = Self.capacity(factor: f, topK: k, tokens: s, experts: e)
    }

    var result = Result(
      output: [Float](repeating: 0, count: tokens * h),
      experts: [], weights: [], slots: [], probabilities: [], ambiguousTokens: [], capacity: capacity)

    // Gate and top-k, per token.
    for t in 0..<tokens {
      var logits = [Double](repeating: 0, count: e)
      for ex in 0..<e {
        var sum = 0.0
        for c in 0..<h { sum += Double(input[t * h + c]) * Double(weights.gate[ex * h + c]) }
        logits[ex] = sum
      }
      var m = -Double.infinity
      for ex in 0..<e where logits[ex] > m { m = logits[ex] }
      var u = [Double](repeating: 0, count: e)
      var total = 0.0
      for ex in 0..<e {
        u[ex] = exp(logits[ex] - m)
        total += u[ex]
      }
      let p = u.map { $0 / total }
      result.probabilities.append(p)

      var picked = [Bool](repeating: false, count: e)
      var picks: [Int] = []
      for _ in 0..<k {
        var best = -1
        for ex in 0..<e where !picked[ex] {
          if best == -1 || p[ex] > p[best] { best = ex }
        }
        picked[best] = true
        picks.append(best)
      }
      result.experts.append(picks)

      var w = picks.map { p[$0] }
      if config.renormalize {
        var sum = 0.0
        for j in 0..<k { sum += w[j] }
        w = w.map { $0 / sum }
      }
      result.weights.append(w)

      // Ambiguity: the picks depend on the order of the k + 1 largest probabilities.
      let top = p.filter { !$0.isNaN }.sorted(by: >).prefix(min(k + 1, e))
      for (a, b) in zip(top, top.dropFirst()) where a != b && a - b <= 1e-5 * a {
        result.ambiguousTokens.append(t)
        break
      }
    }

    // Capacity: pairs of one source group claim slots in token-major order.
    var claimed = [Int](repeating: 0, count: e)
    for t in 0..<tokens {
      if t % s == 0 { claimed = [Int](repeating: 0, count: e) }
      var slots: [Int] = []
      for j in 0..<k {
        let ex = result.experts[t][j]
        if let capacity, claimed[ex] >= capacity {
          slots.append(-1)
        } else {
          slots.append(claimed[ex])
          claimed[ex] += 1
        }
      }
      result.slots.append(slots)
    }

    // Experts and combine, per token and pick.
    for t in 0..<tokens {
      let x = Array(input[(t * h)..<(t * h + h)])
      var out = [Double](repeating: 0, count: h)
      for j in 0..<k where result.slots[t][j] >= 0 {
        let y = expertOutput(config: config, weights: weights, expert: result.experts[t][j], x: x)
        let w = result.weights[t][j]
        for c in 0..<h { out[c] += w * Double(y[c]) }
      }
      for c in 0..<h { result.output[t * h + c] = store(out[c], config.dtype) }
    }
    return result
  }

  /// y_e(x): the stored expert output (docs/SEMANTICS.md §Expert) for one stored token row.
  static func expertOutput(config: MoEConfig, weights: MoEWeights, expert ex: Int, x: [Float]) -> [Float] {
    let h = config.hidden, d = config.ffn
    let tf32Math = config.math == .tf32
    // An operand of an expert GEMM.
    func operand(_ v: Float) -> Double { Double(tf32Math ? tf32(v) : v) }

    var a = [Float](repeating: 0, count: d)
    for r in 0..<d {
      var h1 = 0.0
      for c in 0..<h { h1 += operand(weights.w1[(ex * d + r) * h + c]) * operand(x[c]) }
      if let b1 = weights.b1 { h1 += Double(b1[ex * d + r]) }
      var act = phi(h1, config.activation)
      if config.expertForm == .gated {
        var h3 = 0.0
        for c in 0..<h { h3 += operand(weights.w3![(ex * d + r) * h + c]) * operand(x[c]) }
        if let b3 = weights.b3 { h3 += Double(b3[ex * d + r]) }
        act *= h3
      }
      a[r] = store(act, config.dtype)
    }
    var y = [Float](repeating: 0, count: h)
    for r in 0..<h {
      var sum = 0.0
      for c in 0..<d { sum += operand(weights.w2[(ex * h + r) * d + c]) * operand(a[c]) }
      if let b2 = weights.b2 { sum += Double(b2[ex * h + r]) }
      y[r] = store(sum, config.dtype)
    }
    return y
  }
}

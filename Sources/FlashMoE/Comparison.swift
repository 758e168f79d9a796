import MoECore

/// How a backend's result compares with the CPU backend's for the same tokens and weights
/// (the GPU verification battery): routing first, then the output on the tokens routed alike.
public struct Comparison: Sendable, Codable {
  /// Relative L2 error ‖gpu − cpu‖ / ‖cpu‖ over the tokens routed alike.
  public var relativeL2: Double
  public var maxAbsolute: Double
  /// Elements that are NaN/inf on one side only (a poisoned element that was never written shows here).
  public var nonFinite: Int
  /// Tokens whose expert choices differ; every one must be a near-tie of the CPU's probabilities.
  public var routingMismatches: Int
  public var nearTieMismatches: Int
  /// Tokens whose picks agree but whose kept/dropped flags differ (must be 0 when no pick differs).
  public var dropMismatches: Int
  public var comparedTokens: Int

  /// The per-dtype bound on the relative L2 error (issue 3: fp32 1e-5, tf32 2e-3, bf16/fp16 1e-2).
  public static func bound(_ config: MoEConfig) -> Double {
    switch (config.dtype, config.math) {
    case (.fp32, .fp32): return 1e-5
    case (.fp32, .tf32): return 2e-3
    default: return 1e-2
    }
  }

  public func passes(_ config: MoEConfig) -> Bool {
    nonFinite == 0 && relativeL2 <= Self.bound(config) && routingMismatches == nearTieMismatches
      && (routingMismatches > 0 || dropMismatches == 0) && comparedTokens > 0
  }

  /// - Parameters:
  ///   - logits: the CPU's gate logits [tokens, E], to tell near-ties from real routing errors.
  public init(config: MoEConfig, cpu: [Float], cpuRouting: Routing, logits: [Float], gpu: [Float], gpuRouting: Routing) {
    let (h, k, e) = (config.hidden, config.topK, config.experts)
    let tokens = cpuRouting.tokens
    var mismatch = [Bool](repeating: false, count: tokens)
    var routingMismatches = 0, nearTies = 0, drops = 0
    var p = [Float](repeating: 0, count: e)
    for t in 0..<tokens {
      let picksDiffer = (0..<k).contains { cpuRouting.expert[t * k + $0] != gpuRouting.expert[t * k + $0] }
      if picksDiffer {
        routingMismatches += 1
        mismatch[t] = true
        Router.softmax(logits, row: t, width: e, into: &p)
        let sorted = p.sorted(by: >)
        // A near-tie: two of the k+1 largest probabilities within 1e-4 (relative) of each other.
        let limit = min(k + 1, e)
        if (1..<max(limit, 1)).contains(where: { sorted[$0 - 1] - sorted[$0] <= 1e-4 * sorted[$0 - 1] }) { nearTies += 1 }
      } else if (0..<k).contains(where: { cpuRouting.isKept(t * k + $0) != gpuRouting.isKept(t * k + $0) }) {
        drops += 1
        mismatch[t] = true
      }
    }
    var diff2 = 0.0, ref2 = 0.0, maxAbs = 0.0, nonFinite = 0, compared = 0
    for t in 0..<tokens where !mismatch[t] {
      compared += 1
      for c in 0..<h {
        let a = Double(gpu[t * h + c]), b = Double(cpu[t * h + c])
        if a.isFinite != b.isFinite { nonFinite += 1; continue }
        if !b.isFinite { continue }
        diff2 += (a - b) * (a - b)
        ref2 += b * b
        maxAbs = max(maxAbs, abs(a - b))
      }
    }
    relativeL2 = ref2 > 0 ? (diff2 / ref2).squareRoot() : diff2.squareRoot()
    maxAbsolute = maxAbs
    self.nonFinite = nonFinite
    self.routingMismatches = routingMismatches
    nearTieMismatches = nearTies
    dropMismatches = drops
    comparedTokens = compared
  }
}

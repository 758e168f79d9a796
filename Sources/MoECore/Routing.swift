#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// The gate's decision for every (token, pick) pair: the routing table Tφ and affinities Gφ of the
/// paper's Algorithm 1, stored pair-major (`pair = token · k + pick`).
public struct Routing: Sendable, Equatable {
  public let tokens: Int
  public let experts: Int
  public let topK: Int
  /// Expert of each pair; picks of a token are ordered by descending probability.
  public var expert: [Int32]
  /// Combine weight of each pair (renormalised or raw probability).
  public var weight: [Float]
  /// Slot the pair claimed in its expert's capacity for its source GPU, or -1 if dropped.
  public var slot: [Int32]

  public init(tokens: Int, experts: Int, topK: Int, expert: [Int32], weight: [Float], slot: [Int32]) {
    self.tokens = tokens
    self.experts = experts
    self.topK = topK
    self.expert = expert
    self.weight = weight
    self.slot = slot
  }

  public var pairs: Int { tokens * topK }
  public func isKept(_ pair: Int) -> Bool { slot[pair] >= 0 }
  public var keptPairs: Int { slot.reduce(0) { $0 + ($1 >= 0 ? 1 : 0) } }

  /// Kept pairs per expert, in token-major order (the order their slots were claimed in).
  public func pairsByExpert() -> [[Int]] {
    var lists = [[Int]](repeating: [], count: experts)
    for pair in 0..<pairs where slot[pair] >= 0 { lists[Int(expert[pair])].append(pair) }
    return lists
  }
}

/// The gate's routing rule, written once (docs/SEMANTICS.md §Gate): softmax in fp32, top-k with ties
/// to the lower expert, weights, then capacity slots claimed in token-major order per source GPU.
public enum Router {
  /// - Parameters:
  ///   - logits: [tokens, experts] row-major, fp32.
  ///   - groups: source GPUs; tokens are split into `groups` equal consecutive blocks and each block
  ///     has its own capacity per expert.
  public static func route(
    logits: [Float], tokens: Int, experts: Int, topK: Int, renormalize: Bool,
    capacity: Int?, groups: Int = 1
  ) -> Routing {
    precondition(logits.count == tokens * experts && tokens % groups == 0)
    var expert = [Int32](repeating: 0, count: tokens * topK)
    var weight = [Float](repeating: 0, count: tokens * topK)
    var slot = [Int32](repeating: -1, count: tokens * topK)
    var probabilities = [Float](repeating: 0, count: experts)
    var picked = [Bool](repeating: false, count: experts)
    var claimed = [Int](repeating: 0, count: experts)
    let tokensPerGroup = tokens / groups

    for token in 0..<tokens {
      if token % tokensPerGroup == 0 { for e in 0..<experts { claimed[e] = 0 } }
      softmax(logits, row: token, width: experts, into: &probabilities)
      for e in 0..<experts { picked[e] = false }
      var sum: Float = 0
      for j in 0..<topK {
        // Strictly greater keeps the lower index on ties; NaN never wins, so a token whose
        // probabilities are all NaN takes the lowest unpicked experts.
        var best = -1
        for e in 0..<experts where !picked[e] {
          if best < 0 || probabilities[e] > probabilities[best] { best = e }
        }
        picked[best] = true
        expert[token * topK + j] = Int32(best)
        weight[token * topK + j] = probabilities[best]
        sum += probabilities[best]
      }
      if renormalize {
        for j in 0..<topK { weight[token * topK + j] /= sum }
      }
      for j in 0..<topK {
        let e = Int(expert[token * topK + j])
        if let capacity, claimed[e] >= capacity { continue }
        slot[token * topK + j] = Int32(claimed[e])
        claimed[e] += 1
      }
    }
    return Routing(tokens: tokens, experts: experts, topK: topK, expert: expert, weight: weight, slot: slot)
  }

  /// p = exp(l − max l) / Σ exp(l − max l), summed in expert order.
  @inlinable
  public static func softmax(_ logits: [Float], row: Int, width: Int, into p: inout [Float]) {
    let base = row * width
    var maximum = -Float.infinity
    for e in 0..<width where logits[base + e] > maximum { maximum = logits[base + e] }
    var sum: Float = 0
    for e in 0..<width {
      let v = expf(logits[base + e] - maximum)
      p[e] = v
      sum += v
    }
    for e in 0..<width { p[e] /= sum }
  }
}

/// How many values of a tensor are NaN, +∞ or −∞, and how many of its rows hold at least one.
/// Bad numbers are not errors: they flow through the layer by IEEE arithmetic (docs/SEMANTICS.md
/// §Bad numbers), and this is how a run reports that they did.
public struct NonFinite: Sendable, Codable, Equatable, CustomStringConvertible {
  public var nan = 0
  public var positiveInfinity = 0
  public var negativeInfinity = 0
  /// Rows (tokens; experts for weights) with at least one non-finite value.
  public var rows = 0

  public init(_ values: [Float], rowWidth: Int) {
    let width = max(rowWidth, 1)
    var rowHit = false
    for (i, v) in values.enumerated() {
      if i % width == 0 { rowHit = false }
      guard !v.isFinite else { continue }
      if v.isNaN { nan += 1 } else if v > 0 { positiveInfinity += 1 } else { negativeInfinity += 1 }
      if !rowHit { rows += 1; rowHit = true }
    }
  }

  public var count: Int { nan + positiveInfinity + negativeInfinity }
  public var isEmpty: Bool { count == 0 }

  public var description: String {
    "\(nan) NaN, \(positiveInfinity) +inf, \(negativeInfinity) -inf in \(rows) row(s)"
  }
}

extension MoEWeights {
  /// Non-finite values over every tensor of the layer; `rows` counts the experts holding one (and
  /// the gate as one more row when it does). One pass over each tensor.
  public var nonFinite: NonFinite {
    var total = NonFinite([], rowWidth: 1)
    var expertHit = [Bool](repeating: false, count: experts)
    var gateHit = false
    func scan(_ values: [Float]?, perExpert: Int?) {
      guard let values else { return }
      for (i, v) in values.enumerated() where !v.isFinite {
        if v.isNaN { total.nan += 1 } else if v > 0 { total.positiveInfinity += 1 } else { total.negativeInfinity += 1 }
        if let perExpert { expertHit[i / perExpert] = true } else { gateHit = true }
      }
    }
    scan(gate, perExpert: nil)
    scan(w1, perExpert: hidden * ffn)
    scan(w2, perExpert: hidden * ffn)
    scan(w3, perExpert: hidden * ffn)
    scan(b1, perExpert: ffn)
    scan(b2, perExpert: hidden)
    scan(b3, perExpert: ffn)
    total.rows = expertHit.filter { $0 }.count + (gateHit ? 1 : 0)
    return total
  }
}

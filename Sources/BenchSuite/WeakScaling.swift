import MoECore

/// Weak scaling: the work per GPU is fixed, so ideal scaling keeps the latency flat and the
/// efficiency T(ref) / T(N) at 1.
public enum WeakScaling {
  /// T(`reference`) / T(N) for every N in `latencies` (GPU count → latency); empty when the
  /// reference count was not measured.
  public static func efficiency(_ latencies: [Int: Double], reference: Int) -> [Int: Double] {
    guard let base = latencies[reference], base > 0 else { return [:] }
    return latencies.filter { $0.value > 0 }.mapValues { base / $0 }
  }

  /// Fills the efficiency fields of the GPU sweep's points, per dtype, for FlashMoE and the
  /// baseline alike.
  public static func annotate(_ results: inout [PointResult]) {
    let dtypes = results.map(\.point.dtype).reduce(into: [DType]()) { if !$0.contains($1) { $0.append($1) } }
    for dtype in dtypes {
      let indices = results.indices.filter { results[$0].point.dtype == dtype && results[$0].sweeps.contains(.gpus) }
      func latencies(_ value: (PointResult) -> Double?) -> [Int: Double] {
        var map: [Int: Double] = [:]
        for i in indices { if let v = value(results[i]) { map[results[i].point.gpus] = v } }
        return map
      }
      let ours = latencies { $0.flashmoe?.medianMs }, theirs = latencies(\.baselineMs)
      let e1 = efficiency(ours, reference: 1), e2 = efficiency(ours, reference: 2)
      let b1 = efficiency(theirs, reference: 1), b2 = efficiency(theirs, reference: 2)
      for i in indices {
        let p = results[i].point.gpus
        results[i].efficiency = e1[p]
        results[i].efficiencyVs2 = e2[p]
        results[i].baselineEfficiency = b1[p]
        results[i].baselineEfficiencyVs2 = b2[p]
      }
    }
  }
}

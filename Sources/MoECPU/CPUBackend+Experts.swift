import MoECore

extension CPUBackend {
  /// Dispatch (group kept pairs by expert), the expert FFNs as grouped GEMMs with fused epilogues,
  /// and the combine in pick order.
  func experts(config: MoEConfig, weights: MoEWeights, input: [Float], routing: Routing) -> [Float] {
    let (h, d, k) = (config.hidden, config.ffn, config.topK)
    let plan = ExpertRows(routing: routing)
    let rows = plan.rows
    let tf32 = config.math == .tf32
    let dtype = config.dtype
    let activation = config.activation
    let gated = config.expertForm == .gated

    let xs = Workspace(rows * h)
    let hidden1 = Workspace(rows * d)
    let hidden3 = Workspace(gated ? rows * d : 0)
    let ys = Workspace(rows * h)
    defer { xs.free(); hidden1.free(); hidden3.free(); ys.free() }

    // Dispatch: each kept pair's token row, rounded to TF32 when the GEMMs take TF32 operands.
    input.withUnsafeBufferPointer { x in
      let x = UncheckedBox(x)
      parallelChunks(rows, threads: threads, minimumChunk: 16) { range in
        for row in range {
          let source = x.value.baseAddress! + (plan.pairOfRow[row] / k) * h
          let target = xs.pointer + row * h
          if tf32 {
            for c in 0..<h { target[c] = source[c].roundedToTF32 }
          } else {
            target.update(from: source, count: h)
          }
        }
      }
    }

    let w1 = tf32 ? weights.w1.map(\.roundedToTF32) : weights.w1
    let w2 = tf32 ? weights.w2.map(\.roundedToTF32) : weights.w2
    let w3 = tf32 ? weights.w3?.map(\.roundedToTF32) : weights.w3
    let b1 = weights.b1, b2 = weights.b2, b3 = weights.b3
    let active = plan.activeExperts

    // GEMM0 (and the gated form's W3 GEMM): h = x · Wᵀ; the W1 epilogue adds b1, applies φ, multiplies
    // by (h3 + b3) when gated, and rounds the intermediate to the storage dtype.
    if let w3 {
      w3.withUnsafeBufferPointer { w3p in
        gemmNT(plan.problems(active, a: xs.pointer, weights: w3p.baseAddress!, n: d, k: h, c: hidden3.pointer), threads: threads)
      }
    }
    w1.withUnsafeBufferPointer { w1p in
      let problems = plan.problems(active, a: xs.pointer, weights: w1p.baseAddress!, n: d, k: h, c: hidden1.pointer)
      gemmNT(problems, threads: threads) { problem, tileRows, tileCols in
        let e = active[problem]
        let base = plan.offset(e)
        for r in tileRows {
          let row = (base + r) * d
          for c in tileCols {
            var v = hidden1.pointer[row + c] + (b1?[e * d + c] ?? 0)
            v = activation.apply(v)
            if gated { v *= hidden3.pointer[row + c] + (b3?[e * d + c] ?? 0) }
            v = v.rounded(to: dtype)
            hidden1.pointer[row + c] = tf32 ? v.roundedToTF32 : v
          }
        }
      }
    }

    // GEMM1: y = a · W2ᵀ + b2, rounded to the storage dtype.
    w2.withUnsafeBufferPointer { w2p in
      let problems = plan.problems(active, a: hidden1.pointer, weights: w2p.baseAddress!, n: h, k: d, c: ys.pointer)
      gemmNT(problems, threads: threads) { problem, tileRows, tileCols in
        let e = active[problem]
        let base = plan.offset(e)
        for r in tileRows {
          let row = (base + r) * h
          for c in tileCols {
            ys.pointer[row + c] = (ys.pointer[row + c] + (b2?[e * h + c] ?? 0)).rounded(to: dtype)
          }
        }
      }
    }

    // Combine: out_i = Σ_j w_j · y_j over kept picks, in pick order, then rounded.
    var output = [Float](repeating: 0, count: routing.tokens * h)
    output.withUnsafeMutableBufferPointer { out in
      let out = SharedPointer(out.baseAddress!)
      parallelChunks(routing.tokens, threads: threads, minimumChunk: 16) { range in
        for token in range {
          let target = out.base + token * h
          for j in 0..<k {
            let row = plan.rowOfPair[token * k + j]
            guard row >= 0 else { continue }
            let w = routing.weight[token * k + j]
            let y = ys.pointer + row * h
            for c in 0..<h { target[c] += w * y[c] }
          }
          if dtype != .fp32 { for c in 0..<h { target[c] = target[c].rounded(to: dtype) } }
        }
      }
    }
    return output
  }
}

/// Where each kept pair sits once pairs are grouped by expert: expert e owns rows
/// offset(e) ..< offset(e) + count(e), in the order the pairs claimed their slots.
struct ExpertRows: Sendable {
  let offsets: [Int]
  let pairOfRow: [Int]
  /// Row of each pair, -1 for a dropped pair.
  let rowOfPair: [Int]

  init(routing: Routing) {
    var counts = [Int](repeating: 0, count: routing.experts)
    for pair in 0..<routing.pairs where routing.slot[pair] >= 0 { counts[Int(routing.expert[pair])] += 1 }
    var offsets = [Int](repeating: 0, count: routing.experts + 1)
    for e in 0..<routing.experts { offsets[e + 1] = offsets[e] + counts[e] }
    var next = Array(offsets.dropLast())
    var pairOfRow = [Int](repeating: 0, count: offsets[routing.experts])
    var rowOfPair = [Int](repeating: -1, count: routing.pairs)
    for pair in 0..<routing.pairs where routing.slot[pair] >= 0 {
      let e = Int(routing.expert[pair])
      pairOfRow[next[e]] = pair
      rowOfPair[pair] = next[e]
      next[e] += 1
    }
    self.offsets = offsets
    self.pairOfRow = pairOfRow
    self.rowOfPair = rowOfPair
  }

  var rows: Int { offsets.last! }
  func offset(_ e: Int) -> Int { offsets[e] }
  func count(_ e: Int) -> Int { offsets[e + 1] - offsets[e] }
  /// One NT GEMM per expert in `active`: its rows of `a` (width k) times its [n, k] block of
  /// `weights`, into its rows of `c` (width n).
  func problems(
    _ active: [Int], a: UnsafeMutablePointer<Float>, weights: UnsafePointer<Float>, n: Int, k: Int,
    c: UnsafeMutablePointer<Float>
  ) -> [GEMMProblem] {
    active.map { e in
      GEMMProblem(
        m: count(e), n: n, k: k, a: a + offset(e) * k, lda: k, b: weights + e * n * k, ldb: k,
        c: c + offset(e) * n, ldc: n)
    }
  }

  /// Experts with at least one kept pair.
  var activeExperts: [Int] { (0..<offsets.count - 1).filter { count($0) > 0 } }
}

/// A scratch fp32 buffer shared by the worker threads (each writes its own rows or tiles).
struct Workspace: @unchecked Sendable {
  let pointer: UnsafeMutablePointer<Float>
  init(_ count: Int) {
    pointer = .allocate(capacity: max(count, 1))
    pointer.initialize(repeating: 0, count: max(count, 1))
  }
  func free() { pointer.deallocate() }
}

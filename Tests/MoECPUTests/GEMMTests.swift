import MoECore
import Testing

@testable import MoECPU

#if canImport(Glibc)
import Glibc
#endif

/// Operands of one NT problem with their own storage, possibly strided (ld > logical width).
private final class GEMMCase {
  let m: Int, n: Int, k: Int
  let lda: Int, ldb: Int, ldc: Int
  let a: UnsafeMutablePointer<Float>, b: UnsafeMutablePointer<Float>
  /// C, prefilled with NaN so a GEMM that accumulates instead of overwriting is caught; padding
  /// columns (ldc > n) must stay NaN.
  let c: UnsafeMutablePointer<Float>
  let cCount: Int

  init(m: Int, n: Int, k: Int, pad: Int = 0, seed: UInt64) {
    self.m = m; self.n = n; self.k = k
    lda = k + pad; ldb = k + 2 * pad; ldc = n + 3 * pad
    var g = SeededGenerator(seed: seed)
    a = .allocate(capacity: max(m, 1) * lda)
    for i in 0..<(max(m, 1) * lda) { a[i] = g.nextUnit() * 2 - 1 }
    b = .allocate(capacity: n * ldb)
    for i in 0..<(n * ldb) { b[i] = g.nextUnit() * 2 - 1 }
    cCount = max(m * ldc, 1)
    c = .allocate(capacity: cCount)
    c.initialize(repeating: .nan, count: cCount)
  }

  deinit {
    a.deallocate()
    b.deallocate()
    c.deallocate()
  }

  func reset() { c.update(repeating: .nan, count: cCount) }

  /// Builds the problem; its pointers are valid while `self` lives (keep it alive past the GEMM).
  func problem() -> GEMMProblem {
    GEMMProblem(m: m, n: n, k: k, a: a, lda: lda, b: b, ldb: ldb, c: c, ldc: ldc)
  }

  /// Float64 reference and the bound Σ|a||b| per element.
  func reference() -> (ref: [Double], bound: [Double]) {
    var ref = [Double](repeating: 0, count: m * n)
    var bound = [Double](repeating: 0, count: m * n)
    for i in 0..<m {
      for j in 0..<n {
        var s = 0.0, t = 0.0
        for p in 0..<k {
          let x = Double(a[i * lda + p]) * Double(b[j * ldb + p])
          s += x
          t += abs(x)
        }
        ref[i * n + j] = s
        bound[i * n + j] = t
      }
    }
    return (ref, bound)
  }

  func result() -> [Float] {
    var out = [Float](repeating: 0, count: m * n)
    for i in 0..<m { for j in 0..<n { out[i * n + j] = c[i * ldc + j] } }
    return out
  }

  /// Checks C against the reference and that C's padding columns were not written.
  func check(_ label: String, sourceLocation: SourceLocation = #_sourceLocation) {
    let (ref, bound) = reference()
    var bad = 0
    var firstBad = ""
    for i in 0..<m {
      for j in 0..<n {
        let v = c[i * ldc + j]
        let e = abs(Double(v) - ref[i * n + j])
        if !(e <= 1e-5 * bound[i * n + j]) {
          if bad == 0 { firstBad = "(\(i),\(j)): got \(v), want \(ref[i * n + j])" }
          bad += 1
        }
      }
      for j in n..<ldc where !c[i * ldc + j].isNaN {
        if bad == 0 { firstBad = "padding (\(i),\(j)) written" }
        bad += 1
      }
    }
    #expect(bad == 0, "\(label) m=\(m) n=\(n) k=\(k): \(bad) bad elements, first \(firstBad)", sourceLocation: sourceLocation)
  }
}

struct GEMMShape: Sendable, CustomTestStringConvertible {
  var m: Int, n: Int, k: Int, pad: Int = 0
  var testDescription: String { "\(m)×\(n)×\(k)" + (pad > 0 ? " pad \(pad)" : "") }
}

private func fmt1(_ x: Double) -> String { "\((x * 10).rounded() / 10)" }

@Suite struct GEMMTests {
  static let sizes = [1, 5, 7, 13, 17, 100, 257]

  /// Every edge case of MR = 6, NR = 16, KC = 256 with a few larger shapes: several KC blocks
  /// (k = 513, 600), several row tiles (m > 144), several column tiles (k·n over the packed-B
  /// budget, n over NC).
  static let shapes: [GEMMShape] = {
    var s: [GEMMShape] = []
    for (i, m) in sizes.enumerated() {
      for (j, n) in sizes.enumerated() {
        // k walks through all sizes as m and n do, so each size meets each other size.
        s.append(GEMMShape(m: m, n: n, k: sizes[(i + 2 * j) % sizes.count]))
      }
    }
    s += [
      GEMMShape(m: 1, n: 1, k: 1), GEMMShape(m: 6, n: 16, k: 256), GEMMShape(m: 12, n: 32, k: 512),
      GEMMShape(m: 300, n: 40, k: 513), GEMMShape(m: 150, n: 1100, k: 20),
      GEMMShape(m: 9, n: 1040, k: 2100), GEMMShape(m: 145, n: 33, k: 600),
      GEMMShape(m: 257, n: 257, k: 257, pad: 3), GEMMShape(m: 13, n: 100, k: 17, pad: 5),
      GEMMShape(m: 100, n: 7, k: 300, pad: 1),
    ]
    return s
  }()

  @Test(arguments: shapes)
  func matchesFloat64Reference(_ s: GEMMShape) {
    let t = GEMMCase(m: s.m, n: s.n, k: s.k, pad: s.pad, seed: UInt64(s.m * 1_000_003 + s.n * 1009 + s.k))
    gemmNT([t.problem()], threads: 1)
    t.check("threads=1")
    let one = t.result()
    for threads in [2, 3] {
      t.reset()
      gemmNT([t.problem()], threads: threads)
      t.check("threads=\(threads)")
      let many = t.result()
      #expect(
        one.map(\.bitPattern) == many.map(\.bitPattern), "threads=1 and threads=\(threads) differ bitwise")
    }
  }

  /// A grouped call: several problems of different shapes, some strided, one with m = 0.
  @Test(arguments: [1, 2, 4])
  func grouped(threads: Int) {
    let shapes: [GEMMShape] = [
      GEMMShape(m: 17, n: 100, k: 257), GEMMShape(m: 0, n: 64, k: 32),
      GEMMShape(m: 100, n: 13, k: 7, pad: 2), GEMMShape(m: 1, n: 257, k: 300),
      GEMMShape(m: 0, n: 1, k: 1), GEMMShape(m: 200, n: 17, k: 100, pad: 1), GEMMShape(m: 5, n: 5, k: 5),
    ]
    let cases = shapes.enumerated().map { i, s in
      GEMMCase(m: s.m, n: s.n, k: s.k, pad: s.pad, seed: 77 + UInt64(i))
    }
    gemmNT(cases.map { $0.problem() }, threads: threads)
    for c in cases { c.check("grouped threads=\(threads)") }

    // Bitwise the same as each problem alone on one thread.
    let grouped = cases.map { $0.result() }
    for (i, c) in cases.enumerated() {
      c.reset()
      gemmNT([c.problem()], threads: 1)
      #expect(grouped[i].map(\.bitPattern) == c.result().map(\.bitPattern), "problem \(i)")
    }
  }

  /// The epilogue sees every C element of every problem exactly once, with its final value.
  @Test(arguments: [1, 2])
  func epilogueCoversEachElementOnceWithFinalValues(threads: Int) {
    let shapes: [GEMMShape] = [
      GEMMShape(m: 300, n: 40, k: 513), GEMMShape(m: 0, n: 16, k: 16), GEMMShape(m: 7, n: 1100, k: 13, pad: 2),
      GEMMShape(m: 1, n: 1, k: 1), GEMMShape(m: 9, n: 1040, k: 2100),
    ]
    let cases = shapes.enumerated().map { i, s in
      GEMMCase(m: s.m, n: s.n, k: s.k, pad: s.pad, seed: 500 + UInt64(i))
    }
    // The epilogue may run concurrently, but on disjoint tiles: plain per-element writes are safe.
    let counts = cases.map { c in UnsafeMutablePointer<Int32>.allocate(capacity: max(1, c.m * c.n)) }
    let copies = cases.map { c in UnsafeMutablePointer<Float>.allocate(capacity: max(1, c.m * c.n)) }
    defer {
      for c in counts { c.deallocate() }
      for c in copies { c.deallocate() }
    }
    for (i, c) in cases.enumerated() {
      counts[i].initialize(repeating: 0, count: max(1, c.m * c.n))
      copies[i].initialize(repeating: .nan, count: max(1, c.m * c.n))
    }
    let problems = cases.map { $0.problem() }
    gemmNT(problems, threads: threads) { p, rows, cols in
      let q = problems[p]
      let copy = copies[p]
      for i in rows {
        for j in cols {
          counts[p][i * q.n + j] += 1
          copy[i * q.n + j] = q.c[i * q.ldc + j]
          q.c[i * q.ldc + j] = -1  // The epilogue owns its tile: this must survive.
        }
      }
    }
    for (i, c) in cases.enumerated() {
      let n = c.m * c.n
      let covered = (0..<n).allSatisfy { counts[i][$0] == 1 }
      #expect(covered, "problem \(i): some element's epilogue count is not 1")
      // The copies were taken in the epilogue: they must be the final values.
      for r in 0..<c.m { for j in 0..<c.n { c.c[r * c.ldc + j] = copies[i][r * c.n + j] } }
      c.check("epilogue copy threads=\(threads)")
    }
  }

  /// An epilogue that writes C in place (here: x ↦ 2x + 1) keeps its result.
  @Test func epilogueTransformsInPlace() {
    let t = GEMMCase(m: 50, n: 70, k: 300, seed: 9)
    gemmNT([t.problem()], threads: 1)
    let plain = t.result()
    t.reset()
    let q = t.problem()
    gemmNT([q], threads: 2) { _, rows, cols in
      for i in rows { for j in cols { q.c[i * q.ldc + j] = 2 * q.c[i * q.ldc + j] + 1 } }
    }
    #expect(t.result() == plain.map { 2 * $0 + 1 })
    withExtendedLifetime(t) {}
  }

  /// GFLOP/s of the two reference shapes; runs only with FLASHMOE_GEMM_BENCH=1 and asserts nothing.
  @Test(.enabled(if: getenv("FLASHMOE_GEMM_BENCH").map { String(cString: $0) == "1" } ?? false))
  func benchmark() {
    func bench(_ label: String, count: Int, m: Int, n: Int, k: Int) {
      let cases = (0..<count).map { GEMMCase(m: m, n: n, k: k, seed: 1 + UInt64($0)) }
      let problems = cases.map { $0.problem() }
      let flops = 2.0 * Double(count * m * n * k)
      for threads in [1, 2] {
        gemmNT(problems, threads: threads)  // warm-up
        var best = Double.infinity
        for _ in 0..<5 {
          let start = ContinuousClock.now
          gemmNT(problems, threads: threads)
          let d = ContinuousClock.now - start
          best = min(best, Double(d.components.seconds) + Double(d.components.attoseconds) * 1e-18)
        }
        withExtendedLifetime(cases) {}
        print("GEMM bench \(label) threads=\(threads): \(fmt1(flops / best / 1e9)) GFLOP/s (best of 5, \(fmt1(best * 1e3)) ms)")
      }
    }
    bench("1×(4096×1024×1024)", count: 1, m: 4096, n: 1024, k: 1024)
    bench("8×(1024×1024×1024)", count: 8, m: 1024, n: 1024, k: 1024)
  }
}

// The inner pieces of the CPU GEMM (see GEMM.swift): operand packing and the 6×16 micro-kernel.
//
// This target is compiled with `-target-cpu haswell`, so SIMD8<Float> is one ymm register,
// `addingProduct` is one vfmadd231ps and `SIMD8(repeating:)` from memory is one vbroadcastss.

/// Rows of C per micro-tile (the A panel's height).
let gemmMR = 6
/// Columns of C per micro-tile (the B panel's width: two SIMD8<Float>).
let gemmNR = 16

// MARK: - Packing

/// Packs rows `0..<rows` (rows ≤ MR) and columns `0..<kc` of A (row stride lda) into one MR-tall
/// panel: `dst[kk*MR + r] = A[r, kk]`, rows `rows..<MR` zero.
@inline(__always)
func gemmPackAPanel(
  _ a: UnsafePointer<Float>, lda: Int, rows: Int, kc: Int, into dst: UnsafeMutablePointer<Float>
) {
  if rows == gemmMR {
    let a0 = a, a1 = a + lda, a2 = a + 2 * lda, a3 = a + 3 * lda, a4 = a + 4 * lda, a5 = a + 5 * lda
    var d = dst
    for kk in 0..<kc {
      d[0] = a0[kk]; d[1] = a1[kk]; d[2] = a2[kk]
      d[3] = a3[kk]; d[4] = a4[kk]; d[5] = a5[kk]
      d += gemmMR
    }
  } else {
    for kk in 0..<kc {
      let d = dst + kk * gemmMR
      for r in 0..<gemmMR { d[r] = r < rows ? a[r * lda + kk] : 0 }
    }
  }
}

/// Packs rows `0..<cols` (cols ≤ NR) of B (row stride ldb; a row of B is a column of C) and
/// `0..<kc` of its columns into one NR-wide panel: `dst[kk*NR + j] = B[j, kk]`, `j ≥ cols` zero.
@inline(__always)
func gemmPackBPanel(
  _ b: UnsafePointer<Float>, ldb: Int, cols: Int, kc: Int, into dst: UnsafeMutablePointer<Float>
) {
  if cols == gemmNR {
    // Eight k at a time: two 8×8 transposes in registers (rows 0..<8 and 8..<16 of the panel).
    var kk = 0
    while kk + 8 <= kc {
      gemmTranspose8x8(b + kk, ld: ldb, into: dst + kk * gemmNR, ldd: gemmNR)
      gemmTranspose8x8(b + 8 * ldb + kk, ld: ldb, into: dst + kk * gemmNR + 8, ldd: gemmNR)
      kk += 8
    }
    while kk < kc {
      let d = dst + kk * gemmNR
      for j in 0..<gemmNR { d[j] = b[j * ldb + kk] }
      kk += 1
    }
  } else {
    for kk in 0..<kc {
      let d = dst + kk * gemmNR
      for j in 0..<gemmNR { d[j] = j < cols ? b[j * ldb + kk] : 0 }
    }
  }
}

/// dst[c * ldd + r] = src[r * ld + c] for r, c in 0..<8. `dst` must be 32-byte aligned
/// (`ldd` a multiple of 8). Three perfect unshuffles of the 64 elements rotate the 6-bit index
/// (r, c) → (c, r); LLVM lowers each one to a few shuffles and blends.
@inline(__always)
func gemmTranspose8x8(
  _ src: UnsafePointer<Float>, ld: Int, into dst: UnsafeMutablePointer<Float>, ldd: Int
) {
  typealias V = SIMD8<Float>
  let s = UnsafeRawPointer(src)
  let rowBytes = ld * MemoryLayout<Float>.stride
  var v0 = s.loadUnaligned(as: V.self)
  var v1 = s.loadUnaligned(fromByteOffset: rowBytes, as: V.self)
  var v2 = s.loadUnaligned(fromByteOffset: 2 * rowBytes, as: V.self)
  var v3 = s.loadUnaligned(fromByteOffset: 3 * rowBytes, as: V.self)
  var v4 = s.loadUnaligned(fromByteOffset: 4 * rowBytes, as: V.self)
  var v5 = s.loadUnaligned(fromByteOffset: 5 * rowBytes, as: V.self)
  var v6 = s.loadUnaligned(fromByteOffset: 6 * rowBytes, as: V.self)
  var v7 = s.loadUnaligned(fromByteOffset: 7 * rowBytes, as: V.self)
  for _ in 0..<3 {
    let w0 = V(lowHalf: v0.evenHalf, highHalf: v1.evenHalf)
    let w1 = V(lowHalf: v2.evenHalf, highHalf: v3.evenHalf)
    let w2 = V(lowHalf: v4.evenHalf, highHalf: v5.evenHalf)
    let w3 = V(lowHalf: v6.evenHalf, highHalf: v7.evenHalf)
    let w4 = V(lowHalf: v0.oddHalf, highHalf: v1.oddHalf)
    let w5 = V(lowHalf: v2.oddHalf, highHalf: v3.oddHalf)
    let w6 = V(lowHalf: v4.oddHalf, highHalf: v5.oddHalf)
    let w7 = V(lowHalf: v6.oddHalf, highHalf: v7.oddHalf)
    v0 = w0; v1 = w1; v2 = w2; v3 = w3; v4 = w4; v5 = w5; v6 = w6; v7 = w7
  }
  let d = UnsafeMutableRawPointer(dst)
  let dBytes = ldd * MemoryLayout<Float>.stride
  d.storeBytes(of: v0, as: V.self)
  d.storeBytes(of: v1, toByteOffset: dBytes, as: V.self)
  d.storeBytes(of: v2, toByteOffset: 2 * dBytes, as: V.self)
  d.storeBytes(of: v3, toByteOffset: 3 * dBytes, as: V.self)
  d.storeBytes(of: v4, toByteOffset: 4 * dBytes, as: V.self)
  d.storeBytes(of: v5, toByteOffset: 5 * dBytes, as: V.self)
  d.storeBytes(of: v6, toByteOffset: 6 * dBytes, as: V.self)
  d.storeBytes(of: v7, toByteOffset: 7 * dBytes, as: V.self)
}

// MARK: - Micro-kernel

/// C[0..<rows, 0..<cols] (=|+=) Ã·B̃ for one MR-tall packed A panel and one NR-wide packed B
/// panel over `kc` k-steps. The 12 accumulators start at zero and sum k in order; the result is
/// then stored (`accumulate == false`) or added to C (`c = c + acc`). Full and edge tiles round
/// the same way, so an element's value does not depend on where the tile borders fall.
/// `b` must be 32-byte aligned (packed panels are).
@inline(never)
func gemmMicroKernel6x16(
  kc: Int, a: UnsafePointer<Float>, b: UnsafePointer<Float>,
  c: UnsafeMutablePointer<Float>, ldc: Int, rows: Int, cols: Int, accumulate: Bool
) {
  typealias V = SIMD8<Float>
  var c00 = V(), c01 = V(), c10 = V(), c11 = V(), c20 = V(), c21 = V()
  var c30 = V(), c31 = V(), c40 = V(), c41 = V(), c50 = V(), c51 = V()
  var pa = a
  var pb = UnsafeRawPointer(b)
  // One k step: two B vectors, six A broadcasts, twelve FMAs (15 of the 16 ymm registers).
  @inline(__always) func step(_ pa: UnsafePointer<Float>, _ pb: UnsafeRawPointer) {
    let b0 = pb.load(as: V.self)
    let b1 = pb.load(fromByteOffset: 32, as: V.self)
    var av = V(repeating: pa[0])
    c00 = c00.addingProduct(av, b0); c01 = c01.addingProduct(av, b1)
    av = V(repeating: pa[1])
    c10 = c10.addingProduct(av, b0); c11 = c11.addingProduct(av, b1)
    av = V(repeating: pa[2])
    c20 = c20.addingProduct(av, b0); c21 = c21.addingProduct(av, b1)
    av = V(repeating: pa[3])
    c30 = c30.addingProduct(av, b0); c31 = c31.addingProduct(av, b1)
    av = V(repeating: pa[4])
    c40 = c40.addingProduct(av, b0); c41 = c41.addingProduct(av, b1)
    av = V(repeating: pa[5])
    c50 = c50.addingProduct(av, b0); c51 = c51.addingProduct(av, b1)
  }
  let bStep = gemmNR * MemoryLayout<Float>.stride
  var left = kc
  while left >= 4 {
    step(pa, pb)
    step(pa + gemmMR, pb + bStep)
    step(pa + 2 * gemmMR, pb + 2 * bStep)
    step(pa + 3 * gemmMR, pb + 3 * bStep)
    pa += 4 * gemmMR
    pb += 4 * bStep
    left -= 4
  }
  while left > 0 {
    step(pa, pb)
    pa += gemmMR
    pb += bStep
    left -= 1
  }

  if rows == gemmMR && cols == gemmNR {
    @inline(__always) func put(_ row: Int, _ lo: V, _ hi: V) {
      let p = UnsafeMutableRawPointer(c + row * ldc)
      if accumulate {
        p.storeBytes(of: p.loadUnaligned(as: V.self) + lo, as: V.self)
        p.storeBytes(of: p.loadUnaligned(fromByteOffset: 32, as: V.self) + hi, toByteOffset: 32, as: V.self)
      } else {
        p.storeBytes(of: lo, as: V.self)
        p.storeBytes(of: hi, toByteOffset: 32, as: V.self)
      }
    }
    put(0, c00, c01); put(1, c10, c11); put(2, c20, c21)
    put(3, c30, c31); put(4, c40, c41); put(5, c50, c51)
  } else {
    withUnsafeTemporaryAllocation(of: V.self, capacity: 2 * gemmMR) { t in
      t[0] = c00; t[1] = c01; t[2] = c10; t[3] = c11; t[4] = c20; t[5] = c21
      t[6] = c30; t[7] = c31; t[8] = c40; t[9] = c41; t[10] = c50; t[11] = c51
      let tile = UnsafeRawPointer(t.baseAddress!).assumingMemoryBound(to: Float.self)
      for r in 0..<rows {
        let src = tile + r * gemmNR
        let dst = c + r * ldc
        if accumulate {
          for j in 0..<cols { dst[j] = dst[j] + src[j] }
        } else {
          for j in 0..<cols { dst[j] = src[j] }
        }
      }
    }
  }
}

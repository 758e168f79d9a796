/// SHA-256 (FIPS 180-4), for cache keys and the integrity check of cache files. Incremental:
/// `update` any number of times, then `finalize` once.
public struct SHA256: Sendable {
  private var state: [UInt32] = SHA256.initialState
  /// Bytes not yet forming a whole 64-byte block.
  private var pending: [UInt8] = []
  private var length: UInt64 = 0

  public init() { pending.reserveCapacity(64) }

  public mutating func update(_ bytes: UnsafeRawBufferPointer) {
    length &+= UInt64(bytes.count)
    var offset = 0
    if !pending.isEmpty {
      let take = min(64 - pending.count, bytes.count)
      pending.append(contentsOf: bytes[0..<take])
      offset = take
      if pending.count == 64 {
        pending.withUnsafeBytes { compress(blocks: $0) }
        pending.removeAll(keepingCapacity: true)
      }
    }
    let whole = (bytes.count - offset) / 64 * 64
    if whole > 0 {
      compress(blocks: UnsafeRawBufferPointer(rebasing: bytes[offset..<offset + whole]))
      offset += whole
    }
    if offset < bytes.count { pending.append(contentsOf: bytes[offset...]) }
  }

  public mutating func update(_ bytes: [UInt8]) { bytes.withUnsafeBytes { update($0) } }

  /// Hashes the UTF-8 bytes of `text`.
  public mutating func update(_ text: String) {
    var text = text
    text.withUTF8 { update(UnsafeRawBufferPointer($0)) }
  }

  /// The 32-byte digest. The hasher must not be updated afterwards.
  public mutating func finalize() -> [UInt8] {
    let bits = length &* 8
    var tail: [UInt8] = [0x80]
    while (pending.count + tail.count) % 64 != 56 { tail.append(0) }
    for shift in stride(from: 56, through: 0, by: -8) { tail.append(UInt8(truncatingIfNeeded: bits >> UInt64(shift))) }
    let savedLength = length
    tail.withUnsafeBytes { update($0) }
    length = savedLength
    precondition(pending.isEmpty)
    var digest: [UInt8] = []
    digest.reserveCapacity(32)
    for word in state {
      digest.append(UInt8(truncatingIfNeeded: word >> 24))
      digest.append(UInt8(truncatingIfNeeded: word >> 16))
      digest.append(UInt8(truncatingIfNeeded: word >> 8))
      digest.append(UInt8(truncatingIfNeeded: word))
    }
    return digest
  }

  public static func hash(_ bytes: [UInt8]) -> [UInt8] {
    var hasher = SHA256()
    hasher.update(bytes)
    return hasher.finalize()
  }

  public static func hash(_ bytes: UnsafeRawBufferPointer) -> [UInt8] {
    var hasher = SHA256()
    hasher.update(bytes)
    return hasher.finalize()
  }

  /// The digest of `text`'s UTF-8 as 64 lowercase hex digits.
  public static func hexDigest(_ text: String) -> String {
    var hasher = SHA256()
    hasher.update(text)
    return hex(hasher.finalize())
  }

  public static func hexDigest(_ bytes: [UInt8]) -> String { hex(hash(bytes)) }

  /// Lowercase hex, two digits per byte.
  public static func hex(_ bytes: [UInt8]) -> String {
    let digits = Array("0123456789abcdef".utf8)
    var out: [UInt8] = []
    out.reserveCapacity(bytes.count * 2)
    for byte in bytes {
      out.append(digits[Int(byte >> 4)])
      out.append(digits[Int(byte & 15)])
    }
    return String(decoding: out, as: UTF8.self)
  }

  private static let initialState: [UInt32] = [
    0x6a09e667, 0xbb67ae85, 0x3c6ef372, 0xa54ff53a, 0x510e527f, 0x9b05688c, 0x1f83d9ab, 0x5be0cd19,
  ]

  private static let k: [UInt32] = [
    0x428a2f98, 0x71374491, 0xb5c0fbcf, 0xe9b5dba5, 0x3956c25b, 0x59f111f1, 0x923f82a4, 0xab1c5ed5,
    0xd807aa98, 0x12835b01, 0x243185be, 0x550c7dc3, 0x72be5d74, 0x80deb1fe, 0x9bdc06a7, 0xc19bf174,
    0xe49b69c1, 0xefbe4786, 0x0fc19dc6, 0x240ca1cc, 0x2de92c6f, 0x4a7484aa, 0x5cb0a9dc, 0x76f988da,
    0x983e5152, 0xa831c66d, 0xb00327c8, 0xbf597fc7, 0xc6e00bf3, 0xd5a79147, 0x06ca6351, 0x14292967,
    0x27b70a85, 0x2e1b2138, 0x4d2c6dfc, 0x53380d13, 0x650a7354, 0x766a0abb, 0x81c2c92e, 0x92722c85,
    0xa2bfe8a1, 0xa81a664b, 0xc24b8b70, 0xc76c51a3, 0xd192e819, 0xd6990624, 0xf40e3585, 0x106aa070,
    0x19a4c116, 0x1e376c08, 0x2748774c, 0x34b0bcb5, 0x391c0cb3, 0x4ed8aa4a, 0x5b9cca4f, 0x682e6ff3,
    0x748f82ee, 0x78a5636f, 0x84c87814, 0x8cc70208, 0x90befffa, 0xa4506ceb, 0xbef9a3f7, 0xc67178f2,
  ]

  @inline(__always) private static func rotr(_ x: UInt32, _ n: UInt32) -> UInt32 { (x >> n) | (x << (32 &- n)) }

  /// Runs the compression function over whole 64-byte blocks.
  private mutating func compress(blocks: UnsafeRawBufferPointer) {
    precondition(blocks.count % 64 == 0)
    var w = [UInt32](repeating: 0, count: 64)
    Self.k.withUnsafeBufferPointer { k in
      w.withUnsafeMutableBufferPointer { w in
        state.withUnsafeMutableBufferPointer { h in
          var block = 0
          while block < blocks.count {
            for i in 0..<16 {
              let j = block + 4 * i
              w[i] = UInt32(blocks[j]) << 24 | UInt32(blocks[j + 1]) << 16 | UInt32(blocks[j + 2]) << 8
                | UInt32(blocks[j + 3])
            }
            for i in 16..<64 {
              let s0 = Self.rotr(w[i - 15], 7) ^ Self.rotr(w[i - 15], 18) ^ (w[i - 15] >> 3)
              let s1 = Self.rotr(w[i - 2], 17) ^ Self.rotr(w[i - 2], 19) ^ (w[i - 2] >> 10)
              w[i] = w[i - 16] &+ s0 &+ w[i - 7] &+ s1
            }
            var a = h[0], b = h[1], c = h[2], d = h[3], e = h[4], f = h[5], g = h[6], hh = h[7]
            for i in 0..<64 {
              let s1 = Self.rotr(e, 6) ^ Self.rotr(e, 11) ^ Self.rotr(e, 25)
              let t1 = hh &+ s1 &+ ((e & f) ^ (~e & g)) &+ k[i] &+ w[i]
              let s0 = Self.rotr(a, 2) ^ Self.rotr(a, 13) ^ Self.rotr(a, 22)
              let t2 = s0 &+ ((a & b) ^ (a & c) ^ (b & c))
              hh = g; g = f; f = e; e = d &+ t1
              d = c; c = b; b = a; a = t1 &+ t2
            }
            h[0] &+= a; h[1] &+= b; h[2] &+= c; h[3] &+= d
            h[4] &+= e; h[5] &+= f; h[6] &+= g; h[7] &+= hh
            block += 64
          }
        }
      }
    }
  }
}

/// The digest of a set of kernel sources, as `KernelSources.hash` defines it (and embed-kernels
/// computes it at build time): files sorted by name; for each, the UInt64 little-endian byte count of
/// the name's UTF-8, that UTF-8, then the same for the contents. 64 lowercase hex digits.
public func kernelSourcesDigest(_ files: [(name: String, contents: String)]) -> String {
  let sorted = files.sorted { Array($0.name.utf8).lexicographicallyPrecedes(Array($1.name.utf8)) }
  var hasher = SHA256()
  func append(_ part: String) {
    var count = UInt64(part.utf8.count).littleEndian
    withUnsafeBytes(of: &count) { hasher.update($0) }
    hasher.update(part)
  }
  for file in sorted {
    append(file.name)
    append(file.contents)
  }
  return SHA256.hex(hasher.finalize())
}

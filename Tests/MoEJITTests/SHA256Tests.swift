import SHA256
import Testing
import MoEKernels
@testable import MoEJIT

@Suite("SHA-256")
struct SHA256Tests {
  @Test("FIPS 180-4 / NIST known vectors", arguments: [
    ("", "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"),
    ("abc", "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"),
    ("abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq",
     "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1"),
    ("abcdefghbcdefghicdefghijdefghijkefghijklfghijklmghijklmnhijklmnoijklmnopjklmnopqklmnopqrlmnopqrsmnopqrstnopqrstu",
     "cf5b16a778af8380036ce59e7b0492370b249b11e8f07a51afac45037afee9d1"),
    ("The quick brown fox jumps over the lazy dog",
     "d7a8fbb307d7809469ca9abcb0082e4f8d5651e46d3cdb762d02d0bf37c9e592"),
  ])
  func knownVectors(message: String, digest: String) {
    #expect(SHA256.hexDigest(message) == digest)
    #expect(SHA256.hexDigest(Array(message.utf8)) == digest)
  }

  @Test("one million 'a' fed in uneven pieces")
  func millionA() {
    var hasher = SHA256()
    let chunk = [UInt8](repeating: UInt8(ascii: "a"), count: 1000)
    var fed = 0
    var size = 1
    while fed < 1_000_000 {
      let n = min(size, 1_000_000 - fed, chunk.count)
      hasher.update(Array(chunk[0..<n]))
      fed += n
      size = size % 997 + 13
    }
    #expect(SHA256.hex(hasher.finalize()) == "cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0")
  }

  @Test("incremental equals one-shot at every split around block boundaries")
  func incremental() {
    for length in [0, 1, 55, 56, 57, 63, 64, 65, 119, 120, 127, 128, 129, 200] {
      let message = (0..<length).map { UInt8(truncatingIfNeeded: $0 &* 31 &+ 7) }
      let oneShot = SHA256.hash(message)
      for split in Set([0, 1, length / 2, max(0, length - 1), length]) where split <= length {
        var hasher = SHA256()
        hasher.update(Array(message[0..<split]))
        hasher.update(Array(message[split...]))
        #expect(hasher.finalize() == oneShot, "length \(length) split \(split)")
      }
    }
  }

  @Test("the build-time digest of the embedded sources matches MoEJIT's SHA-256")
  func embeddedHash() {
    #expect(KernelSources.hash.count == 64)
    #expect(KernelSources.hash.allSatisfy { "0123456789abcdef".contains($0) })
    #expect(KernelSources.hash == kernelSourcesDigest(KernelSources.files))
    // Order of the input does not matter: the digest sorts by name.
    #expect(kernelSourcesDigest(KernelSources.files.reversed()) == KernelSources.hash)
    // And it depends on names and contents, with no ambiguity between them.
    #expect(kernelSourcesDigest([("a", "bc")]) != kernelSourcesDigest([("ab", "c")]))
    #expect(kernelSourcesDigest([("a", "x")]) != kernelSourcesDigest([("a", "y")]))
  }
}

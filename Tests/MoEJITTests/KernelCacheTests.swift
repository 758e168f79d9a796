import Glibc
import Testing
@testable import MoEJIT

@Suite("Kernel cache files")
struct KernelCacheTests {
  static let key = String(repeating: "ab", count: 32)
  static let entry = KernelCache.Entry(
    key: key, specJSON: #"{"hidden":256}"#, log: "ptxas info    : Used 12 registers\n",
    cubin: [0x7F, 0x45, 0x4C, 0x46] + (0..<61).map { UInt8($0) })

  @Test("cache directory: FLASHMOE_CACHE_DIR, then $XDG_CACHE_HOME/flashmoe, then $HOME/.cache/flashmoe")
  func defaultDirectory() throws {
    let all = ["FLASHMOE_CACHE_DIR": "/c", "XDG_CACHE_HOME": "/x", "HOME": "/h"]
    #expect(try KernelCache.defaultDirectory(environment: all) == "/c")
    #expect(try KernelCache.defaultDirectory(environment: all.merging(["FLASHMOE_CACHE_DIR": ""]) { $1 }) == "/x/flashmoe")
    #expect(try KernelCache.defaultDirectory(environment: ["XDG_CACHE_HOME": "/x/", "HOME": "/h"]) == "/x/flashmoe")
    // A relative XDG_CACHE_HOME is invalid by the XDG spec and ignored.
    #expect(try KernelCache.defaultDirectory(environment: ["XDG_CACHE_HOME": "rel", "HOME": "/h"]) == "/h/.cache/flashmoe")
    #expect(try KernelCache.defaultDirectory(environment: ["HOME": "/h"]) == "/h/.cache/flashmoe")
    #expect(throws: JITError.self) { try KernelCache.defaultDirectory(environment: [:]) }
  }

  @Test("the directory is created with its parents")
  func createsParents() throws {
    let temp = TemporaryDirectory()
    defer { temp.remove() }
    let cache = try KernelCache(directory: temp.file("a/b/c"))
    var info = stat()
    #expect(stat(cache.directory, &info) == 0 && (info.st_mode & S_IFMT) == S_IFDIR)
    // Again, when it exists.
    _ = try KernelCache(directory: temp.file("a/b/c"))
    // A file in the way is an error naming the path.
    writeFile(temp.file("file"), [1])
    #expect(throws: JITError.self) { try KernelCache(directory: temp.file("file/sub")) }
  }

  @Test("store then lookup gives the entry back; no temporary file is left")
  func roundTrip() throws {
    let temp = TemporaryDirectory()
    defer { temp.remove() }
    let cache = try KernelCache(directory: temp.path)
    #expect(cache.lookup(key: Self.key) == .missing)
    try cache.store(Self.entry)
    #expect(cache.lookup(key: Self.key) == .hit(Self.entry))
    #expect(temp.entries() == [Self.key + ".fmk"])
    // Storing again replaces it atomically.
    var changed = Self.entry
    changed.log = "another log"
    try cache.store(changed)
    #expect(cache.lookup(key: Self.key) == .hit(changed))
    #expect(temp.entries() == [Self.key + ".fmk"])
  }

  @Test("every truncation and every flipped byte is rejected")
  func corruption() throws {
    let file = KernelCache.encode(Self.entry)
    guard case .success(let decoded) = KernelCache.decode(file, key: Self.key) else {
      Issue.record("a valid file was rejected")
      return
    }
    #expect(decoded == Self.entry)
    for length in 0..<file.count {
      if case .success = KernelCache.decode(Array(file[0..<length]), key: Self.key) {
        Issue.record("truncated to \(length) bytes and still accepted")
      }
    }
    for index in file.indices {
      var bad = file
      bad[index] ^= 0x01
      if case .success = KernelCache.decode(bad, key: Self.key) {
        Issue.record("byte \(index) flipped and still accepted")
      }
    }
    if case .success = KernelCache.decode(file + [0], key: Self.key) { Issue.record("a trailing byte was accepted") }
  }

  @Test("a file under the wrong name (another key's entry) is rejected")
  func wrongKey() throws {
    let temp = TemporaryDirectory()
    defer { temp.remove() }
    let cache = try KernelCache(directory: temp.path)
    try cache.store(Self.entry)
    let other = String(repeating: "cd", count: 32)
    writeFile(cache.path(forKey: other), try #require(readFile(cache.path(forKey: Self.key))))
    guard case .rejected(let why) = cache.lookup(key: other) else {
      Issue.record("accepted another key's file")
      return
    }
    #expect(why.contains("key"))
  }

  @Test("on disk: truncated, flipped, empty and garbage files are rejected with a reason")
  func corruptFilesOnDisk() throws {
    let temp = TemporaryDirectory()
    defer { temp.remove() }
    let cache = try KernelCache(directory: temp.path)
    try cache.store(Self.entry)
    let path = cache.path(forKey: Self.key)
    let good = try #require(readFile(path))
    let cases: [(String, [UInt8])] = [
      ("truncated", Array(good.prefix(good.count - 10))),
      ("flipped", { var b = good; b[b.count - 3] ^= 0x80; return b }()),
      ("empty", []),
      ("garbage", Array("not a cache file at all, but long enough to have a header of 56 bytes....".utf8)),
    ]
    for (name, bytes) in cases {
      writeFile(path, bytes)
      guard case .rejected(let why) = cache.lookup(key: Self.key) else {
        Issue.record("\(name) file accepted")
        continue
      }
      #expect(!why.isEmpty)
    }
  }
}

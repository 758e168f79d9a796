import CUDADriver
import SHA256
/// Compiled kernels on disk, one file per cache key: `<directory>/<key>.fmk`.
///
/// File format (integers little-endian):
///
///     offset  size  field
///          0     8  magic "FMKCACHE"
///          8     4  format version (`KernelCache.formatVersion`)
///         12     4  header size (56)
///         16     8  payload length in bytes
///         24    32  SHA-256 of the payload
///         56     …  payload: four fields, each a UInt64 byte count then the bytes:
///                   the cache key (must equal the file's), the spec's JSON (for people reading
///                   the cache), the NVRTC program log (so ptxas's report survives a hit), the cubin.
///
/// A file is trusted only when every check passes: exact size, magic, version, checksum, fields
/// that fill the payload exactly, the key it was asked for, a non-empty cubin. Anything else is a
/// miss, reported as `.rejected(why)`, and the next store replaces it. Files are published with
/// write-to-temporary + fsync + rename, so concurrent writers (threads or processes) and readers
/// never see a partial file.
public struct KernelCache: Sendable {
  public let directory: String

  /// Bump when the file layout or anything feeding the key changes meaning.
  public static let formatVersion: UInt32 = 1
  static let magic = Array("FMKCACHE".utf8)
  static let headerSize = 56
  /// Larger files are refused unread.
  static let maxFileSize = 1 << 30

  /// Uses `directory`, creating it (and its parents) when missing.
  public init(directory: String) throws(JITError) {
    guard !directory.isEmpty else { throw JITError.cacheDirectory(path: directory, problem: "empty path") }
    try POSIXFile.createDirectories(directory)
    self.directory = directory
  }

  /// The cache in `defaultDirectory()`, created when missing.
  public static func standard() throws(JITError) -> KernelCache {
    try KernelCache(directory: defaultDirectory(environment: currentEnvironment()))
  }

  /// `FLASHMOE_CACHE_DIR` when set, else `$XDG_CACHE_HOME/flashmoe` (XDG_CACHE_HOME must be an
  /// absolute path, as the XDG spec says), else `$HOME/.cache/flashmoe`. Empty values count as unset.
  public static func defaultDirectory(environment: [String: String]) throws(JITError) -> String {
    func value(_ key: String) -> String? {
      guard let text = environment[key], !text.isEmpty else { return nil }
      return text
    }
    if let explicit = value("FLASHMOE_CACHE_DIR") { return explicit }
    if let xdg = value("XDG_CACHE_HOME"), xdg.hasPrefix("/") { return join(xdg, "flashmoe") }
    if let home = value("HOME") { return join(join(home, ".cache"), "flashmoe") }
    throw JITError.cacheDirectory(
      path: "(none)", problem: "none of FLASHMOE_CACHE_DIR, XDG_CACHE_HOME, HOME is set")
  }

  /// The variables `defaultDirectory` reads, from the process environment.
  public static func currentEnvironment() -> [String: String] {
    var result: [String: String] = [:]
    for key in ["FLASHMOE_CACHE_DIR", "XDG_CACHE_HOME", "HOME"] {
      if let value = CUDAEnvironment.value(key) { result[key] = value }
    }
    return result
  }

  static func join(_ directory: String, _ name: String) -> String {
    directory.hasSuffix("/") ? directory + name : directory + "/" + name
  }

  /// The file that holds `key`'s entry.
  public func path(forKey key: String) -> String { Self.join(directory, key + ".fmk") }

  /// What one cache file holds.
  public struct Entry: Sendable, Equatable {
    public var key: String
    public var specJSON: String
    public var log: String
    public var cubin: [UInt8]

    public init(key: String, specJSON: String, log: String, cubin: [UInt8]) {
      self.key = key
      self.specJSON = specJSON
      self.log = log
      self.cubin = cubin
    }
  }

  public enum Lookup: Sendable, Equatable {
    case hit(Entry)
    /// No file for the key.
    case missing
    /// A file exists but was not trusted; the reason says which check failed.
    case rejected(String)
  }

  /// Reads and verifies `key`'s file.
  public func lookup(key: String) -> Lookup {
    switch POSIXFile.read(path(forKey: key), limit: Self.maxFileSize) {
    case .missing: return .missing
    case .failed(let why): return .rejected(why)
    case .bytes(let bytes):
      switch Self.decode(bytes, key: key) {
      case .success(let entry): return .hit(entry)
      case .failure(let failure): return .rejected(failure.reason)
      }
    }
  }

  /// Publishes `entry` under its key atomically.
  public func store(_ entry: Entry) throws(JITError) {
    try POSIXFile.writeAtomically(Self.encode(entry), to: path(forKey: entry.key))
  }

  // MARK: - Encoding

  struct DecodeFailure: Error { var reason: String }

  static func encode(_ entry: Entry) -> [UInt8] {
    var payload: [UInt8] = []
    payload.reserveCapacity(entry.cubin.count + entry.log.utf8.count + entry.specJSON.utf8.count + 200)
    for field in [Array(entry.key.utf8), Array(entry.specJSON.utf8), Array(entry.log.utf8), entry.cubin] {
      appendInteger(UInt64(field.count), to: &payload)
      payload.append(contentsOf: field)
    }
    var file = magic
    appendInteger(formatVersion, to: &file)
    appendInteger(UInt32(headerSize), to: &file)
    appendInteger(UInt64(payload.count), to: &file)
    file.append(contentsOf: SHA256.hash(payload))
    file.append(contentsOf: payload)
    return file
  }

  static func decode(_ file: [UInt8], key: String) -> Result<Entry, DecodeFailure> {
    func fail(_ reason: String) -> Result<Entry, DecodeFailure> { .failure(DecodeFailure(reason: reason)) }
    guard file.count >= headerSize else { return fail("truncated header (\(file.count) bytes)") }
    guard Array(file[0..<8]) == magic else { return fail("bad magic") }
    let version: UInt32 = readInteger(file, at: 8)
    guard version == formatVersion else { return fail("format version \(version), expected \(formatVersion)") }
    let header: UInt32 = readInteger(file, at: 12)
    guard header == UInt32(headerSize) else { return fail("header size \(header), expected \(headerSize)") }
    let length: UInt64 = readInteger(file, at: 16)
    guard length == UInt64(file.count - headerSize) else {
      return fail("payload length \(length) but \(file.count - headerSize) bytes follow the header")
    }
    let digest = file.withUnsafeBytes { SHA256.hash(UnsafeRawBufferPointer(rebasing: $0[headerSize...])) }
    guard digest[...] == file[24..<56] else { return fail("payload checksum mismatch") }

    var offset = headerSize
    var fields: [ArraySlice<UInt8>] = []
    for _ in 0..<4 {
      guard file.count - offset >= 8 else { return fail("payload truncated in a field's length") }
      let count: UInt64 = readInteger(file, at: offset)
      offset += 8
      guard count <= UInt64(file.count - offset) else { return fail("a field runs past the payload") }
      fields.append(file[offset..<offset + Int(count)])
      offset += Int(count)
    }
    guard offset == file.count else { return fail("\(file.count - offset) stray bytes after the payload") }
    let storedKey = String(decoding: fields[0], as: UTF8.self)
    guard storedKey == key else { return fail("holds key \(storedKey.prefix(16))…, not \(key.prefix(16))…") }
    guard !fields[3].isEmpty else { return fail("empty cubin") }
    return .success(Entry(
      key: storedKey, specJSON: String(decoding: fields[1], as: UTF8.self),
      log: String(decoding: fields[2], as: UTF8.self), cubin: Array(fields[3])))
  }

  static func appendInteger<T: FixedWidthInteger>(_ value: T, to bytes: inout [UInt8]) {
    var little = value.littleEndian
    withUnsafeBytes(of: &little) { bytes.append(contentsOf: $0) }
  }

  static func readInteger<T: FixedWidthInteger>(_ bytes: [UInt8], at offset: Int) -> T {
    var value: T = 0
    for i in 0..<MemoryLayout<T>.size { value |= T(bytes[offset + i]) << (8 * i) }
    return value
  }
}

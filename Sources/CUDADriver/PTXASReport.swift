/// Resource usage of one function as ptxas reports it with `--ptxas-options=-v`.
public struct KernelResourceUsage: Sendable, Hashable {
  /// The (possibly mangled) function name as ptxas prints it.
  public var name: String
  /// The target of "Compiling entry function 'name' for 'sm_90a'", when reported.
  public var architecture: String?
  /// True for a __global__ entry function, false for a device function with its own frame.
  public var isEntry: Bool
  public var registers: Int = 0
  public var barriers: Int = 0
  public var stackFrameBytes: Int = 0
  public var spillStoreBytes: Int = 0
  public var spillLoadBytes: Int = 0
  /// Static shared memory ("N bytes smem").
  public var sharedBytes: Int = 0
  /// Constant memory per bank ("N bytes cmem[k]").
  public var constantBytes: [Int: Int] = [:]
  public var cumulativeStackBytes: Int = 0

  public init(name: String, architecture: String? = nil, isEntry: Bool) {
    self.name = name
    self.architecture = architecture
    self.isEntry = isEntry
  }

  /// True when ptxas spilled registers to local memory.
  public var spills: Bool { spillStoreBytes > 0 || spillLoadBytes > 0 }
}

/// ptxas's verbose report, parsed from an NVRTC program log. Observed format (CUDA 13.0):
///
///     ptxas info    : 0 bytes gmem
///     ptxas info    : Compiling entry function 'axpy' for 'sm_90a'
///     ptxas info    : Function properties for axpy
///     ptxas         .     0 bytes stack frame, 0 bytes spill stores, 0 bytes spill loads
///     ptxas info    : Used 12 registers, used 0 barriers, 4096 bytes smem, 380 bytes cmem[0]
///     ptxas info    : Compile time = 7.758 ms
///
/// (sm_90a omits the cmem item; a big local array adds "N bytes cumulative stack size".)
public struct PTXASReport: Sendable, Hashable {
  /// Every function reported, in report order.
  public var functions: [KernelResourceUsage]
  /// "N bytes gmem": static global (__device__) memory of the program.
  public var globalBytes: Int

  /// The entry (__global__) functions only.
  public var kernels: [KernelResourceUsage] { functions.filter(\.isEntry) }

  public subscript(name: String) -> KernelResourceUsage? { functions.first { $0.name == name } }

  public init(functions: [KernelResourceUsage] = [], globalBytes: Int = 0) {
    self.functions = functions
    self.globalBytes = globalBytes
  }

  /// Parses the ptxas lines of `log`; other lines are ignored (an empty report when there are none).
  public init(parsing log: String) {
    self.init()
    var current: Int? = nil
    func record(_ name: String, architecture: String?, entry: Bool) -> Int {
      if let index = functions.firstIndex(where: { $0.name == name }) {
        if entry { functions[index].isEntry = true }
        if let architecture { functions[index].architecture = architecture }
        return index
      }
      functions.append(KernelResourceUsage(name: name, architecture: architecture, isEntry: entry))
      return functions.count - 1
    }
    for rawLine in log.split(whereSeparator: \.isNewline) {
      let line = Substring(rawLine)
      guard line.hasPrefix("ptxas") else { continue }
      if let quoted = Self.quotedStrings(line), line.contains("Compiling entry function"), let name = quoted.first {
        current = record(name, architecture: quoted.count > 1 ? quoted[1] : nil, entry: true)
      } else if let range = line.firstRange(of: "Function properties for ") {
        let name = line[range.upperBound...].trimmingCharacters(" '")
        if !name.isEmpty { current = record(name, architecture: nil, entry: false) }
      } else if line.contains("bytes gmem"), !line.contains("Used") {
        for (value, key) in Self.items(line) where key == "bytes gmem" { globalBytes = value }
      } else if line.contains("bytes stack frame") || line.contains("Used ") {
        guard let index = current else { continue }
        for (value, key) in Self.items(line) { Self.apply(value, key, to: &functions[index]) }
      }
    }
  }

  static func apply(_ value: Int, _ key: String, to usage: inout KernelResourceUsage) {
    switch key {
    case "used registers", "Used registers": usage.registers = value
    case "used barriers", "Used barriers": usage.barriers = value
    case "bytes stack frame": usage.stackFrameBytes = value
    case "bytes spill stores": usage.spillStoreBytes = value
    case "bytes spill loads": usage.spillLoadBytes = value
    case "bytes smem": usage.sharedBytes = value
    case "bytes cumulative stack size": usage.cumulativeStackBytes = value
    default:
      if key.hasPrefix("bytes cmem["), let close = key.firstIndex(of: "]"),
         let bank = Int(key[key.index(key.startIndex, offsetBy: 11)..<close]) {
        usage.constantBytes[bank] = value
      }
    }
  }

  /// The comma-separated "N words" / "Used N words" items after the line's ':' or '.' marker,
  /// each as (N, the words with N removed), e.g. (40, "Used registers"), (380, "bytes cmem[0]").
  static func items(_ line: Substring) -> [(Int, String)] {
    // Drop "ptxas info    :" / "ptxas         ." (the marker is the first ':' or '.' after "ptxas").
    var body = line.dropFirst("ptxas".count)
    if let marker = body.firstIndex(where: { $0 == ":" || $0 == "." }) { body = body[body.index(after: marker)...] }
    var result: [(Int, String)] = []
    for piece in body.split(separator: ",") {
      let words = piece.split(separator: " ")
      guard let numberIndex = words.firstIndex(where: { Int($0) != nil }), let value = Int(words[numberIndex]) else { continue }
      var rest = words
      rest.remove(at: numberIndex)
      result.append((value, rest.joined(separator: " ")))
    }
    return result
  }

  /// The strings between single quotes on a line, or nil when there are none.
  static func quotedStrings(_ line: Substring) -> [String]? {
    let parts = line.split(separator: "'", omittingEmptySubsequences: false)
    guard parts.count >= 3 else { return nil }
    return stride(from: 1, to: parts.count - 1, by: 2).map { String(parts[$0]) }
  }
}

extension Substring {
  func trimmingCharacters(_ set: String) -> String {
    var s = self
    while let first = s.first, first.isWhitespace || set.contains(first) { s.removeFirst() }
    while let last = s.last, last.isWhitespace || set.contains(last) { s.removeLast() }
    return String(s)
  }
}

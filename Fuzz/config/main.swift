// libFuzzer target: MoEConfig built from fuzzed integers, doubles and names, then validate(),
// capacity and the memory plan; NamedOption.parse on fuzzed strings.
import MoECore

private struct Reader {
  var bytes: UnsafeBufferPointer<UInt8>
  var index = 0
  mutating func byte() -> UInt8 {
    defer { index += 1 }
    return index < bytes.count ? bytes[index] : 0
  }
  mutating func u64() -> UInt64 {
    var v: UInt64 = 0
    for i in 0..<8 { v |= UInt64(byte()) << (8 * UInt64(i)) }
    return v
  }
  /// Mostly small or boundary integers, sometimes any 64-bit pattern.
  mutating func int() -> Int {
    switch byte() % 4 {
    case 0: return Int(byte())
    case 1: return Int(Int16(truncatingIfNeeded: Int(byte()) | Int(byte()) << 8))
    case 2: return [0, 1, -1, Int.max, Int.min, 1 << 24, (1 << 24) + 1, 1 << 20, 1 << 40, 4096][Int(byte()) % 10]
    default: return Int(truncatingIfNeeded: u64())
    }
  }
  mutating func double() -> Double {
    switch byte() % 3 {
    case 0: return Double(byte()) / 16
    case 1: return [0, -0.0, 1, 1.1, .infinity, -.infinity, .nan, .leastNonzeroMagnitude, .greatestFiniteMagnitude, 1e300][Int(byte()) % 10]
    default: return Double(bitPattern: u64())
    }
  }
  mutating func string() -> String {
    let n = Int(byte()) % 24
    var s: [UInt8] = []
    for _ in 0..<n { s.append(byte()) }
    return String(decoding: s, as: UTF8.self)
  }
  mutating func option<T: NamedOption>(_: T.Type, field: String) -> T {
    let text = byte() % 2 == 0 ? T.allCases.map(\.rawValue)[Int(byte()) % T.allCases.count] : string()
    return (try? T.parse(text, field: field)) ?? T.allCases.first!
  }
}

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzz(_ data: UnsafePointer<UInt8>, _ size: Int) -> CInt {
  var r = Reader(bytes: UnsafeBufferPointer(start: data, count: size))
  let capacity: Capacity = r.byte() % 4 == 0 ? .dropless : .factor(r.double())
  let config = MoEConfig(
    tokens: r.int(), hidden: r.int(), ffn: r.int(), experts: r.int(), topK: r.int(),
    capacity: capacity,
    activation: r.option(Activation.self, field: "activation"),
    expertForm: r.option(ExpertForm.self, field: "expert-form"),
    biases: r.byte() & 1 == 1, renormalize: r.byte() & 1 == 1,
    dtype: r.option(DType.self, field: "dtype"), math: r.option(Math.self, field: "math"))
  let gpus = r.int()
  let tileM = r.int()
  do {
    try config.validate()
    _ = config.expertCapacity
    _ = config.flops(routedPairs: config.tokens * config.topK)
    _ = try? MemoryPlan(config: config, gpus: gpus, tileM: tileM)
  } catch {
    _ = error.description
  }
  // NamedOption.parse on the remaining bytes as a string.
  let rest = String(decoding: UnsafeBufferPointer(rebasing: r.bytes[min(r.index, size)...]), as: UTF8.self)
  _ = try? Activation.parse(rest, field: "activation")
  _ = try? ExpertForm.parse(rest, field: "expert-form")
  _ = try? DType.parse(rest, field: "dtype")
  _ = try? Math.parse(rest, field: "math")
  return 0
}

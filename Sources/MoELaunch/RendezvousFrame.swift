/// The rendezvous's wire format. Every message is one frame:
///
///     magic "FMRZ" (4 bytes) | version (UInt16 BE) | type (UInt8) | 0 (UInt8) | body length (UInt32 BE) | body
///
/// The magic and version come first so a stranger (a port scanner, an HTTP client, another
/// version of FlashMoE) is recognised from its first bytes, and the length is capped before
/// anything is allocated.
struct RendezvousFrame: Equatable, Sendable {
  enum Kind: UInt8, Sendable {
    /// rank > 0 → rank 0: rank, world size, job token.
    case hello = 1
    /// rank 0 → rank > 0: the opaque payload.
    case payload = 2
    /// rank > 0 → rank 0: the payload arrived (body: the rank).
    case ack = 3
    /// rank 0 → a connection it turns away: the reason as UTF-8 text.
    case reject = 4
  }

  static let magic: [UInt8] = Array("FMRZ".utf8)
  static let version: UInt16 = 1
  static let headerSize = 12
  /// Bodies above this are garbage by definition: hello ≤ 10 + 256 bytes, payload ≤ maxPayload.
  static let maxBody = 8192
  /// The largest payload rank 0 may distribute (NVSHMEM's unique ID is 128 bytes).
  static let maxPayload = 4096

  var kind: Kind
  var body: [UInt8]

  func encoded() -> [UInt8] {
    var bytes = Self.magic
    bytes += [UInt8(Self.version >> 8), UInt8(Self.version & 0xFF), kind.rawValue, 0]
    bytes += bigEndian(UInt32(body.count))
    return bytes + body
  }

  enum Decoded: Equatable {
    /// Not enough bytes yet, and none wrong so far.
    case incomplete
    case frame(RendezvousFrame, length: Int)
    /// The bytes cannot be a frame; `recognised`: they began with our magic, so the sender speaks
    /// (some version of) this protocol and is told why before being closed.
    case invalid(String, recognised: Bool)
  }

  /// The first frame in `bytes`, checked field by field as soon as each has arrived.
  static func decode(_ bytes: ArraySlice<UInt8>) -> Decoded {
    let b = Array(bytes)
    for i in 0..<min(b.count, magic.count) where b[i] != magic[i] {
      return .invalid("not a FlashMoE rendezvous frame (bad magic)", recognised: false)
    }
    guard b.count >= 6 else { return .incomplete }
    let version = UInt16(b[4]) << 8 | UInt16(b[5])
    guard version == Self.version else {
      return .invalid("protocol version \(version), expected \(Self.version) (mixed FlashMoE versions?)", recognised: true)
    }
    guard b.count >= 8 else { return .incomplete }
    guard let kind = Kind(rawValue: b[6]), b[7] == 0 else {
      return .invalid("unknown frame type \(b[6]) / flags \(b[7])", recognised: true)
    }
    guard b.count >= headerSize else { return .incomplete }
    let length = Int(readUInt32(b, at: 8))
    guard length <= maxBody else {
      return .invalid("frame body of \(length) bytes, expected at most \(maxBody)", recognised: true)
    }
    guard b.count >= headerSize + length else { return .incomplete }
    return .frame(RendezvousFrame(kind: kind, body: Array(b[headerSize..<(headerSize + length)])), length: headerSize + length)
  }

  /// A hello's fields.
  struct Hello: Equatable, Sendable {
    var rank: Int
    var worldSize: Int
    var token: [UInt8]

    func frame() -> RendezvousFrame {
      RendezvousFrame(
        kind: .hello, body: bigEndian(UInt32(rank)) + bigEndian(UInt32(worldSize)) + [UInt8(token.count >> 8), UInt8(token.count & 0xFF)] + token)
    }

    /// The hello, or why the body is not exactly rank, world size and a token.
    static func parse(_ body: [UInt8]) -> Result<Hello, HelloError> {
      guard body.count >= 10 else { return .failure(HelloError(reason: "hello of \(body.count) bytes, expected at least 10")) }
      let tokenLength = Int(body[8]) << 8 | Int(body[9])
      guard tokenLength <= JobToken.maxLength, body.count == 10 + tokenLength else {
        return .failure(HelloError(reason: "hello with a token of \(tokenLength) bytes in a body of \(body.count)"))
      }
      return .success(Hello(rank: Int(readUInt32(body, at: 0)), worldSize: Int(readUInt32(body, at: 4)), token: Array(body[10...])))
    }
  }

  struct HelloError: Error, Equatable { var reason: String }

  static func ack(rank: Int) -> RendezvousFrame { RendezvousFrame(kind: .ack, body: bigEndian(UInt32(rank))) }

  static func reject(_ reason: String) -> RendezvousFrame {
    RendezvousFrame(kind: .reject, body: Array(reason.utf8.prefix(1024)))
  }
}

func bigEndian(_ value: UInt32) -> [UInt8] {
  [UInt8(value >> 24), UInt8((value >> 16) & 0xFF), UInt8((value >> 8) & 0xFF), UInt8(value & 0xFF)]
}

func readUInt32(_ bytes: [UInt8], at i: Int) -> UInt32 {
  UInt32(bytes[i]) << 24 | UInt32(bytes[i + 1]) << 16 | UInt32(bytes[i + 2]) << 8 | UInt32(bytes[i + 3])
}

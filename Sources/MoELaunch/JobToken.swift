/// The job's shared secret: every rank presents it at the rendezvous, so a stray process (another
/// job on the same port, a port scanner) cannot join or learn the payload.
public enum JobToken {
  public static let minLength = 8
  public static let maxLength = 256

  /// 32 lowercase hex characters (128 bits) from the system's CSPRNG (getrandom on Linux).
  public static func fresh() -> String {
    var generator = SystemRandomNumberGenerator()
    let digits = Array("0123456789abcdef".utf8)
    var text: [UInt8] = []
    for _ in 0..<2 {
      var word = generator.next() as UInt64
      for _ in 0..<16 {
        text.append(digits[Int(word & 0xF)])
        word >>= 4
      }
    }
    return String(decoding: text, as: UTF8.self)
  }

  /// Equal bytes, in time that depends on the lengths only: a stranger timing the answers learns
  /// nothing about how many leading bytes it guessed right.
  public static func equal(_ a: [UInt8], _ b: [UInt8]) -> Bool {
    var difference = UInt8(a.count == b.count ? 0 : 1)
    let n = max(a.count, b.count)
    for i in 0..<n {
      let x = i < a.count ? a[i] : 0
      let y = i < b.count ? b[i] : 0
      difference |= x ^ y
    }
    return difference == 0
  }
}

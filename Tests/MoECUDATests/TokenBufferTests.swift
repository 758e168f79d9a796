import MoECore
import Testing
@testable import MoECUDA

/// `CUDAMoE.launch` takes raw device addresses: a null or misaligned one is refused, naming the
/// buffer, before anything is launched (the kernel moves 16-byte vectors).
@Suite("token buffers")
struct TokenBufferTests {
  @Test("16-byte aligned, nonzero addresses pass")
  func aligned() throws {
    try CUDAMoE.checkTokenBuffers(input: 0x7f00_0000_0000, output: 0x7f00_0001_0010)
  }

  @Test(
    "a null or misaligned buffer names itself and its value",
    arguments: [
      (UInt64(0), UInt64(0x1000), "input", "0x0"), (0x1000, 0x1008, "output", "0x1008"), (0x1002, 0x1000, "input", "0x1002"),
      (0x1000, 0, "output", "0x0"),
    ])
  func refused(input: UInt64, output: UInt64, field: String, value: String) {
    do {
      try CUDAMoE.checkTokenBuffers(input: input, output: output)
      Issue.record("accepted input \(input), output \(output)")
    } catch let error as ConfigError {
      #expect(error.field == field && error.value == value)
      #expect(error.expected.contains("aligned to 16 bytes"))
    } catch {
      Issue.record("unexpected \(error)")
    }
  }
}

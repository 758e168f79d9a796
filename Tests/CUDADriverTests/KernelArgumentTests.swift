import Testing
@testable import CUDADriver

@Suite("kernel argument marshalling")
struct KernelArgumentTests {
  struct Params: BitwiseCopyable { var a: Int32; var b: Float; var c: UInt64 }

  @Test func layout() throws {
    let arguments: [KernelArgument] = [
      .int32(-7), .pointer(0xDEAD_BEEF_0000), .float(2.5), .uint32(9), .double(1.25), .int64(-3),
      .value(Params(a: 1, b: 2, c: 3)), .bytes([1, 2, 3], alignment: 1),
    ]
    KernelArgument.withParameterArray(arguments) { params in
      let p = params!
      #expect(p[0]!.load(as: Int32.self) == -7)
      #expect(p[1]!.load(as: UInt64.self) == 0xDEAD_BEEF_0000)
      #expect(p[2]!.load(as: Float.self) == 2.5)
      #expect(p[3]!.load(as: UInt32.self) == 9)
      #expect(p[4]!.load(as: Double.self) == 1.25)
      #expect(p[5]!.load(as: Int64.self) == -3)
      let s = p[6]!.load(as: Params.self)
      #expect(s.a == 1 && s.b == 2 && s.c == 3)
      #expect(p[7]!.load(fromByteOffset: 2, as: UInt8.self) == 3)
      #expect(p[8] == nil)
      for i in 0..<8 { #expect(Int(bitPattern: p[i]!) % 8 == 0, "argument \(i) is 8-byte aligned") }
    }
    #expect(KernelArgument.value(Params(a: 0, b: 0, c: 0)).byteCount == 16)
  }

  @Test func dim3() {
    let d: Dim3 = 128
    #expect(d == Dim3(128, 1, 1))
    #expect(Dim3(4, 2, 3).count == 24)
    #expect(throws: CUDAError.self) { _ = try Dim3(0).checked("grid", "test") }
  }
}

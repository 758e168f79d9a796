import Testing
import CUDADriver

@Suite("ptxas report parser")
struct PTXASReportTests {
  // Captured from NVRTC 13.0 (--ptxas-options=-v), sm_80 then sm_90a.
  static let sm80 = """
    ptxas info    : 0 bytes gmem
    ptxas info    : Compiling entry function '_Z2tkILi5EEvPf' for 'sm_80'
    ptxas info    : Function properties for _Z2tkILi5EEvPf
    ptxas         .     0 bytes stack frame, 0 bytes spill stores, 0 bytes spill loads
    ptxas info    : Used 9 registers, used 1 barriers, 4096 bytes smem, 360 bytes cmem[0]
    ptxas info    : Compile time = 1.892 ms
    ptxas info    : Compiling entry function 'spill' for 'sm_80'
    ptxas info    : Function properties for spill
    ptxas         .     1024 bytes stack frame, 0 bytes spill stores, 0 bytes spill loads
    ptxas info    : Used 39 registers, used 0 barriers, 1024 bytes cumulative stack size, 368 bytes cmem[0]
    ptxas info    : Compile time = 66.475 ms
    """
  static let sm90a = """
    ptxas info    : Overriding maximum register limit 256 for 'heavy' with  24 of maxrregcount option
    ptxas info    : 64 bytes gmem
    ptxas info    : Compiling entry function 'heavy' for 'sm_90a'
    ptxas info    : Function properties for heavy
    ptxas         .     1104 bytes stack frame, 1624 bytes spill stores, 1716 bytes spill loads
    ptxas info    : Used 24 registers, used 0 barriers, 1104 bytes cumulative stack size
    ptxas info    : Compile time = 395.895 ms
    ptxas info    : Function properties for _Z6helperPfi
    ptxas         .     16 bytes stack frame, 0 bytes spill stores, 0 bytes spill loads
    """

  @Test func parsesEntryFunctions() throws {
    let report = PTXASReport(parsing: Self.sm80)
    #expect(report.globalBytes == 0)
    #expect(report.kernels.map(\.name) == ["_Z2tkILi5EEvPf", "spill"])
    let tk = try #require(report["_Z2tkILi5EEvPf"])
    #expect(tk.architecture == "sm_80")
    #expect(tk.registers == 9)
    #expect(tk.barriers == 1)
    #expect(tk.sharedBytes == 4096)
    #expect(tk.constantBytes == [0: 360])
    #expect(tk.stackFrameBytes == 0 && !tk.spills)
    let spill = try #require(report["spill"])
    #expect(spill.registers == 39)
    #expect(spill.stackFrameBytes == 1024)
    #expect(spill.cumulativeStackBytes == 1024)
    #expect(spill.constantBytes[0] == 368)
  }

  @Test func parsesSpillsAndDeviceFunctions() throws {
    let report = PTXASReport(parsing: Self.sm90a)
    #expect(report.globalBytes == 64)
    let heavy = try #require(report["heavy"])
    #expect(heavy.architecture == "sm_90a")
    #expect(heavy.registers == 24)
    #expect(heavy.stackFrameBytes == 1104)
    #expect(heavy.spillStoreBytes == 1624)
    #expect(heavy.spillLoadBytes == 1716)
    #expect(heavy.constantBytes.isEmpty)
    let helper = try #require(report["_Z6helperPfi"])
    #expect(!helper.isEntry)
    #expect(helper.stackFrameBytes == 16)
    #expect(report.kernels.count == 1)
  }

  @Test func ignoresOtherLines() {
    let report = PTXASReport(parsing: "kernel.cu(3): warning: something\n\nnothing here")
    #expect(report.functions.isEmpty)
  }
}

import TestSupport
import CUDADriver
import MoECore
import MoEJIT
import Testing
@testable import MoECUDA

/// The host's copy of the kernel's structs (KernelParams, ErrorRecord, the mailbox) against the
/// kernel itself, without a GPU: the kernel's translation unit is compiled to PTX and the
/// `flashmoe_layout` initializer (sizeof values, see FLASHMOE_LAYOUT in flashmoe.cuh) is read back
/// from the PTX text.
@Suite("kernel/host layout")
struct LayoutTests {
  /// The virtual architecture of a spec's real one: "sm_90a" → "compute_90a".
  static func virtualArchitecture(_ real: String) -> String { "compute_" + real.dropFirst(3) }

  /// PTX of `source` with the embedded kernel sources as headers (the same as KernelCompiler).
  static func ptx(_ source: String, architecture: String, name: String) throws -> String {
    let nvrtc = try NVRTC.shared()
    let sources = try KernelCompiler(cache: nil).sources
    let program = try nvrtc.compile(
      source: source, name: name, headers: sources,
      options: ["--gpu-architecture=\(virtualArchitecture(architecture))", "-std=c++17"])
    #expect(program.cubin.isEmpty, "a virtual architecture gives PTX only")
    return try #require(program.ptx, "NVRTC returned no PTX for \(name)")
  }

  /// A bf16 sm_90a layer and the first few CI variants. Params, MailboxSlot and ErrorRecord do not
  /// depend on the spec; SharedStorage does.
  static let specs: [KernelSpec] = [
    KernelSpec(hidden: 256, ffn: 256, experts: 8, topK: 2, dtype: .bf16, form: .plain, activation: .gelu, architecture: "sm_90a"),
  ] + KernelSpec.ciVariants().prefix(3)

  @Test("flashmoe_layout in the kernel's PTX matches the host's sizes", .enabled(if: Gate.runNVRTCTests), arguments: specs)
  func kernelLayoutMatchesHost(spec: KernelSpec) throws {
    let ptx = try Self.ptx(spec.translationUnit(), architecture: spec.architecture, name: "flashmoe_layout_test.cu")
    let array = try #require(
      PTXArray(named: "flashmoe_layout", in: ptx),
      "no initialised flashmoe_layout in the PTX of \(spec) (does flashmoe.cuh define FLASHMOE_LAYOUT?)")
    let layout = array.words
    try #require(layout.count == 6, "\(array)")
    #expect(layout[2] == UInt64(KernelParams.size), "sizeof(Params): \(array)")
    #expect(KernelParams().bytes.count == KernelParams.size)
    #expect(layout[2] == UInt64(KernelParams().bytes.count), "sizeof(Params) vs KernelParams().bytes")
    #expect(layout[3] == UInt64(Workspace.mailboxSlotSize), "sizeof(MailboxSlot): \(array)")
    #expect(layout[4] == UInt64(ErrorRecord.size), "sizeof(ErrorRecord): \(array)")
    #expect(layout[5] == UInt64(Workspace.mailboxDepth), "kMailboxDepth: \(array)")
    // SharedStorage<S> is a union holding OSShared.
    #expect(layout[1] > 0 && layout[0] >= layout[1], "\(array)")
  }

  /// The byte offset and width of every Params field, by hand from layout.cuh's declaration order
  /// (x86-64/NVPTX64 C alignment): 9 pointers, 5 int, 1 unsigned, 1 unsigned long long, 19 pointers.
  static let paramsFields: [(name: String, offset: Int, width: Int)] = {
    var fields: [(String, Int, Int)] = []
    var offset = 0
    for name in ["x", "out", "gate", "w1", "b1", "w2", "b2", "w3", "b3"] { fields.append((name, offset, 8)); offset += 8 }
    for name in ["tokens", "capacity", "renormalize", "maxRows", "processors", "epoch"] { fields.append((name, offset, 4)); offset += 4 }
    fields.append(("timeoutNs", offset, 8)); offset += 8
    for name in ["pairExpert", "pairWeight", "pairRank", "pairRow", "chunkCount", "chunkOffset", "expertCount",
                 "rowToken", "rowTileExpert", "readyRows", "hidden", "expertOut",
                 "rowDone", "counters", "mailbox", "finished", "barrier", "abortEpoch", "error"] {
      fields.append((name, offset, 8)); offset += 8
    }
    // Expert parallelism: rank, cellRows, ranks, dispatchers, the peer table pointer.
    for name in ["rank", "cellRows", "ranks", "dispatchers"] { fields.append((name, offset, 4)); offset += 4 }
    fields.append(("peers", offset, 8)); offset += 8
    fields.append(("trace", offset, 8)); offset += 8
    fields.append(("dispatchSent", offset, 8)); offset += 8
    for name in ["stallRole", "stallRank"] { fields.append((name, offset, 4)); offset += 4 }
    // The NVSHMEM put transport's arrival counts and staging buffer.
    for name in ["dispatchArrive", "combineArrive", "stageOut"] { fields.append((name, offset, 8)); offset += 8 }
    // tf32 on wgmma: the gate's rounded copy of x.
    fields.append(("xRounded", offset, 8)); offset += 8
    // TMA: the tensor maps.
    fields.append(("tensorMaps", offset, 8)); offset += 8
    // Atomic combine: each row's pick weight.
    fields.append(("rowWeight", offset, 8)); offset += 8
    return fields
  }()

  @Test("the hand-computed Params offsets: 9 pointers at 0..<72, ints at 72..<92, epoch 92, timeoutNs 96, 19 pointers from 104, rank/cellRows/ranks/dispatchers at 256..<272, peers at 272, trace at 280, dispatchSent at 288, stallRole/stallRank at 296..<304, dispatchArrive/combineArrive/stageOut at 304..<328, xRounded at 328, tensorMaps at 336, rowWeight at 344")
  func handOffsets() {
    let offsets = Dictionary(uniqueKeysWithValues: Self.paramsFields.map { ($0.name, $0.offset) })
    #expect(Self.paramsFields.count == 50)
    #expect(offsets["dispatchArrive"] == 304 && offsets["stageOut"] == 320 && offsets["xRounded"] == 328 && offsets["tensorMaps"] == 336 && offsets["rowWeight"] == 344)
    #expect(offsets["rank"] == 256 && offsets["ranks"] == 264 && offsets["peers"] == 272 && offsets["trace"] == 280 && offsets["dispatchSent"] == 288)
    #expect(offsets["x"] == 0 && offsets["b3"] == 64)
    #expect(offsets["tokens"] == 72 && offsets["processors"] == 88)
    #expect(offsets["epoch"] == 92 && offsets["timeoutNs"] == 96)
    #expect(offsets["pairExpert"] == 104 && offsets["error"] == 248)
    #expect(offsets["dispatchers"] == 268)
    // Contiguous and naturally aligned, no padding, 352 bytes.
    var end = 0
    for field in Self.paramsFields {
      #expect(field.offset == end && field.offset % field.width == 0, "\(field)")
      end = field.offset + field.width
    }
    #expect(end == KernelParams.size)
  }

  @Test("KernelParams.bytes puts every field at its C offset")
  func paramsBytesAtCOffsets() {
    // Distinct, recognisable values: pointer i is 0xA0A0_0000_0000_0000 | i << 8 | i; the 32-bit
    // fields are 0xC0DE_00i0 (negative as Int32, so sign handling shows too).
    var p = KernelParams()
    var pointers: [String: UInt64] = [:]
    func pointer(_ name: String) -> UInt64 {
      let i = UInt64(pointers.count + 1)
      let value = 0xA0A0_0000_0000_0000 | i << 40 | i << 8 | i
      pointers[name] = value
      return value
    }
    p.x = pointer("x"); p.out = pointer("out"); p.gate = pointer("gate")
    p.w1 = pointer("w1"); p.b1 = pointer("b1"); p.w2 = pointer("w2"); p.b2 = pointer("b2"); p.w3 = pointer("w3"); p.b3 = pointer("b3")
    p.pairExpert = pointer("pairExpert"); p.pairWeight = pointer("pairWeight"); p.pairRank = pointer("pairRank"); p.pairRow = pointer("pairRow")
    p.chunkCount = pointer("chunkCount"); p.chunkOffset = pointer("chunkOffset"); p.expertCount = pointer("expertCount")
    p.rowToken = pointer("rowToken"); p.rowTileExpert = pointer("rowTileExpert"); p.readyRows = pointer("readyRows")
    p.hidden = pointer("hidden"); p.expertOut = pointer("expertOut")
    p.rowDone = pointer("rowDone"); p.counters = pointer("counters"); p.mailbox = pointer("mailbox"); p.finished = pointer("finished")
    p.barrier = pointer("barrier"); p.abortEpoch = pointer("abortEpoch"); p.error = pointer("error")
    p.peers = pointer("peers")
    p.trace = pointer("trace")
    p.dispatchSent = pointer("dispatchSent")
    p.dispatchArrive = pointer("dispatchArrive"); p.combineArrive = pointer("combineArrive"); p.stageOut = pointer("stageOut")
    p.xRounded = pointer("xRounded")
    p.tensorMaps = pointer("tensorMaps")
    p.rowWeight = pointer("rowWeight")
    #expect(pointers.count == 37)
    let words: [String: UInt32] = [
      "tokens": 0xC0DE_0010, "capacity": 0xC0DE_0020, "renormalize": 0xC0DE_0030, "maxRows": 0xC0DE_0040,
      "processors": 0xC0DE_0050, "epoch": 0xC0DE_0060, "rank": 0xC0DE_0070, "cellRows": 0xC0DE_0080, "ranks": 0xC0DE_0090,
      "dispatchers": 0xC0DE_00A0, "stallRole": 0xC0DE_00B0, "stallRank": 0xC0DE_00C0,
    ]
    p.rank = Int32(bitPattern: words["rank"]!)
    p.cellRows = Int32(bitPattern: words["cellRows"]!)
    p.ranks = Int32(bitPattern: words["ranks"]!)
    p.dispatchers = Int32(bitPattern: words["dispatchers"]!)
    p.stallRole = words["stallRole"]!
    p.stallRank = Int32(bitPattern: words["stallRank"]!)
    p.tokens = Int32(bitPattern: words["tokens"]!)
    p.capacity = Int32(bitPattern: words["capacity"]!)
    p.renormalize = Int32(bitPattern: words["renormalize"]!)
    p.maxRows = Int32(bitPattern: words["maxRows"]!)
    p.processors = Int32(bitPattern: words["processors"]!)
    p.epoch = words["epoch"]!
    p.timeoutNs = 0x7117_E007_0000_0001
    let timeout = p.timeoutNs

    let bytes = p.bytes
    #expect(bytes.count == KernelParams.size)
    for field in Self.paramsFields {
      switch field.width {
      case 8:
        let expected = field.name == "timeoutNs" ? timeout : pointers[field.name]
        #expect(u64(bytes, at: field.offset) == expected, "\(field.name) at \(field.offset)")
      default:
        #expect(u32(bytes, at: field.offset) == words[field.name], "\(field.name) at \(field.offset)")
      }
    }
  }

  @Test("the C compiler agrees with the hand-computed offsets (offsetof through NVRTC)", .enabled(if: Gate.runNVRTCTests))
  func cOffsetsMatchHand() throws {
    // NVRTC has neither <cstddef> nor __builtin_offsetof; its EDG front end folds __INTADDR__
    // (what EDG's own offsetof expands to) into a constant, so the initializers stay static.
    let params = Self.paramsFields.map { "OFFSET(flashmoe::Params, \($0.name))" }
    let record = ["epoch", "code", "role", "phase", "block", "thread", "awaited", "observed", "elapsedNs"]
      .map { "OFFSET(flashmoe::ErrorRecord, \($0))" }
    let source = """
      #include "layout.cuh"
      #define OFFSET(type, member) ((unsigned long long)__INTADDR__(&(((type*)0)->member)))
      extern "C" __device__ const unsigned long long params_offsets[] = {
        \(params.joined(separator: ",\n  ")),
        sizeof(flashmoe::Params)};
      extern "C" __device__ const unsigned long long record_offsets[] = {
        \(record.joined(separator: ",\n  ")),
        sizeof(flashmoe::ErrorRecord)};

      """
    let ptx = try Self.ptx(source, architecture: "sm_90a", name: "flashmoe_offsets_test.cu")
    let paramsArray = try #require(PTXArray(named: "params_offsets", in: ptx), "\(ptx)")
    #expect(paramsArray.words == Self.paramsFields.map { UInt64($0.offset) } + [UInt64(KernelParams.size)], "\(paramsArray)")
    let recordArray = try #require(PTXArray(named: "record_offsets", in: ptx), "\(ptx)")
    #expect(recordArray.words == [0, 4, 8, 12, 16, 20, 24, 32, 40, UInt64(ErrorRecord.size)], "\(recordArray)")
  }

  @Test("ErrorRecord reads each field at its C offset")
  func errorRecordDecodes() {
    var b = ByteWriter()
    for v: UInt32 in [7, 1, 3, 4, 131, 96] { b.u32(v) }
    for v: UInt64 in [0x1_0000_0002, 0x1_0000_0001, 10_000_400_000] { b.u64(v) }
    #expect(b.bytes.count == ErrorRecord.size)
    let r = ErrorRecord(b.bytes)
    #expect(r.epoch == 7 && r.code == 1 && r.role == 3 && r.phase == 4 && r.block == 131 && r.thread == 96)
    #expect(r.awaited == 0x1_0000_0002 && r.observed == 0x1_0000_0001 && r.elapsedNs == 10_000_400_000)
  }

  @Test("the PTX initializer parser reads NVRTC's byte form and the word form")
  func ptxParser() throws {
    let bytesForm = """
      .version 9.0
      .global .align 8 .b8 flashmoe_layout[48] = {0, 0, 1, 0, 0, 0, 0, 0, 0, 4, 0, 0, 0, 0, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 24, 0, 0, 0, 0, 0, 0, 0, 48, 0, 0, 0, 0, 0, 0, 0, 2};
      .visible .entry flashmoe_forward(
      """
    #expect(try #require(PTXArray(named: "flashmoe_layout", in: bytesForm)).words == [65536, 1024, 256, 24, 48, 2])
    let wordForm = ".visible .global .align 8 .u64 flashmoe_layout[6] = {65536, 0x400, 256, 24, 48, 2};\n"
    #expect(try #require(PTXArray(named: "flashmoe_layout", in: wordForm)).words == [65536, 1024, 256, 24, 48, 2])
    let trailingZeros = ".global .align 8 .b8 flashmoe_layout[48] = {1};"
    #expect(try #require(PTXArray(named: "flashmoe_layout", in: trailingZeros)).words == [1, 0, 0, 0, 0, 0])
    // A use of the name is not its declaration.
    #expect(PTXArray(named: "flashmoe_layout", in: "\tmov.u64 %rd1, flashmoe_layout;\n") == nil)
    #expect(PTXArray(named: "flashmoe_layout", in: ".global .align 8 .b8 flashmoe_layout[2] = {1, 2, 3};") == nil)
  }
}

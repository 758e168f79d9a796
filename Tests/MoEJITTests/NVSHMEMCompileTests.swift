import TestSupport
import CUDADriver
import Glibc
import MoECore
import MoEKernels
import Testing
@testable import MoEJIT

/// Kernels that use NVSHMEM's device API, built without a GPU: NVRTC, header-only, one sm_90a
/// cubin. Loading and running them needs GPUs (`flashmoe verify --launcher env` on the GPU machine).
@Suite("NVSHMEM kernel build")
struct NVSHMEMCompileTests {
  /// Peer pointer when NVLink reaches the peer, else a put with signal; then wait for our own signal.
  static func exchangeSource(includes: String) -> String {
    """
    \(includes)
    extern "C" __global__ void exchange(float* symmetric, uint64_t* signal, const float* local, size_t n, int peer) {
      float* direct = (float*)nvshmem_ptr(symmetric, peer);
      if (direct != nullptr) {
        for (size_t i = threadIdx.x; i < n; i += blockDim.x) direct[i] = local[i];
        __syncthreads();
        if (threadIdx.x == 0) nvshmemx_signal_op(signal, 1, NVSHMEM_SIGNAL_SET, peer);
      } else {
        nvshmemx_putmem_signal_nbi_block(symmetric, local, n * sizeof(float), signal, 1, NVSHMEM_SIGNAL_SET, peer);
      }
      if (threadIdx.x == 0) nvshmem_signal_wait_until(signal, NVSHMEM_CMP_EQ, 1);
    }
    """
  }

  /// The whole API (`nvshmem.h`, collectives included) and the device headers alone (faster).
  static let includeSets = [
    "#include <nvshmem.h>\n#include <nvshmemx.h>",
    "#include <device/nvshmem_defines.h>\n#include <device/nvshmemx_defines.h>",
  ]

  /// The layer's kernel with the NVSHMEM put transport (remote.cuh), built as `CUDAMoE` builds it
  /// for a multi-process job whose peers `nvshmem_ptr` cannot reach: one sm_90a cubin per variant,
  /// within the register file, the layout probe and NVSHMEM's device state in it, cached; and a
  /// whole program, so that ptxas keeps wgmma asynchronous (linked with NVSHMEM's device library
  /// it serialised them, C7509, and the results were wrong on the GPU).
  @Test("the layer kernel with the NVSHMEM put transport: whole program (no wgmma serialisation), no spills, cached",
        .enabled(if: Gate.runNVSHMEMTests, Comment(rawValue: Gate.nvshmemSkipNote)),
        arguments: [(DType.bf16, Math.fp32, ExpertForm.plain), (.fp32, .tf32, .gated)])
  func putTransportKernel(dtype: DType, math: Math, form: ExpertForm) throws {
    let spec = KernelSpec(
      hidden: 256, ffn: 256, experts: 8, topK: 2, dtype: dtype, math: math, form: form, activation: .gelu, biases: true,
      tileN: KernelSpec.preferredTileN(hidden: 256, ffn: 256, dtype: dtype, math: math, form: form, architecture: "sm_90a"),
      architecture: "sm_90a", ranks: 2, transport: .nvshmem)
    #expect(spec.translationUnit().contains("#define FLASHMOE_TRANSPORT_NVSHMEM 1"))
    let temp = TemporaryDirectory("flashmoe-nvshmem-cache")
    defer { temp.remove() }
    let compiler = try KernelCompiler(cache: KernelCache(directory: temp.path))
    let first = try compiler.compile(spec)
    let again = try compiler.compile(spec)
    // Cached like any kernel, under a key that also covers NVSHMEM's headers.
    #expect(!first.cacheHit && again.cacheHit && again.kernel.cubin == first.kernel.cubin)
    var peer = spec
    peer.transport = nil
    #expect(try compiler.nvshmemKey(for: spec) == first.kernel.key && first.kernel.key != compiler.key(for: peer))
    let kernel = first.kernel
    #expect(kernel.cubin.starts(with: [0x7F, 0x45, 0x4C, 0x46]))
    let resources = try #require(kernel.resources, "no ptxas report for flashmoe_forward in the log:\n\(kernel.log)")
    #expect(resources.spillStoreBytes == 0 && resources.spillLoadBytes == 0 && resources.stackFrameBytes == 0, "\(resources)")
    #expect(!kernel.log.contains("C7509") && !kernel.log.contains("C7510"), "wgmma serialised:\n\(kernel.log)")
    if let nvdisasm = Gate.nvdisasm {
      let hazards = WGMMAHazards.find(inSASS: try SASS.disassemble(kernel.cubin, nvdisasm: nvdisasm))
      #expect(hazards.isEmpty, "\(hazards.count) wgmma accumulator hazards, first \(hazards.prefix(3))")
    }
    for symbol in ["flashmoe_forward", "flashmoe_layout", "nvshmemi_device_state_d", "nvshmemi_device_lib_version_d"] {
      #expect(kernel.cubin.firstRange(of: Array(symbol.utf8)) != nil, "\(symbol) not in the cubin")
    }
  }

  /// Dispatch in cell order (opt-in) with the put transport: the rows go out through
  /// `put_counted_warp` in the cell walk too.
  @Test("the put transport with dispatch in cell order builds: no spills, no wgmma serialisation",
        .enabled(if: Gate.runNVSHMEMTests, Comment(rawValue: Gate.nvshmemSkipNote)))
  func putTransportCellOrder() throws {
    var spec = KernelSpec(
      hidden: 256, ffn: 256, experts: 8, topK: 2, dtype: .bf16, form: .plain, activation: .gelu, biases: true,
      tileN: KernelSpec.preferredTileN(hidden: 256, ffn: 256, dtype: .bf16, math: .fp32, form: .plain, architecture: "sm_90a"),
      architecture: "sm_90a", ranks: 2, transport: .nvshmem)
    spec.dispatchByCell = true
    let unit = spec.translationUnit()
    #expect(unit.contains("#define FLASHMOE_TRANSPORT_NVSHMEM 1") && unit.contains("#define FLASHMOE_DISPATCH_BY_CELL 1"))
    let kernel = try KernelCompiler(cache: nil).compileUncached(spec)
    let resources = try #require(kernel.resources, "no ptxas report:\n\(kernel.log)")
    #expect(!resources.spills && resources.stackFrameBytes == 0, "\(resources)")
    #expect(kernel.wgmmaSerialization.isEmpty, "\(kernel.wgmmaSerialization)")
  }

  /// The put transport's probe (`flashmoe verify --launcher env` runs it before the battery) builds
  /// the way the layer's put build does.
  @Test("the NVSHMEM put transport probe builds: both kernels, no spills, no stack",
        .enabled(if: Gate.runNVSHMEMTests, Comment(rawValue: Gate.nvshmemSkipNote)))
  func transportProbe() throws {
    let source = try #require(KernelSources.contents(of: "transport_probe.cu"))
    let build = try KernelCompiler(cache: nil).compileNVSHMEM(source: source, name: "transport_probe.cu", headers: KernelSources.files)
    for name in ["flashmoe_probe_put", "flashmoe_probe_check"] {
      let kernel = try #require(build.resources[name], "no ptxas report for \(name) in:\n\(build.compileLog)")
      #expect(kernel.isEntry && !kernel.spills && kernel.stackFrameBytes == 0, "\(kernel)")
    }
  }

  /// NVRTC resolves a quoted include against the in-memory headers first: a FlashMoE kernel file
  /// with the name of one of NVSHMEM's quoted includes would be compiled in its place once the
  /// kernel and NVSHMEM's headers share a translation unit.
  @Test("no kernel source shares a name with a file NVSHMEM's headers include by quotes",
        .enabled(if: Gate.runNVSHMEMTests, Comment(rawValue: Gate.nvshmemSkipNote)))
  func noHeaderShadowsNVSHMEM() throws {
    let root = try NVSHMEMPaths.find().includePath
    var quoted: Set<String> = []
    var folders = [root]
    while let folder = folders.popLast() {
      guard let dir = opendir(folder) else { continue }
      defer { closedir(dir) }
      while let entry = readdir(dir) {
        let name = withUnsafeBytes(of: entry.pointee.d_name) { String(decoding: $0.prefix { $0 != 0 }, as: UTF8.self) }
        guard !name.hasPrefix(".") else { continue }
        let path = folder + "/" + name
        if entry.pointee.d_type == UInt8(DT_DIR) { folders.append(path); continue }
        guard let file = fopen(path, "r") else { continue }
        defer { fclose(file) }
        var line = [CChar](repeating: 0, count: 4096)
        while fgets(&line, Int32(line.count), file) != nil {
          let text = String(decoding: line.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
          guard let start = text.firstRange(of: "#include \""), let end = text[start.upperBound...].firstIndex(of: "\"") else { continue }
          let included = String(text[start.upperBound..<end])
          quoted.insert(String(included.split(separator: "/").last ?? Substring(included)))
        }
      }
    }
    #expect(quoted.contains("barrier.cuh"), "the scan found NVSHMEM's own quoted includes")
    let ours = Set(KernelSources.files.map(\.name))
    #expect(ours.intersection(quoted).isEmpty, "kernel files named like NVSHMEM's includes: \(ours.intersection(quoted).sorted())")
  }

  @Test("nvshmem_ptr + putmem_signal_nbi_block + signal_wait_until: an sm_90a ELF cubin, no spills",
        .enabled(if: Gate.runNVSHMEMTests, Comment(rawValue: Gate.nvshmemSkipNote)), arguments: includeSets)
  func exchangeKernel(includes: String) throws {
    let compiler = try KernelCompiler(cache: nil)
    let build = try compiler.compileNVSHMEM(source: Self.exchangeSource(includes: includes), name: "exchange.cu")
    #expect(build.architecture == "sm_90a")
    #expect(build.cubin.starts(with: [0x7F, 0x45, 0x4C, 0x46]), "cubin is an ELF image")
    for option in ["-default-device", "--gpu-architecture=sm_90a", "--ptxas-options=-v"] {
      #expect(build.compileOptions.contains(option), "missing \(option) in \(build.compileOptions)")
    }
    // nvshmemx_cumodule_init looks these up by name in the loaded module.
    for symbol in ["nvshmemi_device_state_d", "nvshmemi_device_lib_version_d", "exchange"] {
      #expect(build.cubin.firstRange(of: Array(symbol.utf8)) != nil, "\(symbol) not in the cubin")
    }
    let kernel = try #require(build.resources["exchange"], "no ptxas report for exchange in:\n\(build.compileLog)")
    #expect(kernel.isEntry)
    #expect(kernel.architecture == "sm_90a")
    #expect(kernel.registers > 0)
    for function in build.resources.functions {
      #expect(!function.spills, "\(function.name) spills: \(build.compileLog)")
      #expect(function.stackFrameBytes == 0, "\(function.name) has a stack frame: \(build.compileLog)")
    }
  }

  @Test("a compile error throws JITError.compilation with the program's own line numbers",
        .enabled(if: Gate.runNVSHMEMTests, Comment(rawValue: Gate.nvshmemSkipNote)))
  func compileError() throws {
    let compiler = try KernelCompiler(cache: nil)
    let source = """
      #include <device/nvshmem_defines.h>
      extern "C" __global__ void broken(int* p) { p[0] = nvshmem_no_such_function(); }
      """
    do {
      _ = try compiler.compileNVSHMEM(source: source, name: "broken_nvshmem.cu")
      Issue.record("compiling broken code succeeded")
    } catch let JITError.compilation(spec, message, log) {
      #expect(spec == "NVSHMEM program broken_nvshmem.cu")
      #expect(message.contains("nvrtcCompileProgram(broken_nvshmem.cu)"))
      #expect(log.contains("broken_nvshmem.cu(2)"), "log: \(log)")
      #expect(log.contains("nvshmem_no_such_function"))
    }
  }

  @Test("a missing NVSHMEM folder is reported before anything is compiled", .enabled(if: Gate.runNVRTCTests))
  func missingNVSHMEM() throws {
    let compiler = try KernelCompiler(cache: nil)
    #expect {
      _ = try compiler.compileNVSHMEM(source: "", nvshmem: NVSHMEMPaths(home: "/nonexistent/nvshmem"))
    } throws: { error in
      guard case let CUDAError.unavailable(what, searched) = error else { return false }
      return what == "NVSHMEM device files in /nonexistent/nvshmem"
        && searched.contains("/nonexistent/nvshmem/include/nvshmem.h")
    }
  }
}

import TestSupport
import Testing
@testable import CUDADriver

/// The NVSHMEM plumbing without a GPU: the host ABI structs against NVSHMEM's headers, the library
/// searches and their errors, loading libnvshmem_host (nothing is initialised), nvJitLink's funnel.
@Suite("NVSHMEM and nvJitLink")
struct NVSHMEMTests {
  // MARK: - ABI structs

  @Test("the host ABI structs have the sizes and offsets NVSHMEM 3.x asserts")
  func abiSizes() {
    #expect(NVSHMEMABI.uniqueIDBytes == 128)
    #expect(NVSHMEMABI.uniqueIDArgsBytes == 24)
    #expect(NVSHMEMABI.initArgsBytes == 128)
    #expect(NVSHMEMABI.initAttrBytes == 144)
    #expect(NVSHMEMABI.initAttrArgsOffset == 16)
    #expect(NVSHMEMABI.initArgsUIDArgsOffset == 8)
  }

  @Test("the host ABI structs match NVSHMEM's own headers (static_asserts compiled by NVRTC)",
        .enabled(if: Gate.runNVSHMEMTests, Comment(rawValue: Gate.nvshmemSkipNote)))
  func abiAgainstHeaders() throws {
    let nvrtc = try NVRTC.shared()
    let paths = try NVSHMEMPaths.find()
    let cccl = try CUDAPaths.ccclIncludeDirectory(cudaInclude: nvrtc.includeDirectory)
    let source = """
      #include <cuda/std/type_traits>
      #include <device_host/nvshmem_types.h>
      static_assert(sizeof(nvshmemx_uniqueid_t) == \(NVSHMEMABI.uniqueIDBytes), "uniqueid");
      static_assert(sizeof(nvshmemx_uniqueid_args_t) == \(NVSHMEMABI.uniqueIDArgsBytes), "uniqueid_args");
      static_assert(sizeof(nvshmemx_init_args_t) == \(NVSHMEMABI.initArgsBytes), "init_args");
      static_assert(sizeof(nvshmemx_init_attr_t) == \(NVSHMEMABI.initAttrBytes), "init_attr");
      // NVRTC has no constant offsetof; args is init_attr's last member and uid_args follows an int,
      // so their offsets follow from sizes and alignments.
      static_assert(sizeof(nvshmemx_init_attr_t) - sizeof(nvshmemx_init_args_t) == \(NVSHMEMABI.initAttrArgsOffset), "args");
      static_assert(alignof(nvshmemx_uniqueid_args_t) == \(NVSHMEMABI.initArgsUIDArgsOffset), "uid_args");
      static_assert(cuda::std::is_same<decltype(((nvshmemx_init_attr_t*)0)->args), nvshmemx_init_args_t>::value, "args type");
      static_assert(cuda::std::is_same<decltype(((nvshmemx_init_args_t*)0)->uid_args), nvshmemx_uniqueid_args_t>::value, "uid_args type");
      static_assert(NVSHMEM_VENDOR_MAJOR_VERSION == 3, "NVSHMEM 3.x");
      extern "C" __global__ void abi_probe() {}
      """
    // A failed static_assert is a compile error, thrown with NVRTC's log naming the assertion.
    let program = try nvrtc.compile(
      source: "#include <non_abi/nvshmem_version.h>\n" + source, name: "abi_probe.cu",
      options: ["--gpu-architecture=compute_90", "-std=c++17", "--include-path=\(paths.includePath)", "--include-path=\(cccl)"])
    #expect(program.ptx?.contains("abi_probe") == true)
  }

  @Test("a unique ID must be 128 bytes with NVSHMEM's version word")
  func uniqueIDValidation() throws {
    let fresh = NVSHMEMABI.bytes(of: NVSHMEMABI.emptyUniqueID())
    #expect(fresh.count == 128)
    #expect(Array(fresh.prefix(4)) == [128, 0, 1, 0])  // (1 << 16) + 128, little-endian
    _ = try NVSHMEMABI.uniqueID(from: fresh)
    #expect {
      _ = try NVSHMEMABI.uniqueID(from: [UInt8](repeating: 0, count: 64))
    } throws: { error in
      "\(error)".contains("length 64 bytes; expected 128")
    }
    #expect {
      _ = try NVSHMEMABI.uniqueID(from: [UInt8](repeating: 0, count: 128))
    } throws: { error in
      "\(error)".contains("version field 0; expected 65664")
    }
    let attr = NVSHMEMABI.initialAttributes()
    #expect(attr.version == 65536 + 144)
    #expect(attr.args.version == 65536 + 128)
    #expect(attr.args.uid_args.version == 65536 + 24)
    #expect(attr.args.uid_args.myrank == -1 && attr.args.uid_args.nranks == -1)
  }

  // MARK: - Searches

  @Test("FLASHMOE_NVSHMEM_HOME pointing nowhere: the error names that folder and the library")
  func nvshmemHomeOverride() {
    let folder = "/nonexistent/flashmoe/nvshmem"
    do {
      _ = try NVSHMEMPaths.find(environment: ["FLASHMOE_NVSHMEM_HOME": folder])
      Issue.record("found NVSHMEM in a folder that does not exist")
    } catch let error as CUDAError {
      guard case let .unavailable(what, searched) = error else { Issue.record("unexpected \(error)"); return }
      #expect(what.contains("FLASHMOE_NVSHMEM_HOME"))
      #expect(what.contains("lib/libnvshmem_host.so.3"))
      #expect(searched == [folder])
    } catch {
      Issue.record("unexpected error \(error)")
    }
  }

  @Test("the NVSHMEM search: NVSHMEM_HOME first, then pip's nvidia/nvshmem, /opt venvs included")
  func nvshmemHomePatterns() {
    let patterns = CUDAPaths.nvshmemHomePatterns(environment: ["NVSHMEM_HOME": "/x/nvshmem", "VIRTUAL_ENV": "/venv"])
    #expect(patterns.first == "/x/nvshmem")
    #expect(patterns.contains("/venv/lib/python3*/site-packages/nvidia/nvshmem"))
    #expect(patterns.contains("/opt/*/.venv/lib/python3*/site-packages/nvidia/nvshmem"))
  }

  @Test("a failed folder search lists every place tried, in order, and what it looked for")
  func failedFolderSearch() {
    let patterns = ["/nonexistent/a", "/nonexistent/*/b"]
    do {
      _ = try CUDAPaths.firstFolder(holding: "lib/libnvshmem_host.so.3", patterns: patterns, what: "NVSHMEM (x)")
      Issue.record("found a folder that does not exist")
    } catch let error as CUDAError {
      guard case let .unavailable(what, searched) = error else { Issue.record("unexpected \(error)"); return }
      #expect(what == "NVSHMEM (x)")
      #expect(searched == patterns)
      #expect(error.description.contains("NVSHMEM (x) not found; searched:\n  - /nonexistent/a\n  - /nonexistent/*/b"))
    } catch {
      Issue.record("unexpected error \(error)")
    }
  }

  @Test("FLASHMOE_NVJITLINK pointing nowhere: the error names that path")
  func nvJitLinkOverride() {
    let path = "/nonexistent/flashmoe/libnvJitLink.so.13"
    #expect {
      _ = try NVJitLink.load(environment: ["FLASHMOE_NVJITLINK": path])
    } throws: { error in
      guard case let CUDAError.unavailable(what, searched) = error else { return false }
      return what.contains("FLASHMOE_NVJITLINK") && searched == ["\(path) (no such file)"]
    }
  }

  @Test("a failed nvJitLink search lists toolkit, pip and loader-path places")
  func nvJitLinkSearchListsEverything() {
    let patterns = CUDAPaths.nvJitLinkFilePatterns(environment: ["CUDA_HOME": "/cuda"])
    #expect(patterns.first == "/cuda/lib64/libnvJitLink.so.13")
    #expect(patterns.contains("/usr/local/cuda/lib64/libnvJitLink.so.13"))
    #expect(patterns.contains("/opt/*/.venv/lib/python3*/site-packages/nvidia/cu13/lib/libnvJitLink.so.13"))
    #expect(patterns.contains("/opt/*/.venv/lib/python3*/site-packages/nvidia/nvjitlink/lib/libnvJitLink.so.13"))
    do {
      _ = try NVJitLink.load(patterns: ["/nonexistent/x/libnvJitLink.so.13"], loaderName: "libnvJitLink-flashmoe-missing.so.13")
      Issue.record("found a library that does not exist")
    } catch let error as CUDAError {
      guard case let .unavailable(what, searched) = error else { Issue.record("unexpected \(error)"); return }
      #expect(what.contains("libnvJitLink.so.13"))
      #expect(searched.first == "/nonexistent/x/libnvJitLink.so.13")
      #expect(searched.last?.hasPrefix("libnvJitLink-flashmoe-missing.so.13 on the loader path") == true)
    } catch {
      Issue.record("unexpected error \(error)")
    }
  }

  @Test("FLASHMOE_CCCL_INCLUDE pointing nowhere: the error names that folder")
  func ccclOverride() {
    #expect {
      _ = try CUDAPaths.ccclIncludeDirectory(environment: ["FLASHMOE_CCCL_INCLUDE": "/nonexistent/cccl"])
    } throws: { error in
      guard case let CUDAError.unavailable(what, searched) = error else { return false }
      return what.contains("cuda/std/cstdint") && searched == ["/nonexistent/cccl"]
    }
  }

  @Test("the CCCL of NVRTC's CUDA headers folder is looked at first (CUDA 13: include/cccl)")
  func ccclPatterns() {
    let patterns = CUDAPaths.ccclFolderPatterns(environment: [:], cudaInclude: "/cuda/include")
    #expect(Array(patterns.prefix(2)) == ["/cuda/include/cccl", "/cuda/include"])
  }

  @Test("the error texts of nvJitLink and NVSHMEM failures name the call, the code and the log")
  func errorTexts() {
    let link = CUDAError.nvJitLink(
      code: 6, message: "NVJITLINK_ERROR_INTERNAL", call: "nvJitLinkComplete(sm_90a)",
      log: "error   : Undefined reference to 'f' in 'ltoPtx'\n")
    #expect(link.description == "nvJitLinkComplete(sm_90a) failed: NVJITLINK_ERROR_INTERNAL (6)\nerror   : Undefined reference to 'f' in 'ltoPtx'")
    let shmem = CUDAError.nvshmem(code: 7, message: "NVSHMEMX_ERROR_INTERNAL", call: "nvshmemx_hostlib_init_attr", library: "/l.so")
    #expect(shmem.description == "nvshmemx_hostlib_init_attr failed: NVSHMEMX_ERROR_INTERNAL (7) [/l.so]")
    #expect(NVJitLink.resultName(18) == "NVJITLINK_ERROR_LTO_NOT_ENABLED")
    #expect(NVJitLink.resultName(99) == "nvJitLink error 99")
    #expect(NVSHMEMLibrary.statusName(2).hasPrefix("NVSHMEMX_ERROR_OUT_OF_MEMORY"))
  }

  // MARK: - Loading (no GPU, nothing initialised)

  @Test("libnvshmem_host loads without a GPU; calls before initialize throw, naming the call",
        .enabled(if: Gate.runNVSHMEMTests, Comment(rawValue: Gate.nvshmemSkipNote)))
  func hostLibraryLoads() throws {
    let nvshmem = try NVSHMEMLibrary.load(paths: NVSHMEMPaths.find())
    #expect(nvshmem.version.major == 3)
    #expect(nvshmem.libraryPath.hasSuffix("libnvshmem_host.so.3"))
    #expect(nvshmem.includePath.hasSuffix("/include"))
    #expect(nvshmem.deviceBitcodePath.hasSuffix("lib/libnvshmem_device.bc"))
    #expect(nvshmem.deviceLibraryPath.hasSuffix("lib/libnvshmem_device.a"))
    #expect(nvshmem.initStatus == 0)
    #expect(!nvshmem.isInitialized)
    #expect {
      _ = try nvshmem.myPE
    } throws: { error in
      "\(error)".hasPrefix("nvshmem_my_pe: NVSHMEM is not initialized")
    }
    #expect {
      _ = try nvshmem.malloc(bytes: 0)
    } throws: { error in
      "\(error)" == "nvshmem_malloc(0 bytes): size 0; expected > 0"
    }
  }

  // MARK: - nvJitLink

  @Test("nvJitLink links NVRTC's LTO-IR into an sm_90a cubin with ptxas's report",
        .enabled(if: Gate.runNVSHMEMTests, Comment(rawValue: Gate.nvshmemSkipNote)))
  func linkLTOIR() throws {
    let linker = try NVJitLink.shared()
    #expect(linker.version.major == 13)
    let program = try NVRTC.shared().compileToLTOIR(
      source: "extern \"C\" __global__ void twice(float* x) { x[threadIdx.x] *= 2.0f; }", name: "twice.cu",
      options: ["--gpu-architecture=sm_90a", "-std=c++17"])
    #expect(program.options.contains("-dlto"))
    #expect(!program.ltoIR.isEmpty)
    let linked = try linker.link(ltoIR: program.ltoIR, libraries: [], architecture: "sm_90a")
    #expect(linked.cubin.starts(with: [0x7F, 0x45, 0x4C, 0x46]), "cubin is an ELF image")
    let usage = try #require(PTXASReport(parsing: linked.infoLog)["twice"], "no ptxas report in:\n\(linked.infoLog)")
    #expect(usage.architecture == "sm_90a")
    #expect(!usage.spills)
  }

  @Test("an unresolved device symbol throws CUDAError.nvJitLink with the linker's log",
        .enabled(if: Gate.runNVSHMEMTests, Comment(rawValue: Gate.nvshmemSkipNote)))
  func linkError() throws {
    let program = try NVRTC.shared().compileToLTOIR(
      source: """
        extern "C" __device__ int flashmoe_missing(int);
        extern "C" __global__ void calls_missing(int* p) { p[0] = flashmoe_missing(p[1]); }
        """,
      name: "missing.cu", options: ["--gpu-architecture=sm_90a"])
    do {
      _ = try NVJitLink.shared().link(ltoIR: program.ltoIR, libraries: [])
      Issue.record("linking an undefined symbol succeeded")
    } catch let CUDAError.nvJitLink(code, message, call, log) {
      #expect(code != 0)
      #expect(message.hasPrefix("NVJITLINK_ERROR_"))
      #expect(call == "nvJitLinkComplete(sm_90a)")
      #expect(log.contains("flashmoe_missing"), "log: \(log)")
    }
  }

  @Test("nvJitLink refuses NVSHMEM's raw LLVM bitcode; the error says what to link instead",
        .enabled(if: Gate.runNVSHMEMTests, Comment(rawValue: Gate.nvshmemSkipNote)))
  func bitcodeIsRefused() throws {
    let program = try NVRTC.shared().compileToLTOIR(
      source: "extern \"C\" __global__ void empty_kernel() {}", name: "empty.cu", options: ["--gpu-architecture=sm_90a"])
    let bitcode = try NVSHMEMPaths.find().deviceBitcodePath
    #expect {
      _ = try NVJitLink.shared().link(ltoIR: program.ltoIR, libraries: [bitcode])
    } throws: { error in
      guard case let CUDAError.nvJitLink(_, _, call, log) = error else { return false }
      return call == "nvJitLinkAddFile(\(bitcode))" && log.contains("link NVSHMEM's lib/libnvshmem_device.a instead")
    }
    #expect {
      _ = try NVJitLink.shared().link(ltoIR: program.ltoIR, libraries: ["/nonexistent/libx.a"])
    } throws: { error in
      "\(error)" == "nvJitLinkAddFile(/nonexistent/libx.a): no such file"
    }
  }
}

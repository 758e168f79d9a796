import CUDADriver

/// Building kernels that use NVSHMEM's device API (issue #6): NVRTC compiles the translation unit to
/// LTO-IR against NVSHMEM's headers, nvJitLink links it with NVSHMEM's device library into one cubin.
///
/// What NVSHMEM 3.4's device headers need under NVRTC 13.0 (found by compiling them):
/// - the CCCL headers (`<cuda/std/cstdint>`, `<cuda/std/type_traits>`, ...): NVSHMEM includes them
///   when `__CUDACC_RTC__` is defined, and NVRTC ships no C++ library. CUDA 13 keeps them in
///   `include/cccl` (pip: nvidia-cuda-cccl);
/// - `-default-device`: device_host/nvshmem_tensor.h has a constructor without
///   `__host__`/`__device__`, and NVRTC rejects host functions;
/// - relocatable device code (`--relocatable-device-code=true`, with `-dlto` for LTO-IR): the
///   device state (nvshmemi_device_state_d, ...) is `extern __constant__` and defined by the library;
/// - the prelude (`nvshmemPrelude`), see there.
///
/// The library linked is `lib/libnvshmem_device.a` (NVJITLINK_INPUT_LIBRARY): nvJitLink 13.0 does
/// not read the raw LLVM bitcode of `lib/libnvshmem_device.bc` ("unrecognized input type"), which
/// is meant for libNVVM / LLVM front ends.
extension KernelCompiler {
  /// The name of the in-memory header every NVSHMEM translation unit starts with.
  public static let nvshmemPreludeName = "flashmoe_nvshmem_prelude.h"

  /// Configures NVSHMEM's device headers for NVRTC + nvJitLink, before the program's own code.
  public static let nvshmemPrelude = """
    // flashmoe_nvshmem_prelude.h: NVSHMEM 3.4 device headers under NVRTC + nvJitLink.
    #pragma once
    // (1) NVSHMEM's device functions are compiled from its headers (inline), not called in
    //     libnvshmem_device.a: NVRTC's <cuda/std/cstdint> makes uint64_t `unsigned long long` where the
    //     library (nvcc + glibc) has `unsigned long`, so the C++ names of the library's functions that
    //     take a uint64_t (nvshmemi_transfer_put_signal, ...) never match and stay unresolved. This is
    //     the configuration NVSHMEM builds its own bitcode library with (__clang_llvm_bitcode_lib__).
    // (2) No IBGDA device code: it needs <infiniband/mlx5dv.h>. A PE that NVLink / P2P cannot reach
    //     is served by NVSHMEM's proxy thread instead.
    #include <non_abi/nvshmem_build_options.h>
    #undef NVSHMEM_IBGDA_SUPPORT
    #undef NVSHMEM_IBGDA_SUPPORT_GPUMEM_ONLY
    #ifndef NVSHMEM_ENABLE_ALL_DEVICE_INLINING
    #define NVSHMEM_ENABLE_ALL_DEVICE_INLINING
    #endif
    // (3) The collectives (nvshmem.h includes them) name std::is_integral / is_signed / is_unsigned
    //     outside their __CUDACC_RTC__ guards; NVRTC has no <type_traits>, libcu++ has them.
    #include <cuda/std/type_traits>
    namespace std { using cuda::std::is_integral; using cuda::std::is_signed; using cuda::std::is_unsigned; }

    """

  /// The NVRTC options of an NVSHMEM translation unit (NVRTC adds the CUDA headers folder and
  /// `compileToLTOIR` adds `-dlto --relocatable-device-code=true`).
  public static func nvshmemOptions(architecture: String, nvshmemInclude: String, ccclInclude: String) -> [String] {
    [
      "--gpu-architecture=\(architecture)", "-std=c++17", "-default-device",
      "--include-path=\(nvshmemInclude)", "--include-path=\(ccclInclude)",
    ]
  }

  /// Compiles `source` (CUDA C++ that may `#include <nvshmem.h>` / `<nvshmemx.h>`, or just
  /// `<device/nvshmem_defines.h>` / `<device/nvshmemx_defines.h>` for a faster compile without the
  /// collectives) and links it with NVSHMEM's device library. No cache: the result depends on the
  /// NVSHMEM installation too.
  /// - Parameters:
  ///   - headers: in-memory headers (none by default). NVRTC looks in-memory headers up before the
  ///     include paths, so none may share a name with one of NVSHMEM's quoted includes (FlashMoE's
  ///     grid barrier was renamed from barrier.cuh for this; a test checks the kernel sources).
  ///   - architecture: a real architecture; NVSHMEM's transport targets `sm_90a` (H100/H200).
  ///   - nvshmem: the NVSHMEM installation; by default `NVSHMEMPaths.find()`.
  ///   - linker: nvJitLink; by default `NVJitLink.shared()`.
  ///   - ccclInclude: the CCCL headers; by default `CUDAPaths.ccclIncludeDirectory`, the CCCL of
  ///     NVRTC's CUDA headers folder first.
  ///   - linkOptions: more nvJitLink options (`-maxrregcount=N`, `-lineinfo`, ...).
  /// - Throws: `CUDAError.unavailable` (NVSHMEM, its device files, CCCL or nvJitLink missing, naming
  ///   the places searched), `JITError.compilation` with NVRTC's log, `CUDAError.nvJitLink` with the
  ///   linker's error log, `JITError.noCubin`.
  public func compileNVSHMEM(
    source: String, name: String = "nvshmem_kernel.cu", headers: [(name: String, contents: String)] = [],
    architecture: String = "sm_90a", nvshmem: NVSHMEMPaths? = nil, linker: NVJitLink? = nil, ccclInclude: String? = nil, linkOptions: [String] = []
  ) throws -> NVSHMEMKernelBuild {
    let paths = try nvshmem ?? NVSHMEMPaths.find()
    try paths.checkDeviceFiles()
    let cccl = try ccclInclude ?? CUDAPaths.ccclIncludeDirectory(cudaInclude: nvrtc.includeDirectory)
    let linker = try linker ?? NVJitLink.shared()

    let options = Self.nvshmemOptions(architecture: architecture, nvshmemInclude: paths.includePath, ccclInclude: cccl)
    // The prelude comes first; #line keeps the program's diagnostics on its own line numbers.
    let unit = "#include \"\(Self.nvshmemPreludeName)\"\n#line 1 \"\(name)\"\n" + source
    let program: LTOIRProgram
    do {
      program = try nvrtc.compileToLTOIR(
        source: unit, name: name, headers: headers + [(name: Self.nvshmemPreludeName, contents: Self.nvshmemPrelude)], options: options)
    } catch let CUDAError.nvrtc(code, message, call, log) {
      throw JITError.compilation(spec: "NVSHMEM program \(name)", message: "\(call): \(message) (\(code))", log: log)
    }

    let libraries = [paths.deviceLibraryPath]
    let linked = try linker.link(
      ltoIR: program.ltoIR, libraries: libraries, architecture: architecture, options: linkOptions)
    guard !linked.cubin.isEmpty else {
      throw JITError.noCubin(spec: "NVSHMEM program \(name)", log: program.log + linked.infoLog)
    }
    return NVSHMEMKernelBuild(
      name: name, architecture: architecture, cubin: linked.cubin, compileLog: program.log, linkLog: linked.infoLog,
      resources: PTXASReport(parsing: linked.infoLog), compileOptions: program.options, libraries: libraries)
  }
}

import CUDADriver

/// Building kernels that use NVSHMEM's device API (issue #6), header-only: NVRTC compiles the
/// translation unit with NVSHMEM's device code inlined from its headers into one whole-program
/// cubin, which defines NVSHMEM's device state itself (nvshmemi_device_state_d and
/// nvshmemi_device_lib_version_d, as NVSHMEM's Numba support does); nvshmemx_cumodule_init fills
/// it in each loaded module.
///
/// Why not link `lib/libnvshmem_device.a` with nvJitLink, as first built (measured on 2 × H200,
/// 2026-11-28): the link makes ptxas compile the program as relocatable code, where the one call
/// left (the IEEE division's slow path) counts as an extern call. ptxas then serialises every
/// wgmma (C7509: 1.59 ms per forward against 0.82 ms) and the dynamic shared array loses its
/// 1024-byte alignment, and the layer's tensor-core results came out wrong and different from run
/// to run (the fp32-on-FMA case, without wgmma, passed). Linked with nothing, the same program is
/// whole: no C7509, the alignment kept. Nothing of the library is needed: with all device code
/// inlined, its state variables are its only symbols the program uses.
///
/// What NVSHMEM 3.4's device headers need under NVRTC 13.0 (found by compiling them):
/// - the CCCL headers (`<cuda/std/cstdint>`, `<cuda/std/type_traits>`, ...): NVSHMEM includes them
///   when `__CUDACC_RTC__` is defined, and NVRTC ships no C++ library. CUDA 13 keeps them in
///   `include/cccl` (pip: nvidia-cuda-cccl);
/// - `-default-device`: device_host/nvshmem_tensor.h has a constructor without
///   `__host__`/`__device__`, and NVRTC rejects host functions;
/// - the prelude (`nvshmemPrelude`), see there.
extension KernelCompiler {
  /// The name of the in-memory header every NVSHMEM translation unit starts with.
  public static let nvshmemPreludeName = "flashmoe_nvshmem_prelude.h"

  /// Configures NVSHMEM's device headers for NVRTC, before the program's own code.
  public static let nvshmemPrelude = """
    // flashmoe_nvshmem_prelude.h: NVSHMEM 3.4 device headers under NVRTC, header-only.
    #pragma once
    // (1) Header-only device code: every NVSHMEM device function is compiled from its headers
    //     (inline), and the device state and library version are defined in this program
    //     (__NVSHMEM_NUMBA_SUPPORT__, the configuration of NVSHMEM's Numba bindings), for
    //     nvshmemx_cumodule_init to fill and check. No device library is linked.
    // (2) No IBGDA device code: it needs <infiniband/mlx5dv.h>. A PE that NVLink / P2P cannot reach
    //     is served by NVSHMEM's proxy thread instead.
    #define __NVSHMEM_NUMBA_SUPPORT__ 1
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

  /// The NVRTC options of an NVSHMEM translation unit (NVRTC adds the CUDA headers folder).
  public static func nvshmemOptions(architecture: String, nvshmemInclude: String, ccclInclude: String) -> [String] {
    [
      "--gpu-architecture=\(architecture)", "-std=c++17", "-default-device",
      "--include-path=\(nvshmemInclude)", "--include-path=\(ccclInclude)",
    ]
  }

  /// Compiles `source` (CUDA C++ that may `#include <nvshmem.h>` / `<nvshmemx.h>`, or just
  /// `<device/nvshmem_defines.h>` / `<device/nvshmemx_defines.h>` for a faster compile without the
  /// collectives) into one cubin. No cache: the result depends on the NVSHMEM installation too.
  /// - Parameters:
  ///   - headers: in-memory headers (none by default). NVRTC looks in-memory headers up before the
  ///     include paths, so none may share a name with one of NVSHMEM's quoted includes (FlashMoE's
  ///     grid barrier was renamed from barrier.cuh for this; a test checks the kernel sources).
  ///   - architecture: a real architecture; NVSHMEM's transport targets `sm_90a` (H100/H200).
  ///   - nvshmem: the NVSHMEM installation; by default `NVSHMEMPaths.find()`.
  ///   - ccclInclude: the CCCL headers; by default `CUDAPaths.ccclIncludeDirectory`, the CCCL of
  ///     NVRTC's CUDA headers folder first.
  ///   - options: more NVRTC options (`--maxrregcount=N`, `-lineinfo`, ...); ptxas's verbose report
  ///     is always asked for.
  /// - Throws: `CUDAError.unavailable` (NVSHMEM's headers or CCCL missing, naming the places
  ///   searched), `JITError.compilation` with NVRTC's log, `JITError.noCubin`.
  public func compileNVSHMEM(
    source: String, name: String = "nvshmem_kernel.cu", headers: [(name: String, contents: String)] = [],
    architecture: String = "sm_90a", nvshmem: NVSHMEMPaths? = nil, ccclInclude: String? = nil, options extra: [String] = []
  ) throws -> NVSHMEMKernelBuild {
    let paths = try nvshmem ?? NVSHMEMPaths.find()
    try paths.checkDeviceFiles()
    let cccl = try ccclInclude ?? CUDAPaths.ccclIncludeDirectory(cudaInclude: nvrtc.includeDirectory)
    var options = Self.nvshmemOptions(architecture: architecture, nvshmemInclude: paths.includePath, ccclInclude: cccl)
    options += ["--ptxas-options=-v"] + extra.filter { $0 != "--ptxas-options=-v" }
    // The prelude comes first; #line keeps the program's diagnostics on its own line numbers.
    let unit = "#include \"\(Self.nvshmemPreludeName)\"\n#line 1 \"\(name)\"\n" + source
    let program: CompiledProgram
    do {
      program = try nvrtc.compile(
        source: unit, name: name, headers: headers + [(name: Self.nvshmemPreludeName, contents: Self.nvshmemPrelude)], options: options)
    } catch let CUDAError.nvrtc(code, message, call, log) {
      throw JITError.compilation(spec: "NVSHMEM program \(name)", message: "\(call): \(message) (\(code))", log: log)
    }
    guard !program.cubin.isEmpty else {
      throw JITError.noCubin(spec: "NVSHMEM program \(name)", log: program.log)
    }
    return NVSHMEMKernelBuild(
      name: name, architecture: architecture, cubin: program.cubin, compileLog: program.log,
      resources: PTXASReport(parsing: program.log), compileOptions: options)
  }
}

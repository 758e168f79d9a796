import TestSupport
import Testing
@testable import CUDADriver

@Suite("NVRTC")
struct NVRTCTests {
  static let bf16Source = """
    #include <cuda_bf16.h>
    extern "C" __global__ void scale_bf16(__nv_bfloat16* out, const __nv_bfloat16* in, float s, int n) {
      int i = blockIdx.x * blockDim.x + threadIdx.x;
      if (i < n) out[i] = __float2bfloat16(__bfloat162float(in[i]) * s);
    }
    extern "C" __global__ void axpy(float a, const float* x, float* y, int n) {
      int i = blockIdx.x * blockDim.x + threadIdx.x;
      if (i < n) y[i] = a * x[i] + y[i];
    }
    """

  @Test("NVRTC is found when CI requires it", .enabled(if: Gate.nvrtcRequired))
  func requiredNVRTCIsPresent() throws {
    let nvrtc = try NVRTC.shared()
    #expect(nvrtc.version.major == 13)
    #expect(nvrtc.includeDirectory != nil, "CUDA headers not found: \(String(describing: nvrtc.includeError))")
  }

  @Test("version, library and supported architectures", .enabled(if: Gate.runNVRTCTests))
  func versionAndArchitectures() throws {
    let nvrtc = try NVRTC.shared()
    #expect(nvrtc.version.major >= 12)
    #expect(nvrtc.libraryPath.contains("libnvrtc"))
    let archs = try nvrtc.supportedArchitectures()
    #expect(archs.contains(80))
    #expect(archs.contains(90))
  }

  @Test("compiles with the bf16 header for each architecture; ptxas report parses",
        .enabled(if: Gate.runNVRTCTests), arguments: ["sm_90a", "sm_80"])
  func compileBF16(arch: String) throws {
    let nvrtc = try NVRTC.shared()
    let program = try nvrtc.compile(source: Self.bf16Source, name: "bf16.cu", options: options(arch))
    #expect(program.cubin.starts(with: [0x7F, 0x45, 0x4C, 0x46]), "cubin is an ELF image")
    #expect(program.ptx?.contains(".entry axpy") == true)
    #expect(program.log.contains("ptxas info"))
    for name in ["scale_bf16", "axpy"] {
      let usage = try #require(program.resources[name], "no ptxas report for \(name) in:\n\(program.log)")
      #expect(usage.isEntry)
      #expect(usage.architecture == arch)
      #expect(usage.registers > 0)
      #expect(usage.stackFrameBytes == 0)
      #expect(usage.spillStoreBytes == 0)
      #expect(usage.spillLoadBytes == 0)
      #expect(!usage.spills)
    }
    #expect(program.resources.kernels.count == 2)
  }

  @Test("a dynamically indexed local array gets a stack frame; a register cap spills",
        .enabled(if: Gate.runNVRTCTests))
  func spillingKernels() throws {
    let source = """
      extern "C" __global__ void local_array(float* out, const int* index) {
        float local[256];
        for (int i = 0; i < 256; ++i) local[i] = out[i] * i;
        out[threadIdx.x] = local[index[threadIdx.x] & 255];
      }
      extern "C" __global__ void heavy(float* out, const float* in) {
        float acc[48];
        #pragma unroll
        for (int i = 0; i < 48; ++i) acc[i] = in[i * blockDim.x + threadIdx.x];
        #pragma unroll
        for (int j = 0; j < 8; ++j) {
          #pragma unroll
          for (int i = 0; i < 48; ++i) acc[i] = acc[i] * acc[(i + j + 1) % 48] + in[j];
        }
        float s = 0;
        #pragma unroll
        for (int i = 0; i < 48; ++i) s += acc[i] * i;
        out[threadIdx.x] = s;
      }
      """
    let nvrtc = try NVRTC.shared()
    let program = try nvrtc.compile(source: source, name: "spill.cu", options: options("sm_90a", ["--maxrregcount=24"]))
    let local = try #require(program.resources["local_array"])
    #expect(local.stackFrameBytes >= 1024)
    #expect(local.cumulativeStackBytes >= 1024)
    let heavy = try #require(program.resources["heavy"])
    #expect(heavy.registers <= 24)
    #expect(heavy.spillStoreBytes > 0)
    #expect(heavy.spillLoadBytes > 0)
    #expect(heavy.spills)
  }

  @Test("a compile error throws CUDAError.nvrtc with the log", .enabled(if: Gate.runNVRTCTests))
  func compileError() throws {
    let source = """
      extern "C" __global__ void broken(float* out) {
        out[threadIdx.x] = 1.0f;
        out[0] = undefined_symbol_xyz;
      }
      """
    let nvrtc = try NVRTC.shared()
    do {
      _ = try nvrtc.compile(source: source, name: "broken.cu", options: options("sm_90a"))
      Issue.record("compiling broken code succeeded")
    } catch let CUDAError.nvrtc(code, message, call, log) {
      #expect(code == 6)  // NVRTC_ERROR_COMPILATION
      #expect(message.contains("COMPILATION"))
      #expect(call.contains("nvrtcCompileProgram(broken.cu)"))
      #expect(log.contains("broken.cu(3)"), "log: \(log)")
      #expect(log.contains("undefined_symbol_xyz"))
    }
  }

  @Test("in-memory headers and lowered names of templates", .enabled(if: Gate.runNVRTCTests))
  func headersAndNameExpressions() throws {
    let source = """
      #include "params.h"
      template <int N> __global__ void scale(float* out) { out[threadIdx.x] *= SCALE * N; }
      """
    let nvrtc = try NVRTC.shared()
    let program = try nvrtc.compile(
      source: source, name: "template.cu", headers: [(name: "params.h", contents: "#define SCALE 3.0f\n")],
      options: options("sm_90a"), nameExpressions: ["scale<4>"])
    let lowered = try #require(program.loweredNames["scale<4>"])
    #expect(lowered.hasPrefix("_Z"))
    #expect(program.resources[lowered]?.isEntry == true)
  }

  @Test("compute_XX gives PTX and no cubin", .enabled(if: Gate.runNVRTCTests))
  func virtualArchitecture() throws {
    let program = try NVRTC.shared().compile(source: Self.bf16Source, options: ["--gpu-architecture=compute_90"])
    #expect(program.cubin.isEmpty)
    #expect(program.ptx?.contains(".target sm_90") == true)
    #expect(program.resources.functions.isEmpty)
  }
}

import CUDADriver
import TestSupport
import Glibc
import MoEKernels

extension Gate {
  /// The real kernel has been written (Sources/MoEKernels/cuda/flashmoe.cuh is embedded).
  static let hasRealKernel: Bool = KernelSources.hasKernel
  static let runRealKernelTests: Bool = hasRealKernel && runNVRTCTests
}

/// A fresh directory under /tmp, removed (with its files) by `remove()`.
struct TemporaryDirectory {
  let path: String

  init(_ prefix: String = "flashmoe-jit") {
    var template = Array("/tmp/\(prefix)-XXXXXX".utf8CString)
    let made = template.withUnsafeMutableBufferPointer { mkdtemp($0.baseAddress!) }
    precondition(made != nil, "mkdtemp failed: \(String(cString: strerror(errno)))")
    path = String(cString: made!)
  }

  func file(_ name: String) -> String { path + "/" + name }

  /// Names of the entries, sorted (no "." or "..").
  func entries(of directory: String? = nil) -> [String] {
    guard let dir = opendir(directory ?? path) else { return [] }
    defer { closedir(dir) }
    var names: [String] = []
    while let entry = readdir(dir) {
      let name = withUnsafeBytes(of: entry.pointee.d_name) { raw in
        String(cString: raw.baseAddress!.assumingMemoryBound(to: CChar.self))
      }
      if name != "." && name != ".." { names.append(name) }
    }
    return names.sorted()
  }

  func remove() { removeTree(path) }

  private func removeTree(_ directory: String) {
    for name in entries(of: directory) {
      let child = directory + "/" + name
      var info = stat()
      if lstat(child, &info) == 0, (info.st_mode & S_IFMT) == S_IFDIR { removeTree(child) } else { unlink(child) }
    }
    rmdir(directory)
  }
}

func readFile(_ path: String) -> [UInt8]? {
  guard let file = fopen(path, "rb") else { return nil }
  defer { fclose(file) }
  var bytes: [UInt8] = []
  var buffer = [UInt8](repeating: 0, count: 1 << 16)
  while true {
    let n = fread(&buffer, 1, buffer.count, file)
    if n == 0 { break }
    bytes.append(contentsOf: buffer[0..<n])
  }
  return bytes
}

func writeFile(_ path: String, _ bytes: [UInt8]) {
  guard let file = fopen(path, "wb") else { fatalError("cannot write \(path)") }
  _ = bytes.withUnsafeBytes { fwrite($0.baseAddress, 1, $0.count, file) }
  fclose(file)
}

/// Test-only kernel sources: a tiny element-wise kernel behind the same interface as the real one
/// (fm::Spec with 13 parameters, fm::Params, fm::forward<Spec>), split over headers that include
/// each other and a CUDA header, so that the in-memory header mechanism is exercised.
enum StubKernel {
  static let spec = """
    #pragma once
    namespace flashmoe {
    enum class DType { fp32, bf16, fp16 };
    enum class MathMode { fp32, tf32 };
    enum class Form { plain, gated };
    enum class Act { relu, gelu, gelu_tanh, silu };
    template <int H, int D, int E, int K, DType T, MathMode M, Form F, Act A, bool B,
              int TM, int TN, int NT, int R>
    struct Spec {
      static constexpr int kHidden = H, kFFN = D, kExperts = E, kTopK = K;
      static constexpr DType kDType = T;
      static constexpr MathMode kMath = M;
      static constexpr Form kForm = F;
      static constexpr Act kAct = A;
      static constexpr bool kBiases = B;
      static constexpr int kTileM = TM, kTileN = TN, kThreads = NT, kRanks = R;
    };
    struct Params { const float* x; float* y; int n; };
    }  // namespace flashmoe

    """

  static let activation = """
    #pragma once
    #include "detail/spec.cuh"
    namespace flashmoe {
    template <Act A> __device__ __forceinline__ float activate(float v) {
      if constexpr (A == Act::relu) return v > 0.f ? v : 0.f;
      else if constexpr (A == Act::gelu) return 0.5f * v * (1.f + erff(v * 0.70710678f));
      else if constexpr (A == Act::gelu_tanh) return 0.5f * v * (1.f + tanhf(0.79788456f * (v + 0.044715f * v * v * v)));
      else return v / (1.f + expf(-v));
    }
    }  // namespace flashmoe

    """

  static func main(body: String) -> String {
    """
    #pragma once
    #include <cuda_bf16.h>
    #include "detail/spec.cuh"
    #include "detail/act.cuh"
    namespace flashmoe {
    template <class S> __device__ void forward(const Params p) {
    \(body)
    }
    }  // namespace flashmoe

    """
  }

  static let plainBody = """
      int i = blockIdx.x * blockDim.x + threadIdx.x;
      if (i >= p.n) return;
      float v = activate<S::kAct>(p.x[i]) * S::kTopK + (S::kBiases ? S::kHidden : 0);
      if constexpr (S::kDType == DType::bf16) v = __bfloat162float(__float2bfloat16_rn(v));
      p.y[i] = v;
    """

  /// A dynamically indexed local array: ptxas gives the kernel a stack frame.
  static let stackBody = """
      float local[256];
      for (int j = 0; j < 256; ++j) local[j] = p.x[j] * j;
      int i = blockIdx.x * blockDim.x + threadIdx.x;
      if (i < p.n) p.y[i] = local[(int)p.x[i] & 255];
    """

  /// Fails to compile with a recognisable message.
  static let errorBody = """
      static_assert(S::kHidden % 7 == 0, "STUB_KERNEL_ERROR: hidden must be a multiple of 7");
    """

  static func sources(body: String = plainBody) -> [(name: String, contents: String)] {
    [("detail/act.cuh", activation), ("detail/spec.cuh", spec), ("flashmoe.cuh", main(body: body))]
  }
}

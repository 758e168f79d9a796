// swift-tools-version:6.0
import PackageDescription

// The CPU backend's GEMM micro-kernel is written with SIMD8<Float>; `-target-cpu haswell` lets
// LLVM lower it to AVX2 + FMA (every x86-64 host of an H100/H200 has both). The backend checks
// the CPU's flags at run time before it touches that code (MoECore.CPUFeatures).
let kernelFlags: [SwiftSetting] = [.unsafeFlags(["-Ounchecked", "-target-cpu", "haswell"])]

let package = Package(
  name: "FlashMoE",
  platforms: [.macOS(.v15)],
  products: [
    .library(name: "FlashMoE", targets: ["FlashMoE"]),
    .executable(name: "flashmoe", targets: ["flashmoe"]),
  ],
  dependencies: [
    .package(url: "https://github.com/apple/swift-argument-parser", from: "1.5.0"),
  ],
  targets: [
    // Shapes, dtypes, the gate's routing rule and the memory plan: what every backend shares.
    .target(name: "MoECore"),
    // The pure-Swift CPU backend: the default without a GPU and the oracle for GPU results.
    .target(name: "MoECPU", dependencies: ["MoECore"], swiftSettings: kernelFlags),
    // safetensors and .npy, read defensively.
    .target(name: "MoEFiles", dependencies: ["MoECore"]),
    // The public API: a layer = config + weights + backend.
    .target(name: "FlashMoE", dependencies: ["MoECore", "MoECPU", "MoEFiles", "MoECUDA"]),
    // The benchmark suite (`flashmoe bench --suite`): its plan, results, the PyTorch baseline run
    // as a subprocess, and the JSON / CSV / SVG writers. No GPU code: the CLI supplies the timings.
    .target(name: "BenchSuite", dependencies: ["MoECore", "MoEFiles", "MoELaunch"]),
    .executableTarget(
      name: "flashmoe",
      dependencies: [
        "FlashMoE", "BenchSuite", "CUDADriver", "MoEJIT", .product(name: "ArgumentParser", package: "swift-argument-parser"),
        "MoELaunch",
      ]),

    .testTarget(name: "MoECoreTests", dependencies: ["MoECore"]),
    .testTarget(name: "MoECPUTests", dependencies: ["MoECPU", "MoECore"]),
    .testTarget(name: "MoEFilesTests", dependencies: ["MoEFiles", "MoECore"]),
    .testTarget(name: "FlashMoETests", dependencies: ["FlashMoE", "flashmoe"]),
    .testTarget(name: "BenchSuiteTests", dependencies: ["BenchSuite", "MoECore"]),
    // Multi-process jobs (`--launcher env`, `flashmoe launch`): the launcher's variables, the TCP
    // rendezvous that hands NVSHMEM's unique ID to every rank, and child supervision. No GPU code.
    .target(name: "MoELaunch", dependencies: ["MoECore"]),
    .testTarget(
      name: "MoELaunchTests",
      dependencies: ["MoELaunch", "MoECore", "flashmoe", .product(name: "ArgumentParser", package: "swift-argument-parser")]),

    // CUDA driver API / NVRTC declarations (types only; nothing is linked) and the Swift layer
    // that loads them with dlopen: the only home of Unsafe* pointer work for CUDA.
    .target(name: "CCUDA"),
    .target(name: "CUDADriver", dependencies: ["CCUDA"]),
    .testTarget(name: "CUDADriverTests", dependencies: ["CUDADriver", "TestSupport"]),
    // What several test targets share (when NVRTC/GPU tests run).
    .target(name: "TestSupport", dependencies: ["CUDADriver"], path: "Tests/TestSupport"),

    // The CUDA kernel sources (Sources/MoEKernels/cuda/*.cuh, *.cu), embedded in the binary as
    // string literals by a build-tool plugin that runs embed-kernels at build time.
    // SHA-256 (FIPS 180-4): the kernel-source digest at build time and the kernel cache's keys.
    .target(name: "SHA256"),
    .executableTarget(name: "embed-kernels", dependencies: ["SHA256"], path: "Sources/embed-kernels"),
    .plugin(name: "EmbedKernelsPlugin", capability: .buildTool(), dependencies: ["embed-kernels"]),
    .target(name: "MoEKernels", exclude: ["cuda"], plugins: ["EmbedKernelsPlugin"]),
    // Specialises the kernel for one layer shape, compiles it with NVRTC and caches cubins on disk.
    .target(name: "MoEJIT", dependencies: ["CUDADriver", "MoECore", "MoEKernels", "SHA256"]),
    // The CUDA backend: one persistent cooperative kernel per forward on one GPU.
    .target(name: "MoECUDA", dependencies: ["CUDADriver", "MoEJIT", "MoECore", "MoEKernels"]),
    .testTarget(name: "MoEJITTests", dependencies: ["TestSupport", "MoEJIT", "MoEKernels", "CUDADriver", "MoECore", "SHA256"]),
    .testTarget(name: "MoECUDATests", dependencies: ["TestSupport", "MoECUDA", "MoEJIT", "MoEKernels", "CUDADriver", "MoECore"]),
  ],
  swiftLanguageModes: [.v6]
)

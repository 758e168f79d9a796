import TestSupport
import Testing
import CUDADriver

/// Runs only where a CUDA GPU is visible.
@Suite("driver on a GPU", .enabled(if: Gate.hasGPU), .serialized)
struct GPUTests {
  static let source = """
    extern "C" __global__ void axpy(float a, const float* x, float* y, int n) {
      int i = blockIdx.x * blockDim.x + threadIdx.x;
      if (i < n) y[i] = a * x[i] + y[i];
    }
    extern "C" __global__ void grid_sum(const unsigned int* in, unsigned int* total, int n) {
      for (int i = blockIdx.x * blockDim.x + threadIdx.x; i < n; i += gridDim.x * blockDim.x)
        atomicAdd(total, in[i]);
    }
    extern "C" __global__ void big_shared(float* out) {
      extern __shared__ float tile[];
      tile[threadIdx.x] = threadIdx.x;
      __syncthreads();
      out[threadIdx.x] = tile[blockDim.x - 1 - threadIdx.x];
    }
    extern "C" __global__ void put(float* remote, const float* local, int n) {
      int i = blockIdx.x * blockDim.x + threadIdx.x;
      if (i < n) remote[i] = local[i] * 2.0f;
    }
    """

  func load(_ device: Device) throws -> (Context, Module) {
    let context = try device.primaryContext()
    let program = try NVRTC.shared().compile(
      source: Self.source, name: "gpu.cu", options: options(device.computeCapability.architecture))
    return (context, try Module(context: context, program: program))
  }

  @Test func deviceProperties() throws {
    let driver = try Driver.shared()
    #expect(driver.version >= 12000)
    let device = try driver.device(0)
    #expect(!device.name.isEmpty)
    #expect(device.multiprocessorCount > 0)
    #expect(device.computeCapability.major >= 7)
    #expect(device.totalMemory > 1 << 30)
    #expect(device.maxSharedMemoryPerBlockOptin >= device.maxSharedMemoryPerBlock)
    let (free, total) = try device.primaryContext().memoryInfo()
    #expect(free > 0 && free <= total)
  }

  @Test func copyRoundTrips() throws {
    let context = try Driver.shared().device(0).primaryContext()
    let bytes: [UInt8] = (0..<1000).map { UInt8($0 % 251) }
    let buffer = try DeviceBuffer(context: context, copying: bytes)
    #expect(try buffer.download(UInt8.self) == bytes)
    let halves: [UInt16] = (0..<500).map { UInt16($0 * 3) }
    try buffer.upload(halves)
    #expect(try buffer.download(UInt16.self, count: 500) == halves)
    let stream = try Stream(context: context)
    let floats: [Float] = (0..<250).map { Float($0) * 0.5 }
    try buffer.upload(floats, stream: stream)
    #expect(try buffer.download(Float.self, count: 250, stream: stream) == floats)
    try buffer.fill(word: 0x3F80_0000)
    #expect(try buffer.download(Float.self, count: 250) == [Float](repeating: 1, count: 250))
    try buffer.fill(byte: 0, byteOffset: 4, byteCount: 4)
    #expect(try buffer.download(Float.self, count: 3) == [1, 0, 1])
    let copy = try DeviceBuffer(context: context, byteCount: 1000)
    try copy.copy(from: buffer)
    #expect(try copy.download(UInt8.self) == buffer.download(UInt8.self))
    #expect(throws: CUDAError.self) { try buffer.upload([UInt8](repeating: 0, count: 1001)) }
  }

  @Test func launchAndTime() throws {
    let device = try Driver.shared().device(0)
    let (context, module) = try load(device)
    let kernel = try module.kernel(named: "axpy")
    #expect(kernel.parameterSizes == nil || kernel.parameterSizes! == [4, 8, 8, 4])
    let attributes = try kernel.attributes()
    #expect(attributes.registers > 0)
    #expect(attributes.maxThreadsPerBlock >= 256)
    #expect(try kernel.maxActiveBlocksPerMultiprocessor(blockSize: 256) > 0)

    let n = 1 << 20
    let x = (0..<n).map { Float($0 % 97) }
    let y = (0..<n).map { Float($0 % 13) }
    let dx = try DeviceBuffer(context: context, copying: x)
    let dy = try DeviceBuffer(context: context, copying: y)
    let stream = try Stream(context: context)
    let start = try Event(context: context), stop = try Event(context: context)
    try start.record(on: stream)
    try kernel.launch(
      grid: Dim3((n + 255) / 256), block: 256, stream: stream,
      arguments: [.float(2), .buffer(dx), .buffer(dy), .int32(Int32(n))])
    try stop.record(on: stream)
    try stop.synchronize()
    #expect(try stop.isComplete())
    let ms = try stop.elapsedMilliseconds(since: start)
    #expect(ms >= 0 && ms < 1000)
    let result = try dy.download(Float.self, stream: stream)
    #expect(result == zip(x, y).map { 2 * $0 + $1 })

    // Wrong argument sizes are refused before they reach the driver (when it reports them).
    #expect(throws: CUDAError.self) {
      try kernel.launch(grid: 1, block: 1, arguments: [.double(2), .buffer(dx), .buffer(dy), .int32(1)])
    }
    // Too few arguments is seen only where the driver reports the parameter count.
    if kernel.parameterSizes != nil {
      #expect(throws: CUDAError.self) { try kernel.launch(grid: 1, block: 1, arguments: [.float(2)]) }
    }
  }

  @Test func cooperativeLaunchAndSharedMemory() throws {
    let device = try Driver.shared().device(0)
    let (context, module) = try load(device)
    let sum = try module.kernel(named: "grid_sum")
    let n = 100_000
    let input = try DeviceBuffer(context: context, copying: [UInt32](repeating: 3, count: n))
    let total = try DeviceBuffer(context: context, copying: [UInt32(0)])
    let perSM = try sum.maxActiveBlocksPerMultiprocessor(blockSize: 256)
    let grid = perSM * device.multiprocessorCount
    #expect(grid > 0)
    try sum.launch(
      grid: Dim3(grid), block: 256, cooperative: device.supportsCooperativeLaunch,
      arguments: [.buffer(input), .buffer(total), .int32(Int32(n))])
    try context.synchronize()
    #expect(try total.download(UInt32.self) == [UInt32(3 * n)])

    let big = try module.kernel(named: "big_shared")
    let sharedBytes = min(100 * 1024, device.maxSharedMemoryPerBlockOptin)
    try big.setMaxDynamicSharedMemory(bytes: sharedBytes)
    #expect(try big.attributes().maxDynamicSharedBytes == sharedBytes)
    let out = try DeviceBuffer(context: context, count: 256, of: Float.self)
    try big.launch(grid: 1, block: 256, sharedBytes: sharedBytes, arguments: [.buffer(out)])
    try context.synchronize()
    #expect(try out.download(Float.self) == (0..<256).reversed().map(Float.init))
  }

  @Test(.enabled(if: Gate.hasTwoGPUs)) func peerWrite() throws {
    let driver = try Driver.shared()
    let d0 = try driver.device(0), d1 = try driver.device(1)
    guard try d0.canAccessPeer(d1) else { return }
    let (c0, m0) = try load(d0)
    let c1 = try d1.primaryContext()
    try c0.enablePeerAccess(to: c1)
    try c0.enablePeerAccess(to: c1)  // twice is fine
    try c1.enablePeerAccess(to: c0)
    let n = 4096
    let local = try DeviceBuffer(context: c0, copying: (0..<n).map(Float.init))
    let remote = try DeviceBuffer(context: c1, byteCount: n * 4)
    try remote.fill(byte: 0)
    try m0.kernel(named: "put").launch(
      grid: Dim3(n / 256), block: 256, arguments: [.buffer(remote), .buffer(local), .int32(Int32(n))])
    try c0.synchronize()
    #expect(try remote.download(Float.self) == (0..<n).map { Float($0) * 2 })
  }
}

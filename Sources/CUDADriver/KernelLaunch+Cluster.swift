internal import CCUDA

extension Kernel {
  /// Launches the kernel in clusters of `clusterSize` consecutive blocks along x (cuLaunchKernelEx
  /// with a cluster shape, and the cooperative flag when `cooperative`). The blocks of a cluster
  /// run at once on neighbouring SMs and can reach each other's shared memory.
  /// - Throws: `.invalidArgument` when the driver has no cuLaunchKernelEx (CUDA < 12.0), the grid
  ///   is not a multiple of the cluster, or the arguments do not match the kernel.
  public func launch(
    grid: Dim3, block: Dim3, sharedBytes: Int, stream: Stream?, cooperative: Bool, clusterSize: Int,
    arguments: [KernelArgument]
  ) throws {
    let call = "cuLaunchKernelEx(\(name), clusters of \(clusterSize))"
    guard let launchEx = driver.cuLaunchKernelEx else {
      throw CUDAError.invalidArgument(call: call, message: "driver \(driver.versionString) has no cuLaunchKernelEx; expected CUDA 12.0 or later")
    }
    guard clusterSize >= 1, grid.x % clusterSize == 0 else {
      throw CUDAError.invalidArgument(call: call, message: "grid \(grid) is not a whole number of clusters of \(clusterSize) blocks")
    }
    var config = try launchConfig(grid: grid, block: block, sharedBytes: sharedBytes, stream: stream, call: call)
    try checkArguments(arguments, call)
    try context.makeCurrent()
    let driver = self.driver
    var attributes = Self.attributes(cooperative: cooperative, clusterSize: clusterSize)
    try attributes.withUnsafeMutableBufferPointer { attrs in
      config.attrs = attrs.baseAddress
      config.numAttrs = UInt32(attrs.count)
      try KernelArgument.withParameterArray(arguments) { params in
        try driver.check(launchEx(&config, handle, params, nil), call)
      }
    }
  }

  /// How many clusters of `clusterSize` blocks of this shape can be resident on the GPU at once
  /// (cuOccupancyMaxActiveClusters); a cooperative grid of clusters needs all of its clusters.
  public func maxActiveClusters(clusterSize: Int, grid: Dim3, block: Dim3, sharedBytes: Int) throws -> Int {
    let call = "cuOccupancyMaxActiveClusters(\(name), clusters of \(clusterSize))"
    guard let occupancy = driver.cuOccupancyMaxActiveClusters else {
      throw CUDAError.invalidArgument(call: call, message: "driver \(driver.versionString) has no cluster occupancy query; expected CUDA 12.0 or later")
    }
    var config = try launchConfig(grid: grid, block: block, sharedBytes: sharedBytes, stream: nil, call: call)
    try context.makeCurrent()
    var attributes = Self.attributes(cooperative: false, clusterSize: clusterSize)
    var clusters: Int32 = 0
    try attributes.withUnsafeMutableBufferPointer { attrs in
      config.attrs = attrs.baseAddress
      config.numAttrs = UInt32(attrs.count)
      try driver.check(occupancy(&clusters, handle, &config), call)
    }
    return Int(clusters)
  }

  private func launchConfig(grid: Dim3, block: Dim3, sharedBytes: Int, stream: Stream?, call: String) throws -> CUlaunchConfig {
    let (gx, gy, gz) = try grid.checked("grid", call)
    let (bx, by, bz) = try block.checked("block", call)
    guard sharedBytes >= 0, sharedBytes <= Int(UInt32.max) else {
      throw CUDAError.invalidArgument(call: call, message: "shared memory \(sharedBytes) bytes")
    }
    if let stream, stream.context !== context, stream.context.device.index != context.device.index {
      throw CUDAError.invalidArgument(
        call: call, message: "stream of GPU \(stream.context.device.index) for a kernel of GPU \(context.device.index)")
    }
    var config = CUlaunchConfig()
    config.gridDimX = gx
    config.gridDimY = gy
    config.gridDimZ = gz
    config.blockDimX = bx
    config.blockDimY = by
    config.blockDimZ = bz
    config.sharedMemBytes = UInt32(sharedBytes)
    config.hStream = stream.handle
    return config
  }

  private static func attributes(cooperative: Bool, clusterSize: Int) -> [CUlaunchAttribute] {
    var cluster = CUlaunchAttribute()
    cluster.id = CU_LAUNCH_ATTRIBUTE_CLUSTER_DIMENSION
    cluster.value.clusterDim.x = UInt32(clusterSize)
    cluster.value.clusterDim.y = 1
    cluster.value.clusterDim.z = 1
    guard cooperative else { return [cluster] }
    var flag = CUlaunchAttribute()
    flag.id = CU_LAUNCH_ATTRIBUTE_COOPERATIVE
    flag.value.cooperative = 1
    return [cluster, flag]
  }
}

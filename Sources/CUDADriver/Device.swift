internal import CCUDA

/// A compute capability such as 9.0.
public struct ComputeCapability: Sendable, Hashable, Comparable, CustomStringConvertible {
  public let major: Int
  public let minor: Int
  public init(major: Int, minor: Int) { self.major = major; self.minor = minor }
  public var description: String { "\(major).\(minor)" }
  /// The real architecture name NVRTC takes, e.g. "sm_90" (add "a" for arch-specific features).
  public var architecture: String { "sm_\(major)\(minor)" }
  public static func < (a: Self, b: Self) -> Bool { (a.major, a.minor) < (b.major, b.minor) }
}

/// One CUDA device and the properties FlashMoE plans with, read once when it is looked up.
public struct Device: Sendable, Hashable, CustomStringConvertible {
  public let index: Int
  public let name: String
  public let multiprocessorCount: Int
  public let computeCapability: ComputeCapability
  /// Bytes of device memory (cuDeviceTotalMem).
  public let totalMemory: Int
  public let supportsCooperativeLaunch: Bool
  public let maxThreadsPerBlock: Int
  public let maxThreadsPerMultiprocessor: Int
  public let warpSize: Int
  /// Shared memory a block may use without opting in (48 KiB).
  public let maxSharedMemoryPerBlock: Int
  /// Shared memory a block may use after `Kernel.setMaxDynamicSharedMemory` (227 KiB on Hopper).
  public let maxSharedMemoryPerBlockOptin: Int
  public let maxSharedMemoryPerMultiprocessor: Int
  public let maxRegistersPerBlock: Int
  public let maxRegistersPerMultiprocessor: Int
  public let l2CacheBytes: Int
  /// "domain:bus:device", as nvidia-smi prints it.
  public let pciAddress: String

  let driver: Driver
  let handle: CUdevice

  init(driver: Driver, index: Int) throws {
    var handle: CUdevice = 0
    try driver.check(driver.cuDeviceGet(&handle, Int32(index)), "cuDeviceGet(\(index))")
    func attribute(_ a: CUdevice_attribute, _ what: String) throws -> Int {
      var value: Int32 = 0
      try driver.check(driver.cuDeviceGetAttribute(&value, a, handle), "cuDeviceGetAttribute(\(what))")
      return Int(value)
    }
    var nameBytes = [CChar](repeating: 0, count: 256)
    try driver.check(driver.cuDeviceGetName(&nameBytes, Int32(nameBytes.count - 1), handle), "cuDeviceGetName")
    var bytes = 0
    try driver.check(driver.cuDeviceTotalMem(&bytes, handle), "cuDeviceTotalMem")

    self.driver = driver
    self.handle = handle
    self.index = index
    name = String(decoding: nameBytes.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
    totalMemory = bytes
    multiprocessorCount = try attribute(CU_DEVICE_ATTRIBUTE_MULTIPROCESSOR_COUNT, "MULTIPROCESSOR_COUNT")
    computeCapability = ComputeCapability(
      major: try attribute(CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MAJOR, "COMPUTE_CAPABILITY_MAJOR"),
      minor: try attribute(CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MINOR, "COMPUTE_CAPABILITY_MINOR"))
    supportsCooperativeLaunch = try attribute(CU_DEVICE_ATTRIBUTE_COOPERATIVE_LAUNCH, "COOPERATIVE_LAUNCH") != 0
    maxThreadsPerBlock = try attribute(CU_DEVICE_ATTRIBUTE_MAX_THREADS_PER_BLOCK, "MAX_THREADS_PER_BLOCK")
    maxThreadsPerMultiprocessor = try attribute(
      CU_DEVICE_ATTRIBUTE_MAX_THREADS_PER_MULTIPROCESSOR, "MAX_THREADS_PER_MULTIPROCESSOR")
    warpSize = try attribute(CU_DEVICE_ATTRIBUTE_WARP_SIZE, "WARP_SIZE")
    maxSharedMemoryPerBlock = try attribute(CU_DEVICE_ATTRIBUTE_MAX_SHARED_MEMORY_PER_BLOCK, "MAX_SHARED_MEMORY_PER_BLOCK")
    maxSharedMemoryPerBlockOptin = try attribute(
      CU_DEVICE_ATTRIBUTE_MAX_SHARED_MEMORY_PER_BLOCK_OPTIN, "MAX_SHARED_MEMORY_PER_BLOCK_OPTIN")
    maxSharedMemoryPerMultiprocessor = try attribute(
      CU_DEVICE_ATTRIBUTE_MAX_SHARED_MEMORY_PER_MULTIPROCESSOR, "MAX_SHARED_MEMORY_PER_MULTIPROCESSOR")
    maxRegistersPerBlock = try attribute(CU_DEVICE_ATTRIBUTE_MAX_REGISTERS_PER_BLOCK, "MAX_REGISTERS_PER_BLOCK")
    maxRegistersPerMultiprocessor = try attribute(
      CU_DEVICE_ATTRIBUTE_MAX_REGISTERS_PER_MULTIPROCESSOR, "MAX_REGISTERS_PER_MULTIPROCESSOR")
    l2CacheBytes = try attribute(CU_DEVICE_ATTRIBUTE_L2_CACHE_SIZE, "L2_CACHE_SIZE")
    let domain = try attribute(CU_DEVICE_ATTRIBUTE_PCI_DOMAIN_ID, "PCI_DOMAIN_ID")
    let bus = try attribute(CU_DEVICE_ATTRIBUTE_PCI_BUS_ID, "PCI_BUS_ID")
    let dev = try attribute(CU_DEVICE_ATTRIBUTE_PCI_DEVICE_ID, "PCI_DEVICE_ID")
    pciAddress = "\(hex(domain, 8)):\(hex(bus, 2)):\(hex(dev, 2))"
  }

  /// Whether this device can read and write `peer`'s memory directly (cuDeviceCanAccessPeer).
  public func canAccessPeer(_ peer: Device) throws -> Bool {
    guard peer.index != index else { return true }
    var can: Int32 = 0
    try driver.check(driver.cuDeviceCanAccessPeer(&can, handle, peer.handle), "cuDeviceCanAccessPeer(\(index), \(peer.index))")
    return can != 0
  }

  /// Retains this device's primary context (released when the returned object goes away).
  public func primaryContext() throws -> Context { try Context(device: self) }

  public var description: String {
    "GPU \(index): \(name), cc \(computeCapability), \(multiprocessorCount) SMs, \(totalMemory >> 20) MiB"
  }

  public static func == (a: Device, b: Device) -> Bool { a.index == b.index && a.driver === b.driver }
  public func hash(into hasher: inout Hasher) { hasher.combine(index) }
}

private func hex(_ value: Int, _ width: Int) -> String {
  let digits = String(value, radix: 16, uppercase: true)
  return String(repeating: "0", count: max(0, width - digits.count)) + digits
}

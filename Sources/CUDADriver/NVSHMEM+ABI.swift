internal import CCUDA

/// Sizes and offsets of the NVSHMEM host ABI structs as this package declares them
/// (Sources/CCUDA/include/CNVSHMEM.h). Public so that tests can compare them with NVSHMEM's real
/// headers and the rendezvous can size the unique ID it carries.
public enum NVSHMEMABI {
  /// sizeof(nvshmemx_uniqueid_t): the bytes rank 0 sends to every other rank.
  public static let uniqueIDBytes = MemoryLayout<FlashMoENVSHMEMUniqueID>.size
  /// sizeof(nvshmemx_uniqueid_args_t).
  public static let uniqueIDArgsBytes = MemoryLayout<FlashMoENVSHMEMUniqueIDArgs>.size
  /// sizeof(nvshmemx_init_args_t).
  public static let initArgsBytes = MemoryLayout<FlashMoENVSHMEMInitArgs>.size
  /// sizeof(nvshmemx_init_attr_t).
  public static let initAttrBytes = MemoryLayout<FlashMoENVSHMEMInitAttr>.size
  /// offsetof(nvshmemx_init_attr_t, args).
  public static let initAttrArgsOffset = MemoryLayout<FlashMoENVSHMEMInitAttr>.offset(of: \.args) ?? -1
  /// offsetof(nvshmemx_init_args_t, uid_args).
  public static let initArgsUIDArgsOffset = MemoryLayout<FlashMoENVSHMEMInitArgs>.offset(of: \.uid_args) ?? -1

  /// NVSHMEM's struct version word: (1 << 16) + the struct's size, as its initializer macros write it.
  static func version(bytes: Int) -> Int32 { Int32((1 << 16) + bytes) }

  /// A unique ID ready for nvshmemx_get_uniqueid (NVSHMEMX_UNIQUEID_INITIALIZER).
  static func emptyUniqueID() -> FlashMoENVSHMEMUniqueID {
    var id = FlashMoENVSHMEMUniqueID()
    id.version = version(bytes: uniqueIDBytes)
    return id
  }

  /// Init attributes as NVSHMEMX_INIT_ATTR_INITIALIZER writes them: every version set, no MPI
  /// communicator, unique-ID arguments invalid (-1) until nvshmemx_set_attr_uniqueid_args.
  static func initialAttributes() -> FlashMoENVSHMEMInitAttr {
    var attr = FlashMoENVSHMEMInitAttr()
    attr.version = version(bytes: initAttrBytes)
    attr.mpi_comm = nil
    attr.args.version = version(bytes: initArgsBytes)
    attr.args.uid_args.version = version(bytes: uniqueIDArgsBytes)
    attr.args.uid_args.id = nil
    attr.args.uid_args.myrank = -1
    attr.args.uid_args.nranks = -1
    return attr
  }

  /// The bytes of a unique ID.
  static func bytes(of id: FlashMoENVSHMEMUniqueID) -> [UInt8] {
    withUnsafeBytes(of: id) { Array($0) }
  }

  /// A unique ID from the bytes rank 0 sent.
  /// - Throws: `CUDAError.invalidArgument` naming the length or version that is wrong.
  static func uniqueID(from bytes: [UInt8]) throws -> FlashMoENVSHMEMUniqueID {
    guard bytes.count == uniqueIDBytes else {
      throw CUDAError.invalidArgument(
        call: "NVSHMEM unique ID", message: "length \(bytes.count) bytes; expected \(uniqueIDBytes) (nvshmemx_uniqueid_t)")
    }
    var id = FlashMoENVSHMEMUniqueID()
    withUnsafeMutableBytes(of: &id) { $0.copyBytes(from: bytes) }
    let expected = version(bytes: uniqueIDBytes)
    guard id.version == expected else {
      throw CUDAError.invalidArgument(
        call: "NVSHMEM unique ID",
        message: "version field \(id.version); expected \(expected) ((1 << 16) + \(uniqueIDBytes)): not bytes from nvshmemx_get_uniqueid")
    }
    return id
  }
}

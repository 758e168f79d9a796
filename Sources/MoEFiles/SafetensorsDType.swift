import MoECore

/// A safetensors element type, by the name the header gives it ("F32", "BF16", "I64", ...).
///
/// Any name is kept so that a file holding, say, integer tensors still opens; only F32, F16 and
/// BF16 tensors can be loaded as Float values.
public struct SafetensorsDType: Hashable, Sendable, CustomStringConvertible {
  public let name: String

  public init(name: String) { self.name = name }

  public static let f32 = SafetensorsDType(name: "F32")
  public static let f16 = SafetensorsDType(name: "F16")
  public static let bf16 = SafetensorsDType(name: "BF16")

  /// The safetensors type that stores `dtype`.
  public init(_ dtype: DType) {
    switch dtype {
    case .fp32: self = .f32
    case .fp16: self = .f16
    case .bf16: self = .bf16
    }
  }

  /// The storage dtype this is, for the three types that load as Float values.
  public var dtype: DType? {
    switch name {
    case "F32": return .fp32
    case "F16": return .fp16
    case "BF16": return .bf16
    default: return nil
    }
  }

  /// Bytes per element for every whole-byte type the format defines; nil for unknown names and
  /// sub-byte types (their byte ranges are checked against the file, not against the shape).
  public var elementSize: Int? {
    switch name {
    case "BOOL", "U8", "I8", "F8_E5M2", "F8_E4M3", "F8_E8M0": return 1
    case "I16", "U16", "F16", "BF16": return 2
    case "I32", "U32", "F32": return 4
    case "I64", "U64", "F64", "C64": return 8
    default: return nil
    }
  }

  public var description: String { name }
}

/// One tensor's entry in a safetensors header.
public struct TensorInfo: Hashable, Sendable {
  public let name: String
  public let dtype: SafetensorsDType
  public let shape: [Int]
  /// The tensor's bytes, relative to the start of the data section (after the header).
  public let dataOffsets: Range<Int>
  /// The product of `shape` (1 for a scalar).
  public let elementCount: Int

  public init(name: String, dtype: SafetensorsDType, shape: [Int], dataOffsets: Range<Int>, elementCount: Int) {
    self.name = name
    self.dtype = dtype
    self.shape = shape
    self.dataOffsets = dataOffsets
    self.elementCount = elementCount
  }
}

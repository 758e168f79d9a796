/// How tensors are stored. Arithmetic always accumulates in fp32.
public enum DType: String, NamedOption {
  case fp32, bf16, fp16

  /// Bytes per element in storage.
  public var size: Int { self == .fp32 ? 4 : 2 }
}

/// The multiply precision of the expert GEMMs for fp32 storage: exact fp32, or TF32 operands
/// (10 explicit mantissa bits, as Hopper/Ampere tensor cores take them) with fp32 accumulation.
public enum Math: String, NamedOption {
  case fp32, tf32
}

extension Float {
  /// Round to the nearest bf16 value (ties to even), returned as the Float it equals exactly.
  /// NaN stays NaN (quiet); infinities and overflow follow IEEE rounding.
  @inlinable public var roundedToBF16: Float {
    let bits = bitPattern
    if isNaN { return Float(bitPattern: (bits | 0x0040_0000) & 0xFFFF_0000) }
    let lsb = (bits >> 16) & 1
    let rounded = bits &+ 0x7FFF &+ lsb
    return Float(bitPattern: rounded & 0xFFFF_0000)
  }

  /// Round to the nearest fp16 value (ties to even); overflow gives ±inf as IEEE requires.
  @inlinable public var roundedToFP16: Float { Float(Float16(self)) }

  /// Round to the nearest TF32 value (ties away from zero, as PTX `cvt.rna.tf32.f32` does).
  @inlinable public var roundedToTF32: Float {
    if !isFinite { return self }
    let rounded = bitPattern &+ 0x1000
    return Float(bitPattern: rounded & 0xFFFF_E000)
  }

  /// Round to the value `dtype` stores.
  @inlinable public func rounded(to dtype: DType) -> Float {
    switch dtype {
    case .fp32: return self
    case .bf16: return roundedToBF16
    case .fp16: return roundedToFP16
    }
  }

  /// The upper 16 bits of a Float that already holds a bf16 value.
  @inlinable public var bf16Bits: UInt16 { UInt16(truncatingIfNeeded: roundedToBF16.bitPattern >> 16) }

  @inlinable public init(bf16Bits: UInt16) { self.init(bitPattern: UInt32(bf16Bits) << 16) }

  @inlinable public var fp16Bits: UInt16 { Float16(self).bitPattern }

  @inlinable public init(fp16Bits: UInt16) { self.init(Float16(bitPattern: fp16Bits)) }
}

extension Array where Element == Float {
  /// Round every element in place to the value `dtype` stores.
  public mutating func round(to dtype: DType) {
    switch dtype {
    case .fp32: return
    case .bf16: for i in indices { self[i] = self[i].roundedToBF16 }
    case .fp16: for i in indices { self[i] = self[i].roundedToFP16 }
    }
  }
}

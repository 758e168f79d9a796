import MoECore

/// How one floating-point element is laid out in a file (always little-endian).
enum ElementEncoding: Sendable {
  case f32, f16, bf16, f64

  init(_ dtype: DType) {
    switch dtype {
    case .fp32: self = .f32
    case .fp16: self = .f16
    case .bf16: self = .bf16
    }
  }

  var size: Int {
    switch self {
    case .f16, .bf16: return 2
    case .f32: return 4
    case .f64: return 8
    }
  }

  /// Converts `bytes` (exactly `output.count` elements) to Float; exact except f64 (rounded to nearest).
  func decode(_ bytes: UnsafeRawBufferPointer, into output: UnsafeMutableBufferPointer<Float>) {
    switch self {
    case .f32:
      for i in output.indices {
        output[i] = Float(bitPattern: UInt32(littleEndian: bytes.loadUnaligned(fromByteOffset: 4 * i, as: UInt32.self)))
      }
    case .f16:
      for i in output.indices {
        output[i] = Float(fp16Bits: UInt16(littleEndian: bytes.loadUnaligned(fromByteOffset: 2 * i, as: UInt16.self)))
      }
    case .bf16:
      for i in output.indices {
        output[i] = Float(bf16Bits: UInt16(littleEndian: bytes.loadUnaligned(fromByteOffset: 2 * i, as: UInt16.self)))
      }
    case .f64:
      for i in output.indices {
        output[i] = Float(Double(bitPattern: UInt64(littleEndian: bytes.loadUnaligned(fromByteOffset: 8 * i, as: UInt64.self))))
      }
    }
  }

  /// Converts `values` to this encoding (rounding to nearest, ties to even) into `bytes`.
  func encode(_ values: ArraySlice<Float>, into bytes: UnsafeMutableRawBufferPointer) {
    var offset = 0
    for value in values {
      switch self {
      case .f32: bytes.storeBytes(of: value.bitPattern.littleEndian, toByteOffset: offset, as: UInt32.self)
      case .f16: bytes.storeBytes(of: value.fp16Bits.littleEndian, toByteOffset: offset, as: UInt16.self)
      case .bf16: bytes.storeBytes(of: value.bf16Bits.littleEndian, toByteOffset: offset, as: UInt16.self)
      case .f64: bytes.storeBytes(of: Double(value).bitPattern.littleEndian, toByteOffset: offset, as: UInt64.self)
      }
      offset += size
    }
  }
}

/// Products and sums of sizes from files, checked for overflow.
enum Checked {
  /// The product of `factors`, or nil when it overflows Int or a factor is negative.
  static func product(_ factors: [Int]) -> Int? {
    var result = 1
    for factor in factors {
      guard factor >= 0 else { return nil }
      let (value, overflow) = result.multipliedReportingOverflow(by: factor)
      if overflow { return nil }
      result = value
    }
    return result
  }
}

/// `[a, b, c]`, as shapes are written in messages.
func shapeText(_ shape: [Int]) -> String { "[" + shape.map(String.init).joined(separator: ", ") + "]" }

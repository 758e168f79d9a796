/// A tensor to write: a name, a row-major shape and its values.
public struct NamedTensor: Sendable, Equatable {
  public var name: String
  public var shape: [Int]
  public var values: [Float]

  public init(_ name: String, shape: [Int], values: [Float]) {
    self.name = name
    self.shape = shape
    self.values = values
  }
}

/// A tensor to write whose values are a slice of a larger array (no copy).
struct TensorSlice {
  var name: String
  var shape: [Int]
  var values: ArraySlice<Float>
}

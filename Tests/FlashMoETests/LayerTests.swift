import Testing
@testable import FlashMoE

@Suite struct LayerTests {
  static let config = MoEConfig(tokens: 64, hidden: 24, ffn: 40, experts: 6, topK: 2, dtype: .bf16)

  @Test func cudaIsReportedUnavailableWithAReason() throws {
    let error = #expect(throws: BackendUnavailable.self) {
      _ = try MoELayer(config: Self.config, weights: .random(Self.config, seed: 1), backend: .cuda)
    }
    #expect(error?.description.contains("cuda") == true)
    #expect(Backends.status().contains { $0.name == "cuda" && !$0.available && !$0.detail.isEmpty })
  }

  @Test func autoPicksTheCPUWithoutAGPU() throws {
    let layer = try MoELayer(config: Self.config, weights: .random(Self.config, seed: 1), backend: .auto)
    #expect(layer.backend == .cpu)
  }

  @Test func weightsThatDoNotFitTheConfigAreRejected() throws {
    var other = Self.config
    other.experts = 5
    let error = #expect(throws: ConfigError.self) {
      _ = try MoELayer(config: Self.config, weights: .random(other, seed: 1))
    }
    #expect(error?.field == "experts")
    var noBias = Self.config
    noBias.biases = false
    let biasError = #expect(throws: ConfigError.self) {
      _ = try MoELayer(config: noBias, weights: .random(Self.config, seed: 1))
    }
    #expect(biasError?.field == "biases")
  }

  @Test func inputOfTheWrongSizeIsRejected() throws {
    let layer = try MoELayer(config: Self.config, weights: .random(Self.config, seed: 1))
    let error = #expect(throws: ConfigError.self) { _ = try layer.forward([Float](repeating: 0, count: 10)) }
    #expect(error?.field == "input")
  }

  @Test func theInputIsRoundedToTheLayerDType() throws {
    let layer = try MoELayer(config: Self.config, weights: .random(Self.config, seed: 2))
    var rng = SeededGenerator(seed: 3)
    let raw = rng.normals(Self.config.tokens * Self.config.hidden)
    var rounded = raw
    rounded.round(to: .bf16)
    #expect(try layer.forward(raw).values == layer.forward(rounded).values)
  }

  /// Forwards from many tasks at once give the bits a single call gives (no shared mutable state).
  @Test func concurrentForwardsAgreeBitwise() async throws {
    let layer = try MoELayer(config: Self.config, weights: .random(Self.config, seed: 4))
    var rng = SeededGenerator(seed: 5)
    let input = rng.normals(Self.config.tokens * Self.config.hidden)
    let expected = try layer.forward(input).values
    try await withThrowingTaskGroup(of: [Float].self) { group in
      for _ in 0..<8 { group.addTask { try layer.forward(input).values } }
      for try await values in group { #expect(values == expected) }
    }
  }

  @Test func thresholdsOfThreadsDoNotChangeTheResult() throws {
    let weights = MoEWeights.random(Self.config, seed: 6)
    var rng = SeededGenerator(seed: 7)
    let input = rng.normals(Self.config.tokens * Self.config.hidden)
    let one = try MoELayer(config: Self.config, weights: weights, threads: 1).forward(input).values
    let four = try MoELayer(config: Self.config, weights: weights, threads: 4).forward(input).values
    #expect(one == four)
  }

  @Test func checksumSeesEveryBit() {
    let a: [Float] = [1, 2, 3]
    var b = a
    b[1] = b[1].nextUp
    #expect(Checksum(a) == Checksum(a))
    #expect(Checksum(a).bits != Checksum(b).bits)
    #expect(formatFixed(-1.5, 2) == "-1.50")
    #expect(formatFixed(0.0049, 2) == "0.00")
    #expect(formatFixed(12.345678, 3) == "12.346")
  }
}

import Foundation
import Testing
@testable import FlashMoE
@testable import flashmoe

/// A fresh directory under /tmp, removed by the caller.
func temporaryDirectory() throws -> String {
  let path = NSTemporaryDirectory() + "flashmoe-cli-\(UInt64.random(in: 0...UInt64.max))"
  try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
  return path
}

@Suite struct CLITests {
  /// Every invalid flag is rejected while parsing, before any work, naming the flag and the value.
  @Test(arguments: [
    (["run", "--experts", "8", "--topk", "9"], "topk"),
    (["run", "--topk", "0"], "topk"),
    (["run", "--tokens", "0"], "tokens"),
    (["run", "--hidden", "0"], "hidden"),
    (["run", "--ffn", "-3"], "ffn"),
    (["run", "--capacity-factor", "0"], "capacity-factor"),
    (["run", "--capacity-factor", "-1"], "capacity-factor"),
    (["run", "--capacity-factor", "nan"], "capacity-factor"),
    (["run", "--activation", "tanh"], "activation"),
    (["run", "--expert-form", "swiglu"], "expert-form"),
    (["run", "--dtype", "fp64"], "dtype"),
    (["run", "--math", "tf32", "--dtype", "bf16"], "math"),
    (["run", "--math", "fp8"], "math"),
    (["run", "--backend", "tpu"], "backend"),
    (["run", "--threads", "0"], "threads"),
    (["run", "--names", "llama"], "names"),
    (["run", "--output-dtype", "int8"], "output-dtype"),
    (["bench", "--runs", "0"], "runs"),
    (["bench", "--topk", "5", "--experts", "4"], "topk"),
    (["plan", "--model", "gpt4"], "model"),
    (["verify", "--gpus", "0"], "gpus"),
    (["verify", "--gpus", "two"], "gpus"),
    (["verify", "--gpus", "0,-1"], "gpus"),
    (["bench", "--gpus", "0,x"], "gpus"),
    (["plan", "--gpus", "3", "--experts", "8"], "gpus"),
    (["verify", "--backend", "cpu"], "backend"),
    (["verify", "--repeats", "1"], "repeats"),
    (["bench", "--sweep-tokens", "0"], "sweep-tokens"),
    (["bench", "--sweep-tokens", "4096", "0", "8192"], "sweep-tokens"),
    (["bench", "--warmup=-1"], "warmup"),
    (["bench", "--warmup", "-1"], "warmup"),  // "-1" read as a flag: "Missing value for '--warmup'"
    (["bench", "--baseline", "torch_moe.py"], "baseline"),  // suite flags without --suite
    (["bench", "--quick"], "quick"),
    (["bench", "--suite", "--dtypes", "bf16,fp64"], "dtypes"),
    (["bench", "--suite", "--dtypes", "bf16,BF16"], "dtypes"),
    (["bench", "--suite", "--dtypes", ""], "dtypes"),
    (["bench", "--suite", "--sizes", "huge"], "sizes"),
    (["bench", "--suite", "--baseline", "/no/such/torch_moe.py"], "baseline"),
    (["bench", "--suite", "--baseline", "/tmp"], "baseline"),
    (["bench", "--suite", "--baseline-timeout", "0"], "baseline-timeout"),
    (["bench", "--suite", "--out", "/dev/null"], "out"),
    (["bench", "--suite", "--sweep-tokens", "4096"], "sweep-tokens"),
    (["bench", "--suite", "--trace"], "trace"),
    (["bench", "--suite", "--gpu", "1"], "gpu"),
    (["bench", "--suite", "--hidden", "512"], "hidden"),
    (["bench", "--suite", "--dtype", "bf16"], "dtype"),
    (["bench", "--pipelined", "--gpus", "2"], "pipelined"),
    (["bench", "--suite", "--pipelined"], "pipelined"),
  ])
  func invalidFlagsAreRejected(arguments: [String], field: String) {
    do {
      _ = try FlashMoECommand.parseAsRoot(arguments)
      Issue.record("\(arguments) was accepted")
    } catch {
      let message = FlashMoECommand.message(for: error)
      #expect(message.contains(field), "\(arguments): \(message)")
    }
  }

  /// `run` on files: the output file equals the layer's own forward pass bit for bit, for every
  /// name preset, sharded or not.
  @Test(arguments: [(NamePreset.canonical, 1, ""), (.mixtral, 3, "model.layers.2."), (.qwen, 2, "model.layers.0.")])
  func runOnFilesWritesTheForwardPass(preset: NamePreset, shards: Int, prefix: String) throws {
    let dir = try temporaryDirectory()
    defer { try? FileManager.default.removeItem(atPath: dir) }
    let form: ExpertForm = preset == .canonical ? .plain : .gated
    let config = MoEConfig(
      tokens: 33, hidden: 16, ffn: 24, experts: 4, topK: 2, activation: .silu, expertForm: form,
      biases: preset == .canonical, dtype: .bf16)
    let weights = MoEWeights.random(config, seed: 11)
    let weightsPath = shards == 1 ? dir + "/layer.safetensors" : dir + "/" + Checkpoint.indexFileName
    try Checkpoint.saveLayer(weights, to: weightsPath, preset: preset, prefix: prefix, dtype: .bf16, shards: shards)
    var rng = SeededGenerator(seed: 12)
    let input = rng.normals(config.tokens * config.hidden)
    try NPY.write(input, shape: [config.tokens, config.hidden], dtype: .f4, to: dir + "/x.npy")

    var command = try FlashMoECommand.parseAsRoot([
      "run", "--weights", weightsPath, "--names", preset.rawValue, "--prefix", prefix, "--topk", "2",
      "--activation", "silu", "--dtype", "bf16", "--input", dir + "/x.npy", "--output", dir + "/y.npy", "--quiet",
    ])
    try command.run()

    let written = try NPY.read(path: dir + "/y.npy")
    #expect(written.shape == [config.tokens, config.hidden])
    let expected = try MoELayer(config: config, weights: weights, backend: .cpu).forward(input).values
    #expect(written.values == expected)
  }

  /// A failing run leaves no output file (and no temporary file) behind.
  @Test func aFailedRunWritesNothing() throws {
    let dir = try temporaryDirectory()
    defer { try? FileManager.default.removeItem(atPath: dir) }
    let config = MoEConfig(tokens: 8, hidden: 16, ffn: 8, experts: 2, topK: 1)
    try Checkpoint.saveLayer(MoEWeights.random(config, seed: 1), to: dir + "/w.safetensors", dtype: .fp32)
    try NPY.write([Float](repeating: 1, count: 8 * 12), shape: [8, 12], dtype: .f4, to: dir + "/x.npy")
    var command = try FlashMoECommand.parseAsRoot([
      "run", "--weights", dir + "/w.safetensors", "--topk", "1", "--input", dir + "/x.npy",
      "--output", dir + "/y.npy", "--quiet",
    ])
    #expect(throws: ConfigError.self) { try command.run() }
    #expect(try FileManager.default.contentsOfDirectory(atPath: dir).sorted() == ["w.safetensors", "x.npy"])
  }

  @Test func missingTensorsAreNamed() throws {
    let dir = try temporaryDirectory()
    defer { try? FileManager.default.removeItem(atPath: dir) }
    let config = MoEConfig(tokens: 8, hidden: 16, ffn: 8, experts: 2, topK: 1)
    try Checkpoint.saveLayer(MoEWeights.random(config, seed: 1), to: dir + "/w.safetensors", dtype: .fp32)
    var command = try FlashMoECommand.parseAsRoot(["run", "--weights", dir + "/w.safetensors", "--names", "mixtral", "--quiet"])
    let error = #expect(throws: FileError.self) { try command.run() }
    let message = String(describing: error)
    #expect(message.contains("block_sparse_moe.experts.0.w1.weight"), "\(message)")
    #expect(message.contains("looks like preset canonical"), "\(message)")
  }

  /// `info --json`: the backends as `Backends.status()` reports them; without libcuda, the cuda
  /// entry is unavailable and says that libcuda was not found.
  @Test func infoReportsEveryBackend() throws {
    let command = try FlashMoECommand.parseAsRoot(["info", "--json"])
    #expect(try #require(command as? Info).display.json)
    let backends = Backends.status()
    #expect(backends.map(\.name) == ["cpu", "cuda"])
    let cuda = try #require(backends.first { $0.name == "cuda" })
    #expect(!cuda.detail.isEmpty)
    if !Self.libcudaLoads {
      #expect(!cuda.available)
      #expect(cuda.detail.contains("libcuda"), "\(cuda.detail)")
    }
    let json = try jsonString(["backends": backends])
    #expect(json.contains("\"name\" : \"cuda\""), "\(json)")
    #expect(json.contains("\"available\" : \(cuda.available)"), "\(json)")
  }

  /// Whether libcuda can be opened (as the driver layer opens it: FLASHMOE_LIBCUDA, else libcuda.so.1).
  static let libcudaLoads: Bool = {
    let override = ProcessInfo.processInfo.environment["FLASHMOE_LIBCUDA"].flatMap { $0.isEmpty ? nil : $0 }
    guard let handle = dlopen(override ?? "libcuda.so.1", RTLD_NOW | RTLD_LOCAL) else { return false }
    dlclose(handle)
    return true
  }()

  @Test func gpuListsParse() throws {
    #expect(try parseGPUList(nil) == nil)
    #expect(try parseGPUList("1") == nil)
    #expect(try parseGPUList("2") == [0, 1])
    #expect(try parseGPUList("0,1") == [0, 1])
    #expect(try parseGPUList("3, 1") == [3, 1])
    #expect(try parseGPUList("1") == nil)
  }

  @Test func planMatchesTheMemoryPlan() throws {
    let command = try FlashMoECommand.parseAsRoot(["plan", "--tokens", "8192", "--hidden", "2048", "--experts", "64", "--gpus", "2"])
    let plan = try #require(command as? Plan).plan()
    #expect(plan.gpus == 2)
    #expect(plan.symmetricTensorBytes == 4 * 64 * 256 * 2048 * 4)
  }
}

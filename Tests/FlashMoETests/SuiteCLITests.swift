import Foundation
import Testing
@testable import flashmoe

@Suite struct SuiteCLITests {
  /// `bench --suite` on the CPU backend end to end: the small grid, every file written, one JSON
  /// result per planned point, each with a FlashMoE timing, and the reduced grid said so.
  @Test func suiteOnTheCPUWritesEveryFile() throws {
    let dir = try temporaryDirectory()
    defer { try? FileManager.default.removeItem(atPath: dir) }
    let out = dir + "/new/bench-out"
    var command = try FlashMoECommand.parseAsRoot([
      "bench", "--suite", "--backend", "cpu", "--dtypes", "bf16", "--quick", "--out", out, "--quiet",
    ])
    try command.run()
    let names = try FileManager.default.contentsOfDirectory(atPath: out).sorted()
    #expect(names == [
      "fig08-latency-vs-tokens-bf16.svg", "fig10-throughput-vs-gpus-bf16.svg", "fig11-weak-scaling-bf16.svg",
      "fig12-latency-vs-experts-bf16.svg", "results.csv", "results.json",
    ])
    let json = try #require(try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: out + "/results.json"))) as? [String: Any])
    #expect(json["backend"] as? String == "cpu")
    #expect((json["grid"] as? [String: Any])?["name"] as? String == "small")
    #expect(json["warmup"] as? Int == 3 && json["runs"] as? Int == 5)
    let results = try #require(json["results"] as? [[String: Any]])
    #expect(results.count == 7)  // tokens 256/512/1K, experts 8…128 at 1K (E = 32 shared), 1 GPU at 512 (shared)
    #expect(results.allSatisfy { ($0["flashmoe"] as? [String: Any])?["runs"] as? Int == 5 })
    #expect((json["notes"] as? [String])?.contains { $0.contains("not the paper's sizes") } == true)
  }
}

import ArgumentParser
import FlashMoE

struct Info: ParsableCommand {
  static let configuration = CommandConfiguration(abstract: "Which backends can run here, and why one cannot.")

  @OptionGroup var display: DisplayOptions

  func run() throws {
    let backends = Backends.status()
    if display.json {
      print(try jsonString(["backends": backends]))
      return
    }
    print(table([["backend", "available", "detail"]] + backends.map { [$0.name, $0.available ? "yes" : "no", $0.detail] }))
    print("cores: \(CPUFeatures.activeCores), AVX2+FMA: \(CPUFeatures.hasAVX2FMA ? "yes" : "no")")
  }
}

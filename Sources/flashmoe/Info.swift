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
    if let cuda = backends.first(where: { $0.name == "cuda" }), cuda.available {
      // Expert parallelism needs every pair of GPUs to reach each other.
      do {
        let group = try DeviceGroup.all()
        if group.count > 1 {
          print("peer access enabled between all \(group.count) GPUs (\(group.devices.map { String($0.index) }.joined(separator: ", ")))")
        }
      } catch {
        print("peer access: \(error)")
      }
    }
  }
}

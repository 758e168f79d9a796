#if canImport(Glibc)
import Glibc
#endif

/// What the host CPU offers, read from /proc/cpuinfo (this file is compiled for any x86-64, so it
/// can run before code built for AVX2 is entered).
public enum CPUFeatures {
  /// True when the CPU has AVX2 and FMA, which the CPU backend's micro-kernel is compiled for.
  public static let hasAVX2FMA: Bool = {
    #if arch(x86_64) && os(Linux)
    guard let file = fopen("/proc/cpuinfo", "r") else { return false }
    defer { fclose(file) }
    var line: UnsafeMutablePointer<CChar>? = nil
    var capacity = 0
    defer { free(line) }
    while getline(&line, &capacity, file) > 0 {
      guard let line else { break }
      let text = String(cString: line)
      if text.hasPrefix("flags") {
        let flags = Set(text.split(whereSeparator: { $0 == " " || $0 == "\t" || $0 == "\n" }))
        return flags.contains("avx2") && flags.contains("fma")
      }
    }
    return false
    #else
    return false
    #endif
  }()

  /// Cores the process may use.
  public static var activeCores: Int {
    #if os(Linux)
    return max(1, Int(sysconf(Int32(_SC_NPROCESSORS_ONLN))))
    #else
    return 1
    #endif
  }
}

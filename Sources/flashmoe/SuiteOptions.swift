import ArgumentParser
import BenchSuite
import FlashMoE

#if canImport(Glibc)
import Glibc
#endif

/// `flashmoe bench --suite`: the paper's §4 grid, written as a table, JSON, CSV and SVG charts.
struct SuiteOptions: ParsableArguments {
  @Flag(help: """
    Run the benchmark suite of the paper's §4 (latency vs tokens, experts and GPUs; throughput; weak scaling) \
    and write its table, JSON, CSV and charts.
    """)
  var suite = false
  @Option(help: "Suite: directory for results.json, results.csv and the SVG charts (created if missing).")
  var out: String = Self.defaultOut
  @Option(help: "Suite: run the PyTorch baseline (path of torch_moe.py) at every point, in the same invocation.")
  var baseline: String?
  @Option(help: "Suite: the Python interpreter that runs the baseline.") var baselinePython: String = Self.defaultPython
  @Option(help: "Suite: seconds one baseline run may take before it is killed and recorded as missing.")
  var baselineTimeout: Int = Self.defaultTimeout
  @Option(help: "Suite: storage dtypes, comma-separated (\(DType.allowedNames)); --math applies to fp32.")
  var dtypes: String = Self.defaultDTypes
  @Option(help: "Suite: sizes, \(SuiteGrid.allowedNames) (default: paper on a GPU, small on the CPU).")
  var sizes: String?
  @Flag(help: "Suite: 3 warm-up + 5 timed runs per point instead of the paper's 32 + 32 (a smoke test).")
  var quick = false

  static let defaultOut = "bench-out", defaultPython = "python3", defaultTimeout = 900, defaultDTypes = "bf16,fp32"

  func validate() throws {
    guard suite else {
      // Suite flags without --suite would be ignored silently: say so instead.
      let stray: [(flag: String, value: String?)] = [
        ("out", out == Self.defaultOut ? nil : out), ("baseline", baseline),
        ("baseline-python", baselinePython == Self.defaultPython ? nil : baselinePython),
        ("baseline-timeout", baselineTimeout == Self.defaultTimeout ? nil : "\(baselineTimeout)"),
        ("dtypes", dtypes == Self.defaultDTypes ? nil : dtypes), ("sizes", sizes), ("quick", quick ? "set" : nil),
      ]
      if let hit = stray.first(where: { $0.value != nil }) {
        throw ConfigError(field: hit.flag, value: "'\(hit.value!)'", expected: "only with --suite")
      }
      return
    }
    _ = try parsedDTypes()
    if let sizes { _ = try SuiteGrid.named(sizes, field: "sizes") }
    guard baselineTimeout >= 1 else {
      throw ConfigError(field: "baseline-timeout", value: baselineTimeout, expected: "seconds ≥ 1")
    }
    if let baseline {
      var info = stat()
      guard stat(baseline, &info) == 0, info.st_mode & S_IFMT == S_IFREG, access(baseline, R_OK) == 0 else {
        throw ConfigError(field: "baseline", value: "'\(baseline)'", expected: "a readable file (the path of torch_moe.py)")
      }
    }
    var info = stat()
    guard !out.isEmpty, stat(out, &info) != 0 || info.st_mode & S_IFMT == S_IFDIR else {
      throw ConfigError(field: "out", value: "'\(out)'", expected: "a directory, or a path where one can be created")
    }
  }

  func parsedDTypes() throws(ConfigError) -> [DType] {
    var list: [DType] = []
    for word in dtypes.split(separator: ",", omittingEmptySubsequences: false) {
      let dtype = try DType.parse(String(word.filter { $0 != " " }), field: "dtypes")
      guard !list.contains(dtype) else {
        throw ConfigError(field: "dtypes", value: "'\(dtypes)'", expected: "each dtype once")
      }
      list.append(dtype)
    }
    return list
  }

  /// The warm-up and timed run counts: explicit flags, else --quick's, else the paper's 32 + 32.
  func protocolRuns(warmup: Int?, runs: Int?) -> (warmup: Int, runs: Int) {
    (warmup ?? (quick ? 3 : 32), runs ?? (quick ? 5 : 32))
  }
}

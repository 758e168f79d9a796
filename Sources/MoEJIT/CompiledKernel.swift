import CUDADriver

/// One kernel variant compiled to a cubin, with ptxas's report.
public struct CompiledKernel: Sendable {
  /// The extern "C" entry every translation unit defines.
  public static let entryName = "flashmoe_forward"

  public let spec: KernelSpec
  /// The cache key (64 hex digits): see `KernelCompiler.keyMaterial`.
  public let key: String
  /// The cubin for `spec.architecture`, ready for cuModuleLoadData.
  public let cubin: [UInt8]
  /// NVRTC's program log: warnings and ptxas's verbose report.
  public let log: String
  /// ptxas's report for every function of the program, parsed from `log`.
  public let report: PTXASReport

  public init(spec: KernelSpec, key: String, cubin: [UInt8], log: String) {
    self.spec = spec
    self.key = key
    self.cubin = cubin
    self.log = log
    self.report = PTXASReport(parsing: log)
  }

  /// ptxas's advisories that it serialised wgmma or injected warpgroup waits (C75xx): the kernel
  /// is correct but its tensor cores stall. Not refused; `KernelCompiler.compileUncached` builds
  /// such a kernel a second time with each k tile's wgmma group drained, and the CI compile test requires
  /// none for its variants (real-size gated and plain SiLU layers among them).
  public var wgmmaSerialization: [String] {
    log.split(whereSeparator: \.isNewline).map(String.init).filter {
      $0.contains("(C75") && ($0.contains("warpgroup") || $0.contains("wgmma"))
    }
  }

  /// Whether this is the second build, each k tile's wgmma group drained (`KernelCompiler.compileUncached`).
  public var rebuiltDrained: Bool {
    log.hasPrefix(KernelCompiler.drainedLogLine) || log.hasPrefix(KernelCompiler.hazardDrainedLogLine)
  }

  /// ptxas's resource usage of `flashmoe_forward`, or nil when the log has no report for it.
  public var resources: KernelResourceUsage? { report[Self.entryName] }

  /// Throws `JITError.resources`, quoting ptxas, when the entry kernel spills registers, has a stack
  /// frame, or has no report at all (compiled without `--ptxas-options=-v`), or when any other
  /// function of the program spills.
  public func check() throws(JITError) {
    guard let entry = resources else {
      throw JITError.resources(
        spec: spec.description, problems: ["ptxas reported nothing for \(Self.entryName)"],
        ptxasLines: Self.ptxasLines(in: log))
    }
    var problems: [String] = []
    var quoted: [String] = []
    if entry.spillStoreBytes > 0 || entry.spillLoadBytes > 0 {
      problems.append("\(Self.entryName) spills (\(entry.spillStoreBytes) bytes stores, \(entry.spillLoadBytes) bytes loads)")
    }
    if entry.stackFrameBytes > 0 {
      problems.append("\(Self.entryName) has a \(entry.stackFrameBytes)-byte stack frame")
    }
    if entry.cumulativeStackBytes > 0 {
      problems.append("\(Self.entryName) uses \(entry.cumulativeStackBytes) bytes of cumulative stack")
    }
    if !problems.isEmpty { quoted += Self.ptxasLines(for: Self.entryName, in: log) }
    for function in report.functions where function.name != Self.entryName && function.spills {
      problems.append("\(function.name) spills (\(function.spillStoreBytes) bytes stores, \(function.spillLoadBytes) bytes loads)")
      quoted += Self.ptxasLines(for: function.name, in: log)
    }
    if !problems.isEmpty {
      throw JITError.resources(spec: spec.description, problems: problems, ptxasLines: quoted)
    }
  }

  /// The ptxas lines of the log that describe `function`: from its "Compiling entry function" or
  /// "Function properties for" line up to the next function's.
  static func ptxasLines(for function: String, in log: String) -> [String] {
    var lines: [String] = []
    var inside = false
    for raw in log.split(whereSeparator: \.isNewline) {
      let line = String(raw)
      guard line.hasPrefix("ptxas") else { continue }
      let starts = line.contains("Compiling entry function") || line.contains("Function properties for")
      if starts {
        inside = line.contains("'\(function)'") || line.hasSuffix("Function properties for \(function)")
      } else if line.contains("Compile time =") {
        inside = false
      }
      if inside { lines.append(line) }
    }
    return lines
  }

  /// Every ptxas line of the log.
  static func ptxasLines(in log: String) -> [String] {
    log.split(whereSeparator: \.isNewline).map(String.init).filter { $0.hasPrefix("ptxas") }
  }
}

/// What `KernelCompiler.compile` returns.
public struct CompileResult: Sendable {
  public let kernel: CompiledKernel
  /// True when the cubin came from the disk cache and NVRTC did not run.
  public let cacheHit: Bool
  /// How long `compile` took: the NVRTC compilation on a miss, reading and verifying the file on a hit.
  public let duration: Duration
  /// Why an existing cache file was not trusted (truncated, checksum, ...), when one was found and ignored.
  public let rejectedCacheFile: String?
  /// Why the freshly compiled cubin could not be stored (the compile itself succeeded).
  public let cacheWriteError: String?

  public init(kernel: CompiledKernel, cacheHit: Bool, duration: Duration, rejectedCacheFile: String?, cacheWriteError: String?) {
    self.kernel = kernel
    self.cacheHit = cacheHit
    self.duration = duration
    self.rejectedCacheFile = rejectedCacheFile
    self.cacheWriteError = cacheWriteError
  }

  public var seconds: Double {
    let parts = duration.components
    return Double(parts.seconds) + Double(parts.attoseconds) * 1e-18
  }
}

import Glibc
import SHA256
import CUDADriver
import MoECore
import MoEKernels
import Synchronization

/// Compiles `KernelSpec`s with NVRTC against the kernel sources, through a disk cache.
///
/// Thread-safe. Concurrent `compile` calls for the same spec on one compiler wait for each other,
/// so NVRTC runs once and the others read the cache (a hit); different specs compile in parallel.
/// Separate compilers or processes sharing a cache directory may compile the same spec at once:
/// each publishes its file atomically and every reader sees one complete file.
public final class KernelCompiler: Sendable {
  /// The file the translation unit includes.
  public static let mainHeader = "flashmoe.cuh"

  /// The kernel sources, passed to NVRTC as in-memory headers (all of them, so that they can
  /// include each other by name).
  public let sources: [(name: String, contents: String)]
  /// `kernelSourcesDigest(sources)`; equals `KernelSources.hash` for the embedded sources.
  public let sourcesHash: String
  /// The disk cache, or nil for none.
  public let cache: KernelCache?
  /// Why the default cache could not be used, when `init(sources:nvrtc:)` fell back to no cache.
  public let cacheProblem: String?
  public let nvrtc: NVRTC
  /// nvdisasm when it is found and FLASHMOE_SASS_CHECK is not `0`: then every sm_90a kernel built
  /// here has its SASS read for wgmma accumulator hazards before it is used (WGMMAHazards).
  public let nvdisasm: String?

  /// Environment variable: `0` turns the SASS check off.
  public static let sassCheckVariable = "FLASHMOE_SASS_CHECK"

  /// The nvdisasm the SASS check uses, or nil when it is off (`FLASHMOE_SASS_CHECK=0`) or no
  /// nvdisasm is found.
  public static func sassCheckTool() -> String? {
    CUDAEnvironment.value(sassCheckVariable) == "0" ? nil : CUDAPaths.nvdisasm()
  }

  private let keyLocks = Mutex<[String: KeyLock]>([:])

  /// - Parameters:
  ///   - sources: the kernel sources; tests pass their own.
  ///   - cache: where cubins are kept; nil compiles every time.
  ///   - nvrtc: NVRTC; by default `NVRTC.shared()`.
  /// - Throws: `CUDAError.unavailable` when NVRTC cannot be found.
  public convenience init(
    sources: [(name: String, contents: String)] = KernelSources.files, cache: KernelCache?, nvrtc: NVRTC? = nil
  ) throws {
    try self.init(sources: sources, cache: cache, cacheProblem: nil, nvrtc: nvrtc)
  }

  /// A compiler with the default cache (`KernelCache.standard()`): FLASHMOE_CACHE_DIR, else
  /// $XDG_CACHE_HOME/flashmoe, else ~/.cache/flashmoe. When that directory cannot be created the
  /// compiler works without a cache and says why in `cacheProblem`.
  public convenience init(sources: [(name: String, contents: String)] = KernelSources.files, nvrtc: NVRTC? = nil) throws {
    let cache: KernelCache?
    let problem: String?
    do {
      cache = try KernelCache.standard()
      problem = nil
    } catch {
      cache = nil
      problem = error.description
    }
    try self.init(sources: sources, cache: cache, cacheProblem: problem, nvrtc: nvrtc)
  }

  private init(
    sources: [(name: String, contents: String)], cache: KernelCache?, cacheProblem: String?, nvrtc: NVRTC?
  ) throws {
    self.sources = sources
    let embedded = KernelSources.files
    let isEmbedded = sources.count == embedded.count
      && zip(sources, embedded).allSatisfy { $0.name == $1.name && $0.contents == $1.contents }
    self.sourcesHash = isEmbedded ? KernelSources.hash : kernelSourcesDigest(sources)
    self.cache = cache
    self.cacheProblem = cacheProblem
    self.nvrtc = try nvrtc ?? NVRTC.shared()
    self.nvdisasm = Self.sassCheckTool()
    try Self.checkExperimentDefines()
  }

  // MARK: - Options and key

  /// The NVRTC options for `spec` (NVRTC adds the CUDA headers' --include-path itself). No
  /// --use_fast_math: the kernel relies on exact erff/expf/tanhf and IEEE division.
  public static func options(for spec: KernelSpec) -> [String] {
    // --maxrregcount=255: with only launch bounds, ptxas for sm_80 stops short of the register file
    // and spills; the explicit cap (the hardware maximum) lets it use what the tile needs.
    ["--gpu-architecture=\(spec.architecture)", "-std=c++17", "--ptxas-options=-v", "-lineinfo", "--maxrregcount=255"]
      + experimentDefines().map { "-D\($0)" }
  }

  /// Environment variable for kernel experiments: macro definitions ("NAME" or "NAME=INTEGER",
  /// space-separated) added to every build, e.g. FLASHMOE_EXP_SKIP_MMA or FLASHMOE_STAGES=3
  /// (docs/PERFORMANCE.md). Some give wrong results on purpose: they are for timing, never for use.
  /// They are part of the cache key through the options.
  public static let definesVariable = "FLASHMOE_NVRTC_DEFINES"

  /// The definitions FLASHMOE_NVRTC_DEFINES asks for; malformed words are rejected when the
  /// compiler is created (`checkExperimentDefines`), so here they are only split.
  static func experimentDefines(_ text: String? = CUDAEnvironment.value(definesVariable)) -> [String] {
    (text ?? "").split(separator: " ").map(String.init)
  }

  /// Whether FLASHMOE_NVRTC_DEFINES (or `text`) defines `name`: the host side of an opt-in build
  /// (CUDAMoE leaves out the dispatch cells' tensor map for FLASHMOE_PEER_ROWS_CPASYNC).
  public static func defines(_ name: String, in text: String? = CUDAEnvironment.value(definesVariable)) -> Bool {
    experimentDefines(text).contains { $0 == name || $0.hasPrefix(name + "=") }
  }

  /// Rejects a FLASHMOE_NVRTC_DEFINES word that is not NAME or NAME=INTEGER, naming it.
  static func checkExperimentDefines(_ text: String? = CUDAEnvironment.value(definesVariable)) throws(JITError) {
    for word in experimentDefines(text) {
      let parts = word.split(separator: "=", maxSplits: 1, omittingEmptySubsequences: false)
      let nameOK = parts[0].first.map { $0.isLetter || $0 == "_" } == true
        && parts[0].allSatisfy { ($0.isASCII && ($0.isLetter || $0.isNumber)) || $0 == "_" }
      let valueOK = parts.count == 1 || (!parts[1].isEmpty && Int(parts[1]) != nil)
      if !nameOK || !valueOK {
        throw JITError.invalidSpec(field: definesVariable, value: "'\(word)'", expected: "NAME or NAME=INTEGER words separated by spaces")
      }
    }
  }

  /// The text whose SHA-256 is the cache key: the format version, the entry name, the spec's
  /// canonical JSON (sorted keys), the architecture, the NVRTC options, the NVRTC version, the
  /// digest of the kernel sources and the digest of the generated translation unit. Any change to
  /// one of them selects a different file.
  public func keyMaterial(for spec: KernelSpec) -> String {
    """
    flashmoe-kernel-cache
    format: \(KernelCache.formatVersion)
    entry: \(CompiledKernel.entryName)
    spec: \(spec.canonicalJSON())
    architecture: \(spec.architecture)
    options: \(Self.options(for: spec).joined(separator: " "))
    nvrtc: \(nvrtc.versionString)
    sources: \(sourcesHash)
    translation-unit: \(SHA256.hexDigest(spec.translationUnit()))
    \(Self.rebuildsSerialized ? "" : "wgmma-rebuild: off\n")\(nvdisasm == nil ? "" : "sass-check: on\n")
    """
  }

  /// The cache key of `spec` (64 hex digits).
  public func key(for spec: KernelSpec) -> String { SHA256.hexDigest(keyMaterial(for: spec)) }

  /// The cache key of a spec built with NVSHMEM (`transport == .nvshmem`): the cubin also depends
  /// on NVSHMEM's headers, whose device code it inlines. Their folder, NVSHMEM's version header
  /// and build options header (contents) and the prelude stand for them.
  public func nvshmemKey(for spec: KernelSpec, nvshmem: NVSHMEMPaths? = nil) throws -> String {
    let paths = try nvshmem ?? NVSHMEMPaths.find()
    func digest(_ relative: String) -> String {
      switch POSIXFile.read("\(paths.includePath)/\(relative)", limit: 1 << 20) {
      case .bytes(let bytes): return SHA256.hexDigest(bytes)
      case .missing: return "missing"
      case .failed(let why): return "unreadable (\(why))"
      }
    }
    return SHA256.hexDigest(keyMaterial(for: spec) + """
      nvshmem-headers: \(paths.includePath)
      nvshmem-version-header: \(digest("non_abi/nvshmem_version.h"))
      nvshmem-build-options: \(digest("non_abi/nvshmem_build_options.h"))
      nvshmem-prelude: \(SHA256.hexDigest(Self.nvshmemPrelude))
      nvshmem-options: \(Self.nvshmemExtraOptions.joined(separator: " "))

      """)
  }

  /// NVRTC options the layer's NVSHMEM builds add (as `options(for:)` gives the others).
  static let nvshmemExtraOptions = ["-lineinfo", "--maxrregcount=255"]

  // MARK: - Compiling

  /// Returns the cubin for `spec`: from the cache when a valid file is there, else compiled with
  /// NVRTC and stored. A cache file that fails verification is ignored and replaced.
  ///
  /// Does not check resources; call `result.kernel.check()` for that.
  /// - Throws: `JITError` (invalid spec, missing flashmoe.cuh, NVRTC errors with the program log).
  public func compile(_ spec: KernelSpec) throws -> CompileResult {
    try spec.validate()
    guard sources.contains(where: { $0.name == Self.mainHeader }) else {
      throw JITError.missingSource(name: Self.mainHeader, available: sources.map(\.name))
    }
    let key = spec.transport == .nvshmem ? try nvshmemKey(for: spec) : key(for: spec)
    return try withKeyLock(key) { () throws -> CompileResult in
      let clock = ContinuousClock()
      let start = clock.now
      var rejected: String? = nil
      if let cache {
        switch cache.lookup(key: key) {
        case .hit(let entry):
          let kernel = CompiledKernel(spec: spec, key: key, cubin: entry.cubin, log: entry.log)
          return CompileResult(
            kernel: kernel, cacheHit: true, duration: clock.now - start, rejectedCacheFile: nil, cacheWriteError: nil)
        case .missing: break
        case .rejected(let why): rejected = why
        }
      }

      let kernel = try compileUncached(spec, key: key)
      let duration = clock.now - start
      var writeError: String? = nil
      if let cache {
        do {
          try cache.store(KernelCache.Entry(key: key, specJSON: spec.canonicalJSON(), log: kernel.log, cubin: kernel.cubin))
        } catch {
          writeError = "\(error)"
        }
      }
      return CompileResult(
        kernel: kernel, cacheHit: false, duration: duration, rejectedCacheFile: rejected, cacheWriteError: writeError)
    }
  }

  /// Runs NVRTC for `spec`, bypassing the cache. When ptxas reports that it serialised wgmma
  /// (`CompiledKernel.wgmmaSerialization`), the program is built a second time with each k tile's
  /// wgmma group drained inside the tile GEMM's loop (FLASHMOE_KLOOP_DRAIN, tile_gemm.cuh), and that build is kept
  /// if it has no serialisation, no spill and no stack frame; its log then starts with a line that
  /// says so. Layers that compile clean the first time keep their code exactly as before.
  /// With nvdisasm (`nvdisasm`), the build chosen is then read for wgmma accumulator hazards; one
  /// that has them is replaced by the drained build when that has none, and refused
  /// (`JITError.wgmmaHazards`) when it has some too.
  public func compileUncached(_ spec: KernelSpec, key: String? = nil) throws -> CompiledKernel {
    try spec.validate()
    let key = try key ?? (spec.transport == .nvshmem ? nvshmemKey(for: spec) : self.key(for: spec))
    let first = try build(spec, key: key, drainKLoop: false)
    var drained: CompiledKernel?
    func drainedBuild() throws -> CompiledKernel? {
      if drained == nil { drained = try build(spec, key: key, drainKLoop: true) }
      guard let d = drained, d.wgmmaSerialization.isEmpty, let r = d.resources, !r.spills, r.stackFrameBytes == 0 else { return nil }
      return d
    }
    var chosen = first
    if !first.wgmmaSerialization.isEmpty, Self.rebuildsSerialized, let d = try drainedBuild() {
      chosen = CompiledKernel(spec: spec, key: key, cubin: d.cubin, log: "\(Self.drainedLogLine)\n" + d.log)
    }
    guard let nvdisasm, spec.architecture == "sm_90a" else { return chosen }
    let hazards: [WGMMAHazard]
    do {
      hazards = WGMMAHazards.find(inSASS: try SASS.disassemble(chosen.cubin, nvdisasm: nvdisasm))
    } catch {
      // The check could not run; the kernel is what it would have been without it.
      return CompiledKernel(spec: spec, key: key, cubin: chosen.cubin, log: chosen.log + "\nflashmoe: SASS check not run: \(error)")
    }
    if hazards.isEmpty { return chosen }
    if !chosen.rebuiltDrained, let d = try drainedBuild(),
       WGMMAHazards.find(inSASS: try SASS.disassemble(d.cubin, nvdisasm: nvdisasm)).isEmpty {
      return CompiledKernel(
        spec: spec, key: key, cubin: d.cubin,
        log: "\(Self.hazardDrainedLogLine) (\(hazards.count), first: \(hazards[0]))\n" + d.log)
    }
    throw JITError.wgmmaHazards(spec: spec.description, count: hazards.count, hazards: hazards.prefix(3).map(\.description))
  }

  /// Setting FLASHMOE_WGMMA_REBUILD=0 keeps the first build even when ptxas serialised its wgmma
  /// (to measure what the rebuild gains); part of the cache key.
  public static var rebuildsSerialized: Bool { CUDAEnvironment.value("FLASHMOE_WGMMA_REBUILD") != "0" }

  /// The first line of the log of a kernel rebuilt with each k tile's wgmma group drained.
  /// (An earlier second try, the k loop unrolled by two, compiled without serialisation but gave
  /// wrong results at H = D = 2048 on an H200, relative L2 error 0.13: ptxas moved the epilogue's
  /// reads of the accumulators above the last wgmma wait. WGMMAHazards finds that in the SASS.)
  public static let drainedLogLine = "flashmoe: ptxas serialised wgmma in the first build; rebuilt with each k tile's wgmma group drained in the loop (FLASHMOE_KLOOP_DRAIN)"
  /// The first line of the log of a kernel rebuilt drained because nvdisasm found hazards in the first build.
  public static let hazardDrainedLogLine = "flashmoe: nvdisasm found wgmma accumulators touched before their wait in the first build; rebuilt with each k tile's wgmma group drained in the loop (FLASHMOE_KLOOP_DRAIN)"

  private func build(_ spec: KernelSpec, key: String, drainKLoop: Bool) throws -> CompiledKernel {
    let name = "flashmoe_\(spec.architecture)_\(key.prefix(12)).cu"
    let drain = drainKLoop ? ["-DFLASHMOE_KLOOP_DRAIN"] : []
    if spec.transport == .nvshmem {
      // NVRTC with NVSHMEM's device code inlined from its headers (compileNVSHMEM says why).
      let build = try compileNVSHMEM(
        source: spec.translationUnit(), name: name, headers: sources,
        architecture: spec.architecture, options: Self.nvshmemExtraOptions + drain)
      return CompiledKernel(spec: spec, key: key, cubin: build.cubin, log: build.compileLog)
    }
    let program: CompiledProgram
    do {
      program = try nvrtc.compile(source: spec.translationUnit(), name: name, headers: sources, options: Self.options(for: spec) + drain)
    } catch let CUDAError.nvrtc(code, message, call, log) {
      throw JITError.compilation(spec: spec.description, message: "\(call): \(message) (\(code))", log: log)
    }
    guard !program.cubin.isEmpty else { throw JITError.noCubin(spec: spec.description, log: program.log) }
    return CompiledKernel(spec: spec, key: key, cubin: program.cubin, log: program.log)
  }

  private final class KeyLock: Sendable {
    let mutex = Mutex(())
  }

  /// Runs `body` while holding the in-process lock of `key`.
  private func withKeyLock<R: Sendable>(_ key: String, _ body: () throws -> R) throws -> R {
    let lock = keyLocks.withLock { locks in
      if let lock = locks[key] { return lock }
      let lock = KeyLock()
      locks[key] = lock
      return lock
    }
    return try lock.mutex.withLock { _ in try body() }
  }
}

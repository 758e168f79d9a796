import CUDADriver
import MoECore
import MoEJIT
import Synchronization

#if canImport(Glibc)
import Glibc
#endif

/// The whole MoE layer on one GPU as one persistent cooperative kernel (Sources/MoEKernels/cuda).
///
/// The kernel is specialised for the layer's H, D, E, k, dtype, form and activation and compiled
/// once (NVRTC, disk cache); the token count is a run-time argument up to `maxTokens`, so a new
/// batch size never recompiles. Forwards are serialised on this object's stream.
public final class CUDAMoE: @unchecked Sendable {
  public let config: MoEConfig
  public let maxTokens: Int
  public let device: Device
  public let compile: CompileResult
  /// Blocks in the cooperative grid (Processors + the OS block) and blocks per SM.
  public let gridBlocks: Int
  public let blocksPerSM: Int
  /// Threads per block: 128 (one warpgroup) or 256 (two consumer warpgroups per Processor).
  public let blockThreads: Int
  public let sharedBytes: Int
  public let registers: Int
  public var gpuIndex: Int { device.index }
  /// The weights as uploaded: rounded to the dtype, and with tf32 math the experts' matrices to tf32.
  public let roundedWeights: MoEWeights

  let context: Context
  public let stream: Stream
  let kernel: Kernel
  let weights: [DeviceBuffer]
  let work: Workspace
  let timeoutNs: UInt64
  private let state = Mutex<UInt32>(0)  // the last epoch used
  /// Host-array forwards share this engine's input/output buffers: one at a time (concurrent
  /// callers wait here; `launch` with the caller's own buffers and stream does not take it).
  let serial = Mutex<Void>(())

  /// Environment variable: the watchdog bound for every wait in the kernel, in milliseconds.
  public static let watchdogVariable = "FLASHMOE_WATCHDOG_MS"
  /// Environment variable (expert parallelism): how many blocks per GPU store token rows into the
  /// peers; the rest start computing at once. Default: a quarter of the grid.
  public static let dispatchersVariable = "FLASHMOE_DISPATCHERS"
  /// Environment variable: "1" runs fp32-storage/tf32-math layers on Hopper's wgmma (operands
  /// rounded to tf32 in shared memory) instead of mma.sync. Opt-in until measured on a GPU.
  public static let tf32WGMMAVariable = "FLASHMOE_TF32_WGMMA"
  /// Expert parallelism: `cell` sends dispatch rows cell by cell (KernelSpec.dispatchByCell, opt-in
  /// until measured), `token` (default) in token order.
  public static let dispatchOrderVariable = "FLASHMOE_DISPATCH_ORDER"
  /// Environment variable: warpgroups per Processor block on Hopper, "2" (128 × 256 tiles, one
  /// block per SM; the default for the layers that allow it: KernelSpec.twoWarpgroupsApply; the
  /// others keep one) or "1" (128 × 128 tiles, two blocks per SM). With TMA operands two are 6 %
  /// faster than one at 8K tokens on an H200, 8 % at 16K (sixth session; docs/PERFORMANCE.md).
  public static let warpgroupsVariable = "FLASHMOE_WARPGROUPS"
  /// Environment variable: "1" (the default) stages the expert weights and GEMM1's A by TMA
  /// (KernelSpec.tmaOperands) for the layers whose tiles are on wgmma (the others keep cp.async);
  /// "0" keeps cp.async. Measured on an H200 (sixth session): 8K tokens bf16 0.754 → 0.675 ms with
  /// two warpgroups, tf32 1.245 → 1.115 ms.
  public static let tmaVariable = "FLASHMOE_TMA"
  /// Environment variable: "1" (the default) gives each Processor block a producer warpgroup
  /// (KernelSpec.producer, producer.cuh: 384 threads, warpgroup 0 filling the operand stages, two
  /// computing) on one GPU where the layer allows it; "all" also with expert parallelism (correct
  /// and no faster on 2 × H200, eleventh session); "0" never. Measured on an H200 (tenth session, 8K tokens,
  /// bf16): 0.624 against 0.638–0.642 ms, 16K 1.170 against 1.181, 4K the same.
  public static let producerVariable = "FLASHMOE_PRODUCER"
  /// The TMA operands' tensor maps (W1, W3, W2, the intermediate; layout.cuh) when the kernel uses TMA.
  let tensorMaps: DeviceBuffer?
  let dispatchers: Int
  let stall: DebugStall?

  /// Whether FLASHMOE_TMA asks for TMA operands and `spec` can take them (a process-wide request:
  /// layers whose tiles are not on wgmma keep cp.async).
  static func tmaOperands(spec: KernelSpec, text: String? = CUDAEnvironment.value(tmaVariable)) throws(ConfigError) -> Bool {
    let text = text ?? "1"
    guard text != "0" else { return false }
    guard text == "1" else { throw ConfigError(field: tmaVariable, value: "'\(text)'", expected: "0 or 1") }
    return KernelSpec.tmaOperandsApply(
      dtype: spec.dtype, math: spec.math, form: spec.form, tileN: spec.tileN, threads: spec.threads,
      architecture: spec.architecture, tf32OnWGMMA: spec.tf32OnWGMMA)
  }

  /// Warpgroups per Processor block for this layer on `architecture`: FLASHMOE_WARPGROUPS, or the default.
  static func warpgroups(
    config: MoEConfig, architecture: String, tf32OnWGMMA: Bool, text: String? = CUDAEnvironment.value(warpgroupsVariable)
  ) throws(ConfigError) -> Int {
    let applies = KernelSpec.twoWarpgroupsApply(
      hidden: config.hidden, ffn: config.ffn, dtype: config.dtype, math: config.math, form: config.expertForm,
      architecture: architecture, tf32OnWGMMA: tf32OnWGMMA)
    guard let text else { return applies ? 2 : 1 }
    guard text == "1" || text == "2" else {
      throw ConfigError(field: warpgroupsVariable, value: "'\(text)'", expected: "1 or 2")
    }
    // A process-wide request: layers that cannot take two warpgroups keep one.
    return text == "2" && applies ? 2 : 1
  }

  /// The rank of this GPU in its expert-parallel group, and the group's size (1: a single GPU).
  public let rank: Int
  public let ranks: Int

  /// - Parameters:
  ///   - weights: the whole layer's weights; with `ranks > 1` this GPU keeps the gate and its own
  ///     block of E / P experts.
  ///   - rank, ranks, context: this GPU's place in an expert-parallel group (use `CUDAMoEGroup`).
  ///   - debugStall: fault injection (tests); nil reads FLASHMOE_DEBUG_STALL.
  ///   - watchdogMs: the bound on every wait in the kernel; nil reads FLASHMOE_WATCHDOG_MS (default 10 s).
  ///   - tf32OnWGMMA: tf32 math on Hopper's wgmma; nil reads FLASHMOE_TF32_WGMMA (default on; "0" keeps mma.sync).
  ///   - warpgroups, tmaOperands: Hopper's Processor blocks (1 or 2 warpgroups) and whether dense
  ///     operands come by TMA; nil reads FLASHMOE_WARPGROUPS and FLASHMOE_TMA (defaults: 2 and on
  ///     where the layer allows them). Layers that cannot take them keep 1 and cp.async.
  ///   - symmetric, transport, moduleInit: a multi-process job (`CUDAMoERank`): where the buffers
  ///     peers write come from, how this GPU writes into its peers (remote.cuh), and what the
  ///     loaded module needs before its first launch (NVSHMEM's device state).
  public init(
    config: MoEConfig, weights: MoEWeights, maxTokens: Int? = nil, deviceIndex: Int = 0, compiler: KernelCompiler? = nil,
    rank: Int = 0, ranks: Int = 1, context: Context? = nil, debugStall: DebugStall? = nil, watchdogMs: Int? = nil,
    tf32OnWGMMA: Bool? = nil, warpgroups requestedWarpgroups: Int? = nil, tmaOperands requestedTMA: Bool? = nil,
    symmetric: ((_ bytes: Int) throws -> DeviceBuffer)? = nil,
    transport: Transport = .peer, moduleInit: ((Module) throws -> Void)? = nil
  ) throws {
    try config.validate()
    try weights.check(against: config)
    try Self.checkSupported(config)
    let stall = try debugStall ?? DebugStall.fromEnvironment()
    if let stall, stall.rank >= ranks {
      throw ConfigError(
        field: DebugStall.variable, value: "GPU rank \(stall.rank)", expected: "a rank below the group's \(ranks) GPU(s)")
    }
    let maxTokens = maxTokens ?? config.tokens
    guard maxTokens >= config.tokens, maxTokens >= 1, maxTokens <= MoEConfig.maxDimension else {
      throw ConfigError(
        field: "max-tokens", value: maxTokens, expected: "an integer in \(config.tokens)...\(MoEConfig.maxDimension) (at least tokens)")
    }
    let driver = try Driver.shared()
    let device = try driver.device(deviceIndex)
    guard device.supportsCooperativeLaunch else {
      throw CUDABackendError.unsupported(field: "GPU \(deviceIndex)", value: device.name, expected: "a GPU with cooperative launch")
    }
    let context = try context ?? Context(device: device)
    let cc = device.computeCapability
    let arch = cc.major == 9 && cc.minor == 0 ? "sm_90a" : cc.major == 8 ? "sm_80" : cc.architecture
    let tf32OnWGMMA = tf32OnWGMMA ?? (CUDAEnvironment.value(Self.tf32WGMMAVariable) != "0")
    let order = CUDAEnvironment.value(Self.dispatchOrderVariable) ?? "token"
    guard ["token", "cell"].contains(order) else {
      throw ConfigError(field: Self.dispatchOrderVariable, value: "'\(order)'", expected: "token or cell")
    }
    let compiler = try compiler ?? KernelCompiler()
    let maxRows = ranks > 1
      ? config.experts * Workspace.cellRows(config: config, maxTokens: maxTokens)
      : Workspace.maxRows(config: config, maxTokens: maxTokens)
    let rowTiles = maxRows / Workspace.tileM

    /// The kernel with `warpgroups` per Processor block, loaded, and its grid; nil when the OS
    /// block's share of shared memory (which grows with maxTokens) does not fit next to that
    /// kernel's pipeline.
    let producerText = CUDAEnvironment.value(Self.producerVariable) ?? "1"
    guard ["0", "1", "all"].contains(producerText) else {
      throw ConfigError(field: Self.producerVariable, value: "'\(producerText)'", expected: "0, 1 or all")
    }
    func build(warpgroups: Int) throws -> (
      spec: KernelSpec, compile: CompileResult, kernel: Kernel, shared: Int, perSM: Int, grid: Int
    )? {
      let tileN = warpgroups == 2 ? 256 : KernelSpec.preferredTileN(
        hidden: config.hidden, ffn: config.ffn, dtype: config.dtype, math: config.math, form: config.expertForm,
        architecture: arch, tf32OnWGMMA: tf32OnWGMMA)
      var spec = KernelSpec(
        config: config, architecture: arch, ranks: ranks, tileN: tileN, threads: 128 * warpgroups, tf32OnWGMMA: tf32OnWGMMA)
      spec.transport = transport == .peer ? nil : transport
      spec.dispatchByCell = ranks > 1 && order == "cell" ? true : nil
      spec.tmaOperands = try Self.tmaOperands(
        spec: spec, text: requestedTMA.map { $0 ? "1" : "0" } ?? CUDAEnvironment.value(Self.tmaVariable)) ? true : nil
      if producerText == "all" || (producerText == "1" && ranks == 1), warpgroups == 2, KernelSpec.producerApplies(
        hidden: spec.hidden, ffn: spec.ffn, dtype: spec.dtype, form: spec.form, tileN: spec.tileN,
        architecture: spec.architecture, ranks: spec.ranks, tmaOperands: spec.tmaOperands == true, transport: spec.transport)
      {
        spec.producer = true
        spec.threads = 384
      }
      var compile = try compiler.compile(spec)
      if compile.cacheHit, compile.kernel.resources == nil {
        // A cached entry without ptxas's report cannot be checked: compile again and replace it.
        compile = CompileResult(
          kernel: try compiler.compileUncached(spec), cacheHit: false, duration: compile.duration,
          rejectedCacheFile: "the cached log holds no ptxas report", cacheWriteError: nil)
      }
      // Spills or a stack frame are refused. On the GPU machine NVRTC 13.0 has been seen to return an
      // empty program log for some compiles (cause not yet understood; see the issue #4 note); without
      // a report there is nothing to check, and CI compiles every variant with its report, so the
      // kernel is used as is.
      if compile.kernel.resources != nil {
        do {
          try compile.kernel.check()
        } catch {
          throw CUDABackendError.layoutMismatch("\(error) [\(compile.cacheHit ? "cache hit" : "compiled")]")
        }
      }
      let module = try Module(context: context, image: compile.kernel.cubin)
      // A kernel linked with NVSHMEM's device library needs its device state filled in first.
      try moduleInit?(module)
      let kernel = try module.kernel(named: CompiledKernel.entryName)
      let layout = try module.global(named: "flashmoe_layout", as: UInt64.self)
      guard layout.count >= 6, Int(layout[2]) == KernelParams.size, Int(layout[4]) == ErrorRecord.size,
            Int(layout[3]) == Workspace.mailboxSlotSize, (2...Workspace.maxMailboxDepth).contains(Int(layout[5]))
      else {
        throw CUDABackendError.layoutMismatch("flashmoe_layout = \(layout); host expects Params \(KernelParams.size) B, ErrorRecord \(ErrorRecord.size) B, mailbox slot \(Workspace.mailboxSlotSize) B × 2...\(Workspace.maxMailboxDepth)")
      }
      let storageBytes = Int(layout[0]), osBytes = Int(layout[1])

      // Grid: every SM busy, blocks per SM from the occupancy query (never a fixed SM count).
      var shared = storageBytes
      var perSM = 0, grid = 0
      for _ in 0..<2 {
        // The Scheduler's row bitmap grows with maxTokens (one byte per 128-row tile).
        guard shared <= device.maxSharedMemoryPerBlockOptin else { return nil }
        if shared > 48 * 1024 { try kernel.setMaxDynamicSharedMemory(bytes: shared) }
        perSM = try kernel.maxActiveBlocksPerMultiprocessor(blockSize: spec.threads, dynamicSharedBytes: shared)
        grid = perSM * device.multiprocessorCount
        let osNeed = osBytes + 4 * max(grid - 1, 0) + rowTiles
        if osNeed <= shared { break }
        shared = (osNeed + 127) / 128 * 128
      }
      guard shared <= device.maxSharedMemoryPerBlockOptin else { return nil }
      return (spec, compile, kernel, shared, perSM, grid)
    }

    // Two warpgroups' 192 KB pipeline leaves the OS block less room than one warpgroup's: a layer
    // with very many row tiles falls back to one (unless FLASHMOE_WARPGROUPS=2 asked for two).
    let warpgroupsText = requestedWarpgroups.map(String.init) ?? CUDAEnvironment.value(Self.warpgroupsVariable)
    let warpgroups = try Self.warpgroups(config: config, architecture: arch, tf32OnWGMMA: tf32OnWGMMA, text: warpgroupsText)
    let forced = warpgroupsText == "2"
    guard let built = try build(warpgroups: warpgroups) ?? (warpgroups == 2 && !forced ? build(warpgroups: 1) : nil) else {
      throw CUDABackendError.unsupported(
        field: "max tokens", value: "\(maxTokens)",
        expected: "fewer: its \(rowTiles) row tiles need more shared memory per block than the \(device.maxSharedMemoryPerBlockOptin) bytes of \(device.name)")
    }
    let (spec, compile, kernel, shared, perSM, grid) = built
    guard perSM >= 1, grid >= 2 else {
      throw CUDABackendError.unsupported(field: "shared memory", value: "\(shared) bytes per block", expected: "at most \(device.maxSharedMemoryPerBlockOptin) on \(device.name) with 2 blocks co-resident")
    }
    // Everything this GPU will hold, against its free memory, before the first allocation.
    let weightBytes = Self.weightBytes(config: config, ranks: ranks)
    let workspaceBytes = Workspace.plan(config: config, maxTokens: maxTokens, processors: grid - 1, ranks: ranks)
      .reduce(0) { $0 + $1.bytes }
    let free = try context.memoryInfo().free
    try Self.checkFits(gpu: deviceIndex, weights: weightBytes, workspace: workspaceBytes, free: free)
    self.config = config
    self.maxTokens = maxTokens
    self.device = device
    self.compile = compile
    self.gridBlocks = grid
    self.blocksPerSM = perSM
    self.blockThreads = spec.threads
    self.sharedBytes = shared
    self.registers = try kernel.attributes().registers
    self.context = context
    self.stream = try Stream(context: context)
    self.kernel = kernel
    var rounded = weights
    rounded.round(to: config.dtype)
    // tf32 math: the experts' matrices go up rounded to tf32 (as the CPU backend rounds them
    // before use), so that the tile GEMM on wgmma rounds nothing per stage (tile_gemm.cuh,
    // kRoundedTokens). Rounded in place: the layer computes the same function either way.
    if config.math == .tf32 {
      rounded.w1 = rounded.w1.map(\.roundedToTF32)
      rounded.w2 = rounded.w2.map(\.roundedToTF32)
      rounded.w3 = rounded.w3?.map(\.roundedToTF32)
    }
    self.roundedWeights = rounded
    self.rank = rank
    self.ranks = ranks
    self.weights = try Self.upload(
      rounded, experts: rank * config.experts / ranks..<(rank + 1) * config.experts / ranks,
      dtype: config.dtype, context: context)
    self.work = try Workspace(
      config: config, maxTokens: maxTokens, processors: grid - 1, context: context, ranks: ranks, transport: transport,
      symmetric: symmetric)
    // GEMM0 loads a peer's rows from the dispatch cells by TMA (unless the build gathers them by
    // cp.async, FLASHMOE_PEER_ROWS_CPASYNC).
    let cells = KernelCompiler.defines("FLASHMOE_PEER_ROWS_CPASYNC") ? nil : work.dispatchIn.map { [rows = work.maxRows] in ($0.address, rows) }
    self.tensorMaps = spec.tmaOperands == true
      ? try Self.encodeTensorMaps(
        spec: spec, config: config, ranks: ranks, weights: self.weights, hidden: (work.hidden.address, work.maxRows),
        cells: cells, driver: driver, context: context)
      : nil
    let ms = watchdogMs ?? CUDAEnvironment.value(Self.watchdogVariable).flatMap { Int($0) } ?? 10_000
    self.timeoutNs = UInt64(max(ms, 1)) * 1_000_000
    let wanted = CUDAEnvironment.value(Self.dispatchersVariable).flatMap { Int($0) } ?? grid / 4
    self.dispatchers = min(max(wanted, 1), grid - 1)
    self.stall = stall
  }

  /// Shapes the kernel cannot take, rejected before any GPU work.
  public static func checkSupported(_ config: MoEConfig) throws(CUDABackendError) {
    if config.hidden % 64 != 0 {
      throw .unsupported(field: "hidden", value: "\(config.hidden)", expected: "a multiple of 64 (the tile width)")
    }
    if config.ffn % 64 != 0 {
      throw .unsupported(field: "ffn", value: "\(config.ffn)", expected: "a multiple of 64 (the tile width)")
    }
    if config.experts > 256 {
      throw .unsupported(field: "experts", value: "\(config.experts)", expected: "at most 256 (the gate tile holds every expert's logits)")
    }
    if config.topK > 16 {
      throw .unsupported(field: "topk", value: "\(config.topK)", expected: "at most 16")
    }
  }

  /// Bytes of the weights one GPU holds: the whole gate and its E / P experts, in the storage dtype.
  public static func weightBytes(config: MoEConfig, ranks: Int) -> Int {
    let (h, d, local) = (config.hidden, config.ffn, config.experts / max(ranks, 1))
    let matrices = config.expertForm == .gated ? 3 : 2
    var perExpert = matrices * h * d
    if config.biases { perExpert += d + h + (config.expertForm == .gated ? d : 0) }
    return (config.experts * h + local * perExpert) * config.dtype.size
  }

  /// Throws `outOfMemory` naming both parts when weights + workspace exceed `free`; a margin of
  /// 64 MiB is kept for the driver, the module and the stream.
  public static func checkFits(gpu: Int, weights: Int, workspace: Int, free: Int) throws(CUDABackendError) {
    let needed = weights + workspace
    if needed + (64 << 20) > free {
      throw .outOfMemory(gpu: gpu, needed: needed, available: free, weights: weights, workspace: workspace)
    }
  }

  /// Uploads the gate (whole: every GPU routes to all E experts) and the experts in `range` (the
  /// block this GPU owns).
  static func upload(_ w: MoEWeights, experts range: Range<Int>, dtype: DType, context: Context) throws -> [DeviceBuffer] {
    func buffer(_ values: [Float]) throws -> DeviceBuffer {
      switch dtype {
      case .fp32: return try DeviceBuffer(context: context, copying: values)
      case .bf16: return try DeviceBuffer(context: context, copying: values.map(\.bf16Bits))
      case .fp16: return try DeviceBuffer(context: context, copying: values.map(\.fp16Bits))
      }
    }
    let (h, d) = (w.hidden, w.ffn)
    func block(_ values: [Float], _ perExpert: Int) -> [Float] {
      Array(values[range.lowerBound * perExpert..<range.upperBound * perExpert])
    }
    var buffers = [try buffer(w.gate), try buffer(block(w.w1, d * h)), try buffer(block(w.w2, h * d))]
    for (optional, perExpert) in [(w.w3, d * h), (w.b1, d), (w.b2, h), (w.b3, d)] {
      if let optional { buffers.append(try buffer(block(optional, perExpert))) }
    }
    return buffers
  }

  /// The five tensor maps the kernel reads (layout.cuh, Params.tensorMaps): W1 and W3 in boxes of
  /// GEMM0's rows, W2 in boxes of GEMM1's, the intermediate a (`hidden`: address, rows) and, with
  /// peers, the dispatch cells (`cells`) in 128-row boxes; each box row is 128 bytes of the k
  /// dimension. A plain layer's W3 slot repeats W1's map, and without `cells` the cell slot
  /// repeats the intermediate's (never read).
  static func encodeTensorMaps(
    spec: KernelSpec, config: MoEConfig, ranks: Int, weights: [DeviceBuffer], hidden: (address: UInt64, rows: Int),
    cells: (address: UInt64, rows: Int)? = nil, driver: Driver, context: Context
  ) throws -> DeviceBuffer {
    let element = config.dtype.size, local = config.experts / ranks
    let (h, d) = (config.hidden, config.ffn)
    let gemm0Rows = config.expertForm == .gated ? spec.tileN / 2 : spec.tileN
    func map(_ address: UInt64, rows: Int, columns: Int, boxRows: Int) throws -> [UInt8] {
      try driver.tensorMap(TiledMatrix(
        address: address, elementBytes: element, rows: rows, columns: columns, boxRows: boxRows, boxColumns: 128 / element))
    }
    // Order of `upload`: gate, w1, w2, then w3 when gated.
    let w1 = weights[1].address, w2 = weights[2].address
    let w3 = config.expertForm == .gated ? weights[3].address : w1
    let bytes = try map(w1, rows: local * d, columns: h, boxRows: gemm0Rows)
      + map(w3, rows: local * d, columns: h, boxRows: gemm0Rows)
      + map(w2, rows: local * h, columns: d, boxRows: spec.tileN)
    let intermediate = try map(hidden.address, rows: hidden.rows, columns: d, boxRows: spec.tileM)
    let cellMap = try cells.map { try map($0.address, rows: $0.rows, columns: h, boxRows: spec.tileM) } ?? intermediate
    return try DeviceBuffer(context: context, copying: bytes + intermediate + cellMap)
  }

  private func weightAddress(_ which: String) -> UInt64 {
    // Order of `upload`: gate, w1, w2, then the present ones of w3, b1, b2, b3.
    var index = 3
    let present: [(String, Bool)] = [
      ("w3", config.expertForm == .gated), ("b1", config.biases), ("b2", config.biases),
      ("b3", config.biases && config.expertForm == .gated),
    ]
    for (name, has) in present {
      if name == which { return has ? weights[index].address : 0 }
      if has { index += 1 }
    }
    return 0
  }

  /// The kernel reads token rows and writes (or, with the atomic combine, adds into) output rows in
  /// 16-byte vectors, and takes x's rows by TMA: both buffers must be device addresses aligned to 16
  /// bytes. Checked before anything is launched, so that a bad address is an error naming it, not
  /// a misaligned-address fault that leaves the context unusable.
  static func checkTokenBuffers(input: UInt64, output: UInt64) throws {
    for (field, address) in [("input", input), ("output", output)] where address == 0 || address % 16 != 0 {
      throw ConfigError(
        field: field, value: "0x" + String(address, radix: 16),
        expected: "a nonzero device address aligned to 16 bytes (the kernel moves 16-byte vectors)")
    }
  }

  /// Launches one forward on `stream` with `tokens` rows of `input`, writing `output`; returns at
  /// once (no host synchronisation). Call `checkStatus` after the stream is synchronised.
  public func launch(input: UInt64, output: UInt64, tokens: Int, stream: Stream? = nil) throws {
    try launch(input: input, output: output, tokens: tokens, stream: stream, epoch: nil)
  }

  /// `epoch`: the group's forward number (every GPU of a group must use the same); nil = next own.
  func launch(input: UInt64, output: UInt64, tokens: Int, stream: Stream?, epoch forced: UInt32?, trace: Bool = false) throws {
    guard tokens >= 1, tokens <= maxTokens else {
      throw ConfigError(field: "tokens", value: tokens, expected: "1...\(maxTokens) (the layer's maximum)")
    }
    try Self.checkTokenBuffers(input: input, output: output)
    let epoch = state.withLock { epoch -> UInt32 in
      if let forced { epoch = forced } else { epoch = epoch == UInt32.max ? 1 : epoch + 1 }
      return epoch
    }
    var p = KernelParams()
    p.x = input
    p.out = output
    p.gate = weights[0].address
    p.w1 = weights[1].address
    p.w2 = weights[2].address
    p.w3 = weightAddress("w3")
    p.b1 = weightAddress("b1")
    p.b2 = weightAddress("b2")
    p.b3 = weightAddress("b3")
    p.tensorMaps = tensorMaps?.address ?? 0
    p.tokens = Int32(tokens)
    // Dropless: no pair can reach slot S·k, so nothing is dropped.
    p.capacity = Int32(min(config.expertCapacity(tokens: tokens) ?? tokens * config.topK, tokens * config.topK))
    p.renormalize = config.renormalize ? 1 : 0
    p.maxRows = Int32(work.maxRows)
    p.processors = Int32(gridBlocks - 1)
    p.epoch = epoch
    p.timeoutNs = timeoutNs
    p.rank = Int32(rank)
    p.ranks = Int32(ranks)
    p.dispatchers = Int32(dispatchers)
    p.stallRole = stall?.role ?? 0
    p.stallRank = Int32(stall?.rank ?? 0)
    work.fill(&p)
    // The trace words must have been reset (`resetTrace`) before: not here, inside a timed span.
    if trace { p.trace = work.trace.address }
    try kernel.launch(
      grid: Dim3(gridBlocks), block: Dim3(blockThreads), sharedBytes: sharedBytes, stream: stream ?? self.stream, cooperative: true,
      arguments: [.bytes(p.bytes, alignment: 8)])
  }

  /// Turns a watchdog record of the last forward into an error (and resets the grid barrier, which
  /// an abandoned forward may have left half-counted).
  public func checkStatus() throws {
    let epoch = state.withLock { $0 }
    let record = ErrorRecord(try work.error.download(UInt8.self))
    guard record.epoch == epoch, record.code != 0 else {
      // Stopped by a peer GPU's abort (expert parallelism): no record here, the peer has it.
      if try work.abortEpoch.download(UInt32.self, count: 1)[0] == epoch {
        try work.barrier.fill(byte: 0)
        throw CUDABackendError.peerAborted(gpu: device.index)
      }
      return
    }
    try work.barrier.fill(byte: 0)
    throw CUDABackendError.watchdog(
      gpu: device.index, role: CUDABackendError.roleName(record.role), phase: CUDABackendError.phaseName(record.phase),
      block: Int(record.block), awaited: record.awaited, observed: record.observed, elapsedMs: Double(record.elapsedNs) / 1e6)
  }

  /// After a forward that ended without an error here: throws `peerAborted` when a peer GPU gave
  /// up in this forward all the same (multi-process jobs check it after their barrier).
  func checkPeerAbort() throws {
    let epoch = state.withLock { $0 }
    if try work.abortEpoch.download(UInt32.self, count: 1)[0] == epoch {
      throw CUDABackendError.peerAborted(gpu: device.index)
    }
  }

  /// One forward on host arrays: converts to the storage dtype, runs, converts back.
  /// `poison` fills the output with NaN first (verification: every element must be written).
  public func forward(_ input: [Float], tokens: Int, poison: Bool = false) throws -> [Float] {
    guard input.count == tokens * config.hidden else {
      throw ConfigError(field: "input", value: "\(input.count) values", expected: "\(tokens) × \(config.hidden)")
    }
    return try serial.withLock { _ in
      try upload(input, to: work.input)
      if poison { try work.output.fill(word: Self.nanWord(config.dtype), stream: stream) }
      try launch(input: work.input.address, output: work.output.address, tokens: tokens)
      try stream.synchronize()
      try checkStatus()
      return try download(work.output, count: tokens * config.hidden)
    }
  }

  /// One forward with the kernel's timeline recorded (`flashmoe bench --trace`).
  public func trace(_ input: [Float], tokens: Int) throws -> KernelTrace {
    try serial.withLock { _ in
      try upload(input, to: work.input)
      let start = try Event(context: context), end = try Event(context: context)
      try resetTrace()
      try start.record(on: stream)
      try launch(input: work.input.address, output: work.output.address, tokens: tokens, stream: stream, epoch: nil, trace: true)
      try end.record(on: stream)
      try stream.synchronize()
      try checkStatus()
      var trace = try readTrace()
      trace.eventMicroseconds = Double(try end.elapsedMilliseconds(since: start)) * 1e3
      return trace
    }
  }

  /// Resets the trace words for a traced forward (a synchronous upload on this GPU's stream).
  func resetTrace() throws {
    try work.trace.upload(KernelTrace.initialWords(processors: gridBlocks - 1), stream: stream)
  }

  func readTrace() throws -> KernelTrace {
    let words = try work.trace.download(UInt64.self, count: KernelTrace.words(processors: gridBlocks - 1), stream: stream)
    return KernelTrace(words: words, gpu: device.index, processors: gridBlocks - 1)
  }

  /// The routing of the last forward: each pair's expert and its row (−1 when dropped).
  public func lastRouting(tokens: Int) throws -> (expert: [Int32], row: [Int32]) {
    let pairs = tokens * config.topK
    return (try work.pairExpert.download(Int32.self, count: pairs), try work.pairRow.download(Int32.self, count: pairs))
  }

  /// Milliseconds per forward by CUDA events, for `runs` forwards after `warmup`.
  public func time(_ input: [Float], tokens: Int, warmup: Int, runs: Int) throws -> [Double] {
    try serial.withLock { _ in try timeLocked(input, tokens: tokens, warmup: warmup, runs: runs) }
  }

  private func timeLocked(_ input: [Float], tokens: Int, warmup: Int, runs: Int) throws -> [Double] {
    try upload(input, to: work.input)
    let start = try Event(context: context), end = try Event(context: context)
    var times: [Double] = []
    for i in 0..<(warmup + runs) {
      try start.record(on: stream)
      try launch(input: work.input.address, output: work.output.address, tokens: tokens)
      try end.record(on: stream)
      try end.synchronize()
      try checkStatus()
      if i >= warmup { times.append(Double(try end.elapsedMilliseconds(since: start))) }
    }
    return times
  }

  /// A diagnostic of the launch path (`flashmoe bench --pipelined`): every timed forward enqueued
  /// before any is waited for, so the host's launch call overlaps the forward before it; CUDA
  /// events around each as `time` records them. Also returns the host's wall time per launch call
  /// in microseconds. The difference from `time`'s medians is what the host adds to a forward that
  /// waits for the one before (as `time` and torch_moe.py measure).
  public func timePipelined(_ input: [Float], tokens: Int, warmup: Int, runs: Int) throws -> (milliseconds: [Double], hostLaunchMicroseconds: [Double]) {
    try serial.withLock { _ in
      try upload(input, to: work.input)
      for _ in 0..<warmup { try launch(input: work.input.address, output: work.output.address, tokens: tokens) }
      try stream.synchronize()
      try checkStatus()
      let events = try (0...runs).map { _ in try Event(context: context) }
      let clock = ContinuousClock()
      var host: [Double] = []
      try events[0].record(on: stream)
      for i in 1...runs {
        let started = clock.now
        try launch(input: work.input.address, output: work.output.address, tokens: tokens)
        host.append(started.duration(to: clock.now).seconds * 1e6)
        try events[i].record(on: stream)
      }
      try events[runs].synchronize()
      try checkStatus()
      let times = try (1...runs).map { Double(try events[$0].elapsedMilliseconds(since: events[$0 - 1])) }
      return (times, host)
    }
  }

  /// Device memory in use on this GPU (for leak checks over long runs).
  public func memoryInUse() throws -> Int {
    let info = try context.memoryInfo()
    return info.total - info.free
  }

  static func nanWord(_ dtype: DType) -> UInt32 {
    switch dtype {
    case .fp32: return 0x7FC0_0000
    case .bf16: return 0x7FC0_7FC0
    case .fp16: return 0x7E00_7E00
    }
  }

  func upload(_ values: [Float], to buffer: DeviceBuffer) throws {
    switch config.dtype {
    case .fp32: try buffer.upload(values, stream: stream)
    case .bf16: try buffer.upload(values.map(\.bf16Bits), stream: stream)
    case .fp16: try buffer.upload(values.map(\.fp16Bits), stream: stream)
    }
  }

  func download(_ buffer: DeviceBuffer, count: Int) throws -> [Float] {
    switch config.dtype {
    case .fp32: return try buffer.download(Float.self, count: count, stream: stream)
    case .bf16: return try buffer.download(UInt16.self, count: count, stream: stream).map { Float(bf16Bits: $0) }
    case .fp16: return try buffer.download(UInt16.self, count: count, stream: stream).map { Float(fp16Bits: $0) }
    }
  }
}

import FoundationEssentials
import MoECore

/// Everything that selects one compiled kernel: the layer's shapes and semantics as compile-time
/// constants, the tiling, the target architecture and the number of GPUs. Whatever changes per
/// call (the token count S, capacity, pointers) is a kernel parameter instead, so a new batch size
/// never recompiles.
public struct KernelSpec: Hashable, Codable, Sendable, CustomStringConvertible {
  /// H: the token embedding width.
  public var hidden: Int
  /// D: the expert FFN's intermediate width.
  public var ffn: Int
  /// E: experts in the layer (over all GPUs).
  public var experts: Int
  /// k: experts each token is routed to.
  public var topK: Int
  public var dtype: DType
  public var math: Math
  public var form: ExpertForm
  public var activation: Activation
  public var biases: Bool
  /// Rows (tokens) of a GEMM tile.
  public var tileM: Int
  /// Columns of a GEMM tile.
  public var tileN: Int
  /// Threads per block.
  public var threads: Int
  /// The real GPU architecture compiled for: "sm_90a", "sm_80", ...
  public var architecture: String
  /// GPUs the layer's experts are spread over.
  public var ranks: Int
  /// fp32 storage with tf32 math on sm_90a: wgmma instead of mma.sync (CUDAMoE's default since it
  /// measured 2.25 against 3.17 ms at 8K tokens on one H200; FLASHMOE_TF32_WGMMA=0 keeps mma.sync).
  public var tf32OnWGMMA: Bool
  /// How the GPUs of a multi-GPU layer write into each other (remote.cuh); nil is `.peer`, and is
  /// left out of the JSON so that peer-pointer specs keep their cache keys.
  public var transport: Transport?
  /// Expert parallelism: dispatch sends rows cell by cell (expert-major) instead of in token order,
  /// so that a peer's cells complete one after another (opt-in while it is measured:
  /// FLASHMOE_DISPATCH_ORDER=cell). nil is token order, left out of the JSON like `transport`.
  public var dispatchByCell: Bool?
  /// The tile GEMM stages its dense operands by TMA (tensor maps encoded by the host, completion
  /// on mbarriers) instead of cp.async: the expert weights, and GEMM1's A (the intermediate a);
  /// GEMM0's token rows, gathered through the routing, stay on cp.async. CUDAMoE's default where
  /// it applies (FLASHMOE_TMA=0 turns it off). nil is off, left out of the JSON like `transport`.
  public var tmaOperands: Bool?
  /// A producer warpgroup per Processor block (producer.cuh): 384 threads, warpgroup 0 filling the
  /// operand stages and warpgroups 1–2 computing: 16-bit storage, the plain form, TMA operands,
  /// 128 × 256 tiles (producerApplies). CUDAMoE's default on one GPU (FLASHMOE_PRODUCER=0 turns it
  /// off; `all` also uses it with expert parallelism, an experiment). nil is off, left out of the
  /// JSON like `transport`.
  public var producer: Bool?

  public init(
    hidden: Int, ffn: Int, experts: Int, topK: Int, dtype: DType, math: Math = .fp32,
    form: ExpertForm = .plain, activation: Activation = .gelu, biases: Bool = true,
    tileM: Int = 128, tileN: Int = 64, threads: Int = 128,
    architecture: String = "sm_90a", ranks: Int = 1, tf32OnWGMMA: Bool = false, transport: Transport = .peer
  ) {
    self.transport = transport == .peer ? nil : transport
    self.hidden = hidden
    self.ffn = ffn
    self.experts = experts
    self.topK = topK
    self.dtype = dtype
    self.math = math
    self.form = form
    self.activation = activation
    self.biases = biases
    self.tileM = tileM
    self.tileN = tileN
    self.threads = threads
    self.architecture = architecture
    self.ranks = ranks
    self.tf32OnWGMMA = tf32OnWGMMA
  }

  /// The spec for `config`'s layer.
  public init(
    config: MoEConfig, architecture: String = "sm_90a", ranks: Int = 1,
    tileM: Int = 128, tileN: Int = 64, threads: Int = 128, tf32OnWGMMA: Bool = false
  ) {
    self.init(
      hidden: config.hidden, ffn: config.ffn, experts: config.experts, topK: config.topK, dtype: config.dtype,
      math: config.math, form: config.expertForm, activation: config.activation, biases: config.biases,
      tileM: tileM, tileN: tileN, threads: threads,
      architecture: architecture, ranks: ranks,
      tf32OnWGMMA: Self.tf32OnWGMMAApplies(
        requested: tf32OnWGMMA, dtype: config.dtype, math: config.math, form: config.expertForm, tileN: tileN,
        architecture: architecture))
  }

  /// Whether an opt-in tf32-on-wgmma request takes effect: fp32 storage with tf32 math on sm_90a,
  /// except the gated form's narrow tile. There GEMM0's two 32-wide halves stay on mma.sync (wgmma
  /// is instantiated 64 and 128 wide), and mma.sync's in-register tf32 conversion next to a wgmma
  /// GEMM1 spilled 16 bytes at 255 registers (2 × H200, 2026-11-28): that layer keeps tf32 on mma.sync.
  public static func tf32OnWGMMAApplies(
    requested: Bool, dtype: DType, math: Math, form: ExpertForm, tileN: Int, architecture: String
  ) -> Bool {
    requested && dtype == .fp32 && math == .tf32 && architecture == "sm_90a" && !(form == .gated && tileN < 128)
  }

  /// One line naming every field, used in generated sources and error messages.
  public var description: String {
    let math = dtype == .fp32 ? "/\(self.math.rawValue)" : ""
    return "H=\(hidden) D=\(ffn) E=\(experts) k=\(topK) \(dtype.rawValue)\(math) \(form.rawValue) "
      + "\(activation.rawValue) biases=\(biases) tile=\(tileM)x\(tileN) threads=\(threads) "
      + "ranks=\(ranks) \(architecture)" + (tf32OnWGMMA ? " tf32-wgmma" : "")
      + (transport == .nvshmem ? " nvshmem-put" : "") + (dispatchByCell == true ? " dispatch-by-cell" : "")
      + (tmaOperands == true ? " tma-operands" : "") + (producer == true ? " producer" : "")
  }

  /// Rejects values the kernel cannot be built for, naming the field.
  public func validate() throws(JITError) {
    func require(_ ok: Bool, _ field: String, _ value: Any, _ expected: String) throws(JITError) {
      if !ok { throw JITError.invalidSpec(field: field, value: "\(value)", expected: expected) }
    }
    let limit = MoEConfig.maxDimension
    for (field, value) in [("hidden", hidden), ("ffn", ffn), ("experts", experts)] {
      try require(value >= 1 && value <= limit, field, value, "an integer in 1...\(limit)")
    }
    try require(topK >= 1 && topK <= experts, "topK", topK, "an integer in 1...\(experts) (1 ≤ k ≤ experts)")
    try require(math == .fp32 || dtype == .fp32, "math", math.rawValue, "fp32 with dtype \(dtype.rawValue) (tf32 applies to fp32 storage only)")
    try require(tileM >= 1 && tileM <= 1024, "tileM", tileM, "an integer in 1...1024")
    try require(tileN >= 1 && tileN <= 1024, "tileN", tileN, "an integer in 1...1024")
    if producer == true {
      try require(
        Self.producerApplies(
          hidden: hidden, ffn: ffn, dtype: dtype, form: form, tileN: tileN, architecture: architecture, ranks: ranks,
          tmaOperands: tmaOperands == true, transport: transport) && threads == 384,
        "producer", true,
        "false here: the producer warpgroup needs sm_90a, 16-bit storage, the plain form, peer stores between GPUs (not NVSHMEM puts), TMA operands, tileN 256 and 384 threads (this spec: \(architecture), \(dtype.rawValue), \(form.rawValue), ranks \(ranks), transport \(transport?.rawValue ?? "peer"), tma-operands \(tmaOperands == true), tileN \(tileN), \(threads) threads)")
    } else {
      try require(threads == 128 || threads == 256, "threads", threads, "128 (one warpgroup) or 256 (two, on sm_90a)")
    }
    if threads == 256 || producer == true {
      try require(
        Self.twoWarpgroupsApply(
          hidden: hidden, ffn: ffn, dtype: dtype, math: math, form: form, architecture: architecture,
          tf32OnWGMMA: tf32OnWGMMA) && tileN == 256,
        "threads", threads,
        "128 here: two warpgroups need sm_90a, 16-bit storage or tf32 on wgmma, tileN 256, H a multiple of 256 and D of \(form == .gated ? 128 : 256) (this spec: \(architecture), \(dtype.rawValue), tileN \(tileN), H \(hidden), D \(ffn))")
    }
    try require(ranks >= 1 && ranks <= 1024, "ranks", ranks, "an integer in 1...1024")
    try require(experts % ranks == 0, "experts", experts, "a multiple of ranks (\(ranks)): each GPU holds E / ranks experts")
    try require(Self.isRealArchitecture(architecture), "architecture", "'\(architecture)'", "a real GPU architecture such as sm_90a or sm_80")
    if dispatchByCell == true {
      try require(ranks > 1, "dispatchByCell", true, "ranks > 1 (one GPU dispatches nothing)")
    }
    if transport == .nvshmem {
      try require(ranks > 1, "transport", "nvshmem", "ranks > 1 (one GPU has no peers)")
    }
    if tmaOperands == true {
      try require(
        Self.tmaOperandsApply(
          dtype: dtype, math: math, form: form, tileN: tileN, threads: threads, architecture: architecture,
          tf32OnWGMMA: tf32OnWGMMA),
        "tmaOperands", true,
        "false here: TMA operands need the wgmma path (sm_90a, 16-bit storage or tf32 on wgmma) with each warpgroup's GEMM0 and GEMM1 width 64 or 128 (this spec: \(architecture), \(dtype.rawValue), tileN \(tileN), \(threads) threads)")
    }
  }

  /// Whether a layer can have a producer warpgroup (what has been built): the two-warpgroup
  /// 128 × 256 tile on sm_90a with TMA operands, 16-bit storage, the plain form; between GPUs only
  /// with peer stores (not NVSHMEM puts). CUDAMoE uses it on one GPU by default (measured there).
  public static func producerApplies(
    hidden: Int, ffn: Int, dtype: DType, form: ExpertForm, tileN: Int, architecture: String, ranks: Int, tmaOperands: Bool,
    transport: Transport? = nil
  ) -> Bool {
    architecture == "sm_90a" && dtype != .fp32 && form == .plain && (ranks == 1 || transport != .nvshmem) && tmaOperands
      && tileN == 256 && hidden % 256 == 0 && ffn % 256 == 0
  }

  /// "sm_" followed by digits and at most one feature-set suffix, "a" or "f" ("sm_90a", "sm_100f").
  static func isRealArchitecture(_ text: String) -> Bool {
    guard text.hasPrefix("sm_") else { return false }
    var rest = Substring(text.dropFirst(3))
    if let last = rest.last, last == "a" || last == "f" { rest = rest.dropLast() }
    return !rest.isEmpty && rest.count <= 4 && rest.allSatisfy { $0 >= "0" && $0 <= "9" }
  }

  /// The .cu file that instantiates the kernel template for this spec. It includes
  /// "flashmoe.cuh" from the kernel sources, passed to NVRTC as in-memory headers. When the kernel
  /// defines `FLASHMOE_LAYOUT(S)`, the unit also expands it (the kernel's layout probe: sizes the
  /// host reads back from the module); kernel sources without it still compile.
  public func translationUnit() -> String {
    let dtype: String
    switch self.dtype {
    case .fp32: dtype = "fm::DType::fp32"
    case .bf16: dtype = "fm::DType::bf16"
    case .fp16: dtype = "fm::DType::fp16"
    }
    let math: String
    switch self.math {
    case .fp32: math = "fm::MathMode::fp32"
    case .tf32: math = "fm::MathMode::tf32"
    }
    let form: String
    switch self.form {
    case .plain: form = "fm::Form::plain"
    case .gated: form = "fm::Form::gated"
    }
    let act: String
    switch activation {
    case .relu: act = "fm::Act::relu"
    case .gelu: act = "fm::Act::gelu"
    case .geluTanh: act = "fm::Act::gelu_tanh"
    case .silu: act = "fm::Act::silu"
    }
    return """
      // generated by FlashMoE for \(self)
      \(tf32OnWGMMA ? "#define FLASHMOE_TF32_WGMMA 1\n" : "")\(transport == .nvshmem ? "#define FLASHMOE_TRANSPORT_NVSHMEM 1\n" : "")\(dispatchByCell == true ? "#define FLASHMOE_DISPATCH_BY_CELL 1\n" : "")\(tmaOperands == true ? "#define FLASHMOE_TMA_OPERANDS 1\n" : "")\(producer == true ? "#define FLASHMOE_PRODUCER 1\n" : "")#include "flashmoe.cuh"
      namespace fm = flashmoe;
      using Spec = fm::Spec<\(hidden), \(ffn), \(experts), \(topK), \(dtype), \(math), \(form), \(act), /*biases*/\(biases), /*tileM*/\(tileM), /*tileN*/\(tileN), /*threads*/\(threads), /*ranks*/\(ranks)>;
      extern "C" __global__ void __launch_bounds__(Spec::kThreads, 1) flashmoe_forward(const fm::Params params) { fm::forward<Spec>(params); }
      #ifdef FLASHMOE_LAYOUT
      FLASHMOE_LAYOUT(Spec)
      #endif

      """
  }

  /// The spec as JSON with sorted keys: the same text for the same spec on every run and machine,
  /// part of the cache key.
  public func canonicalJSON() -> String {
    let encoder = JSONEncoder()
    encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
    // Encoding plain integers, strings and booleans cannot fail.
    let data = (try? encoder.encode(self)) ?? Data()
    return String(decoding: data, as: UTF8.self)
  }

  /// The widest output tile that fits the layer and the registers without spilling: on Hopper
  /// (sm_90 and later) 128 columns for 16-bit storage and fp32 FMA, 64 for TF32 (its operand
  /// conversion needs the registers); 64 on Ampere, whose ptxas spills the 128-wide mma tile; and
  /// 64 whenever H or GEMM0's column tile would not divide the layer.
  public static func preferredTileN(
    hidden: Int, ffn: Int, dtype: DType, math: Math, form: ExpertForm, architecture: String, tf32OnWGMMA: Bool = false
  ) -> Int {
    let major = Int(architecture.dropFirst(3).prefix(while: \.isNumber)).map { $0 / 10 } ?? 0
    let ampereMMA = major < 9 && dtype != .fp32
    // tf32 on mma.sync converts operands in registers: 64-wide tiles; on wgmma it is as wide as 16-bit.
    let tf32Narrow = dtype == .fp32 && math == .tf32 && !(tf32OnWGMMA && architecture == "sm_90a")
    let wide = !tf32Narrow && !ampereMMA
    let gemm0 = form == .gated ? 64 : 128
    return wide && hidden % 128 == 0 && ffn % gemm0 == 0 ? 128 : 64
  }

  /// Whether a Processor block can be two consumer warpgroups sharing a 128 × 256 tile
  /// (tile_gemm.cuh): wgmma (sm_90a; 16-bit storage, or fp32 with tf32 on wgmma), with H a
  /// multiple of 256 (GEMM1's column tiles) and D of GEMM0's (256 plain, 128 per matrix gated).
  public static func twoWarpgroupsApply(
    hidden: Int, ffn: Int, dtype: DType, math: Math, form: ExpertForm, architecture: String, tf32OnWGMMA: Bool
  ) -> Bool {
    let wgmma = architecture == "sm_90a" && (dtype != .fp32 || (math == .tf32 && tf32OnWGMMA))
    return wgmma && hidden % 256 == 0 && ffn % (form == .gated ? 128 : 256) == 0
  }

  /// Whether the tile GEMM can take its B operands by TMA: both GEMMs on wgmma, i.e. sm_90a with
  /// 16-bit storage or tf32 on wgmma, and each warpgroup's share of GEMM0's columns (per matrix)
  /// and of GEMM1's 64 or 128 wide (tile_gemm.cuh's kWG).
  public static func tmaOperandsApply(
    dtype: DType, math: Math, form: ExpertForm, tileN: Int, threads: Int, architecture: String, tf32OnWGMMA: Bool
  ) -> Bool {
    let wgmma = architecture == "sm_90a" && (dtype != .fp32 || (math == .tf32 && tf32OnWGMMA))
    // Computing warpgroups: 384 threads are a producer warpgroup and two that compute.
    let groups = max((threads == 384 ? 256 : threads) / 128, 1)
    let widths = [(form == .gated ? tileN / 2 : tileN) / groups, tileN / groups]
    return wgmma && widths.allSatisfy { $0 == 64 || $0 == 128 }
  }

  /// Every storage/math combination × expert form × architecture (sm_80, sm_90a) at a small shape
  /// (H = D = 256, E = 8, k = 2, GELU, biases): the variants the CI compile test covers.
  public static func ciVariants() -> [KernelSpec] {
    let numerics: [(DType, Math)] = [(.fp32, .fp32), (.fp32, .tf32), (.bf16, .fp32), (.fp16, .fp32)]
    var specs: [KernelSpec] = []
    for (dtype, math) in numerics {
      for form in ExpertForm.allCases {
        for architecture in ["sm_80", "sm_90a"] {
          specs.append(KernelSpec(
            hidden: 256, ffn: 256, experts: 8, topK: 2, dtype: dtype, math: math, form: form,
            activation: .gelu, biases: true,
            tileN: preferredTileN(hidden: 256, ffn: 256, dtype: dtype, math: math, form: form, architecture: architecture),
            architecture: architecture))
          // The narrow tile too: layers whose H or D is not a multiple of 128 use it.
          specs.append(KernelSpec(
            hidden: 192, ffn: 192, experts: 8, topK: 2, dtype: dtype, math: math, form: form,
            activation: .silu, biases: false, tileN: 64, architecture: architecture))
        }
      }
    }
    // The expert-parallel path (two GPUs) for each numeric and form on Hopper.
    for (dtype, math, form) in [(DType.bf16, Math.fp32, ExpertForm.plain), (.fp16, .fp32, .gated), (.fp32, .tf32, .plain), (.fp32, .fp32, .gated)] {
      specs.append(KernelSpec(
        hidden: 256, ffn: 256, experts: 8, topK: 2, dtype: dtype, math: math, form: form, activation: .gelu, biases: true,
        tileN: preferredTileN(hidden: 256, ffn: 256, dtype: dtype, math: math, form: form, architecture: "sm_90a"),
        architecture: "sm_90a", ranks: 2))
    }
    // tf32 on wgmma (opt-in): plain and gated, wide and narrow tiles, one GPU and two.
    // (A gated narrow request falls back to mma.sync: tf32OnWGMMAApplies.)
    for (form, tileN, ranks) in [(ExpertForm.plain, 128, 1), (.gated, 128, 2), (.plain, 64, 1)] {
      specs.append(KernelSpec(
        hidden: 256, ffn: 256, experts: 8, topK: 2, dtype: .fp32, math: .tf32, form: form, activation: .gelu, biases: true,
        tileN: tileN, architecture: "sm_90a", ranks: ranks, tf32OnWGMMA: true))
    }
    // Real sizes where ptxas serialised wgmma in the rolled k loop (C7514): a gated SiLU layer and a
    // plain SiLU layer without biases at H = D = 2048. KernelCompiler rebuilds them with each k
    // tile's wgmma group drained; the CI compile test requires the result free of serialisation.
    for form in [ExpertForm.gated, .plain] {
      specs.append(KernelSpec(
        hidden: 2048, ffn: 2048, experts: 32, topK: 2, dtype: .bf16, form: form, activation: .silu, biases: false,
        tileN: 128, architecture: "sm_90a"))
    }
    // The benchmark's layers at their real size (bf16, and fp32 with tf32 on wgmma): compiled
    // clean the first time; CI reads their SASS like every sm_90a variant's.
    specs.append(KernelSpec(
      hidden: 2048, ffn: 2048, experts: 32, topK: 2, dtype: .bf16, form: .plain, activation: .gelu, biases: true,
      tileN: 128, architecture: "sm_90a"))
    specs.append(KernelSpec(
      hidden: 2048, ffn: 2048, experts: 32, topK: 2, dtype: .fp32, math: .tf32, form: .plain, activation: .gelu,
      biases: true, tileN: 128, architecture: "sm_90a", tf32OnWGMMA: true))
    // Two consumer warpgroups per Processor (128 × 256 tiles, CUDAMoE's default where they apply):
    // the benchmark's layers at real size (bf16, tf32 on wgmma), a gated SiLU layer at real size,
    // and small layers of each numeric and form on one GPU and two.
    for (dtype, math) in [(DType.bf16, Math.fp32), (.fp32, .tf32)] {
      specs.append(KernelSpec(
        hidden: 2048, ffn: 2048, experts: 32, topK: 2, dtype: dtype, math: math, form: .plain, activation: .gelu,
        biases: true, tileN: 256, threads: 256, architecture: "sm_90a", tf32OnWGMMA: dtype == .fp32))
    }
    specs.append(KernelSpec(
      hidden: 2048, ffn: 2048, experts: 32, topK: 2, dtype: .bf16, form: .gated, activation: .silu, biases: false,
      tileN: 256, threads: 256, architecture: "sm_90a"))
    for (dtype, math, form, ranks) in [
      (DType.bf16, Math.fp32, ExpertForm.plain, 2), (.fp16, .fp32, .gated, 1), (.fp32, .tf32, .gated, 2), (.fp32, .tf32, .plain, 1),
    ] {
      specs.append(KernelSpec(
        hidden: 256, ffn: 256, experts: 8, topK: 2, dtype: dtype, math: math, form: form, activation: .gelu, biases: true,
        tileN: 256, threads: 256, architecture: "sm_90a", ranks: ranks, tf32OnWGMMA: dtype == .fp32))
    }
    // TMA operands: the benchmark's bf16 layer with one and two warpgroups, gated bf16 and
    // tf32 on wgmma small, on one GPU and two.
    for (dtype, math, form, tileN, threads, hidden, ranks) in [
      (DType.bf16, Math.fp32, ExpertForm.plain, 128, 128, 2048, 1), (.bf16, .fp32, .plain, 256, 256, 2048, 1),
      (.bf16, .fp32, .gated, 128, 128, 256, 2), (.fp32, .tf32, .plain, 128, 128, 256, 1),
    ] {
      var spec = KernelSpec(
        hidden: hidden, ffn: hidden, experts: hidden == 2048 ? 32 : 8, topK: 2, dtype: dtype, math: math, form: form,
        activation: .gelu, biases: true, tileN: tileN, threads: threads, architecture: "sm_90a", ranks: ranks,
        tf32OnWGMMA: dtype == .fp32)
      spec.tmaOperands = true
      specs.append(spec)
    }
    // A producer warpgroup (the Hopper default on one GPU in 16-bit, plain): the benchmark's bf16 layer, and a small one;
    // with expert parallelism (an experiment) on 2 GPUs.
    for (hidden, ranks) in [(2048, 1), (512, 1), (2048, 2)] {
      var spec = KernelSpec(
        hidden: hidden, ffn: hidden, experts: hidden == 2048 ? 32 : 8, topK: 2, dtype: .bf16, form: .plain,
        activation: .gelu, biases: true, tileN: 256, threads: 384, architecture: "sm_90a", ranks: ranks)
      spec.tmaOperands = true
      spec.producer = true
      specs.append(spec)
    }
    // The single-GPU battery's other producer layers (flashmoe verify): k = 1, 3, 4; E = 1, 128;
    // ReLU without biases; fp16; GELU-tanh at H = 512, D = 1024; SiLU without biases at 2048. A
    // kernel change or define that spills in one of them fails here (FLASHMOE_NVRTC_DEFINES,
    // FLASHMOE_CI_VARIANTS=producer), not in the battery on a GPU, where the fifteenth session's
    // first build of the warpgroups apart lost three layers to 8–40 spilled bytes.
    let batteryProducers: [(hidden: Int, ffn: Int, experts: Int, topK: Int, dtype: DType, activation: Activation, biases: Bool)] = [
      (256, 256, 8, 1, .bf16, .gelu, true), (256, 256, 8, 3, .bf16, .gelu, true), (256, 256, 8, 4, .bf16, .gelu, true),
      (256, 256, 1, 1, .bf16, .gelu, true), (256, 256, 128, 2, .bf16, .gelu, true), (256, 256, 8, 2, .bf16, .relu, false),
      (256, 256, 8, 2, .fp16, .gelu, true), (512, 1024, 8, 2, .bf16, .geluTanh, true), (2048, 2048, 8, 2, .bf16, .silu, false),
    ]
    for l in batteryProducers {
      var spec = KernelSpec(
        hidden: l.hidden, ffn: l.ffn, experts: l.experts, topK: l.topK, dtype: l.dtype, form: .plain,
        activation: l.activation, biases: l.biases, tileN: 256, threads: 384, architecture: "sm_90a")
      spec.tmaOperands = true
      spec.producer = true
      specs.append(spec)
    }
    // Dispatch in cell order (opt-in): bf16 on two GPUs, and four.
    for ranks in [2, 4] {
      var spec = KernelSpec(
        hidden: 256, ffn: 256, experts: 8, topK: 2, dtype: .bf16, form: .plain, activation: .gelu, biases: true,
        tileN: preferredTileN(hidden: 256, ffn: 256, dtype: .bf16, math: .fp32, form: .plain, architecture: "sm_90a"),
        architecture: "sm_90a", ranks: ranks)
      spec.dispatchByCell = true
      specs.append(spec)
    }
    return specs
  }
}

/// How the GPUs of a multi-GPU layer write into each other's buffers (Sources/MoEKernels/cuda/remote.cuh).
public enum Transport: String, Codable, Sendable, CaseIterable {
  /// Stores through peer pointers: peer access in one process, `nvshmem_ptr` between processes.
  case peer
  /// NVSHMEM puts with signals, for peers that loads and stores cannot reach (other hosts).
  case nvshmem
}

// The compile-time description of one kernel variant. Everything that changes the binary is here;
// everything that changes per call (token count, capacity, pointers, epoch) is in Params.
#pragma once

namespace flashmoe {

enum class DType { fp32, bf16, fp16 };
enum class MathMode { fp32, tf32 };
enum class Form { plain, gated };
enum class Act { relu, gelu, gelu_tanh, silu };

template <int H, int D, int E, int K, DType kDTypeV, MathMode kMathV, Form kFormV, Act kActV, bool kBiasesV,
          int kTileMV, int kTileNV, int kThreadsV, int kRanksV>
struct Spec {
  static constexpr int kHidden = H;
  static constexpr int kFFN = D;
  static constexpr int kExperts = E;
  static constexpr int kTopK = K;
  static constexpr DType kDType = kDTypeV;
  static constexpr MathMode kMath = kMathV;
  static constexpr Form kForm = kFormV;
  static constexpr Act kAct = kActV;
  static constexpr bool kBiases = kBiasesV;
  static constexpr int kTileM = kTileMV;
  static constexpr int kTileN = kTileNV;
  static constexpr int kThreads = kThreadsV;
  static constexpr int kRanks = kRanksV;

  static constexpr bool kGated = kFormV == Form::gated;
  // Output columns of a GEMM0 tile: the gated form computes W1 and W3 halves side by side.
  static constexpr int kGemm0N = kGated ? kTileNV / 2 : kTileNV;
  static constexpr int kWarps = kThreadsV / 32;
  // Warpgroups per block: 1, or 2 on sm_90a where the two consumer warpgroups of a Processor share
  // one 128 × 256 tile's A stages (tile_gemm.cuh). The gate runs one 128-thread group per
  // warpgroup (gate.cuh).
  static constexpr int kWarpgroups = kThreadsV / 128;
  // A producer warpgroup (FLASHMOE_PRODUCER, producer.cuh): warpgroup 0 of a Processor block only
  // fills the operand stages, the others only compute; the gate runs on the computing ones.
#if defined(FLASHMOE_PRODUCER)
  static constexpr bool kProducer = true;
#else
  static constexpr bool kProducer = false;
#endif
  // The producer warpgroup's threads, all of which fill stages, and the registers per thread after
  // setmaxnreg: the producer's and the math warpgroups' (the rest of 3 × 168, the launch bound's
  // share).
  static constexpr int kProducerThreads = 128;
  static constexpr int kProducerRegisters = 40;
  static constexpr int kMathRegisters = (3 * 168 - kProducerRegisters) / 2 / 8 * 8;
  static constexpr int kMathThreads = kProducer ? kThreadsV - 128 : kThreadsV;
  // Combine in GEMM1's epilogue by reductions into the zeroed output: each result row, times its
  // pick's weight and rounded to the storage dtype, is added to its token's row with red.add, so
  // no Combine tasks run (thirteenth session: 8K 0.569-0.576 ms against 0.590-0.593, 4K 0.361
  // against 0.387). Only where that sum does not depend on the order the reductions land in
  // (k ≤ 2: a + b = b + a, and 0 + a is exact), on one GPU, for 16-bit storage on sm_90 (vector
  // reductions of packed pairs) with two computing warpgroups on 128 × 256 tiles (the epilogue's
  // rows by warp: processor.cuh, CombineRoute), and a producer warpgroup, whose threads zero the
  // output during the gate. Without one (the gated forms) the output is zeroed after the scan and
  // the gated SiLU layer at 8K took 0.897 ms against 0.874 with Combine tasks (call 6): opt-in
  // there, FLASHMOE_COMBINE_ATOMIC_TWO_WARPGROUPS. FLASHMOE_NVRTC_DEFINES=FLASHMOE_COMBINE_TASKS
  // gives Combine tasks back everywhere (one rounding of the fp32 sum instead of three:
  // docs/SEMANTICS.md).
#if defined(FLASHMOE_COMBINE_ATOMIC_TWO_WARPGROUPS)
  static constexpr bool kAtomicCombineWithoutProducer = true;
#else
  static constexpr bool kAtomicCombineWithoutProducer = false;
#endif
#if defined(FLASHMOE_COMBINE_TASKS) || !defined(__CUDA_ARCH__) || __CUDA_ARCH__ < 900
  static constexpr bool kAtomicCombine = false;
#else
  static constexpr bool kAtomicCombine = K <= 2 && kRanksV == 1 && kDTypeV != DType::fp32 && kTileNV == 256 &&
                                         kTileMV == 128 &&
                                         (kProducer ? kThreadsV == 384 : kAtomicCombineWithoutProducer && kThreadsV == 256);
#endif
  static constexpr int kMathWarpgroups = kMathThreads / 128;
  static constexpr int kMathOffset = kProducer ? 128 : 0;  // the first computing thread
  // Tokens per gate tile: the unit of the deterministic capacity scan (one chunk count per expert).
  static constexpr int kGateTokens = 32;
  // Experts whose logits one pass of the gate GEMM computes, rounded up to whole n8 tiles of the
  // tensor cores (gate.cuh): on FMA (fp32 storage) all of them up to 32, else equal passes of at
  // most 32; on the tensor cores all of them up to 128, so that each x chunk is staged once
  // (thirteenth session: at 16K tokens and E = 128 the gate took 160 µs in four passes of 32),
  // beyond 128 in passes of at most 64 (two passes of 128 spilled at E = 256).
  static constexpr int kGatePassMax = kDTypeV == DType::fp32 ? 32 : E <= 128 ? 128 : 64;
  static constexpr int kGatePasses = (E + kGatePassMax - 1) / kGatePassMax;
  static constexpr int kGateExpertsPerPass = ((E + kGatePasses - 1) / kGatePasses + 7) / 8 * 8;
  // K-chunk of the gate GEMM staged in shared memory (wide, so few load-then-sync rounds; the
  // fp32 gate takes a quarter of it from each quarter of H, gate.cuh). Passes of more than 32
  // experts take chunks of 64, so that two gate groups' four stages fit in a block.
  static constexpr int kGateK = H % 128 == 0 && kGateExpertsPerPass <= 32 ? 128 : 64;
  // Columns of the output a combine task produces.
  static constexpr int kCombineN = H % 256 == 0 ? 256 : H % 128 == 0 ? 128 : 64;
  // Pipeline depth of the tile GEMM: three 32 KB stages for a 128 × 128 tile (two blocks per SM),
  // four 48 KB stages for the two-warpgroup 128 × 256 tile (one block per SM, 192 KB).
#if defined(FLASHMOE_STAGES)
  static constexpr int kStages = FLASHMOE_STAGES;  // an experiment (FLASHMOE_NVRTC_DEFINES)
#else
  // With a producer warpgroup four stages too, next to a half tile for the epilogue of their own
  // (it stores in two passes), so that the producer can fill the next task's stages while the
  // epilogue runs. (Three stages and a whole tile: GEMM0's k loop 30 % longer, GEMM1's 13 %, tenth
  // session, BENCHMARKS.md: with the math warps releasing a stage one k tile late, three stages
  // let the producer run only two k tiles ahead.)
  static constexpr int kStages = kWarpgroups == 2 || kProducer ? 4 : 3;
#endif
};

}  // namespace flashmoe

// FlashMoE: the whole MoE layer forward pass as ONE persistent cooperative kernel (FlashDMoE,
// Algorithm 1). Every block first runs the fused gate; then N − 1 blocks become Processors and
// the last block is the OS block: warp 0 the Scheduler, warps 1–2 the Subscribers (the other
// warps have no role there).
//
// Read top-down: the static checks, the one shared-storage union, then the branch on role.
#pragma once
#include "spec.cuh"
#include "layout.cuh"
#include "storage.cuh"
#include "grid_barrier.cuh"
#include "gate.cuh"
#include "slots.cuh"
#include "tile_gemm.cuh"
#include "processor.cuh"
#include "subscriber.cuh"
#include "scheduler.cuh"
#include "transport.cuh"
#include "trace.cuh"

namespace flashmoe {

template <class S>
union SharedStorage {
  GateShared<S> gate[S::kMathWarpgroups];  // one per gate group (GateGroup)
  ProcessorShared<S> processor;
  OSShared<S> os;
};

template <class S>
__device__ __forceinline__ void forward(const Params& p) {
  static_assert(S::kHidden % S::kTileN == 0, "H must be a multiple of tileN (GEMM1 column tiles)");
  static_assert(S::kFFN % S::kGemm0N == 0, "D must be a multiple of GEMM0's column tile");
  static_assert(S::kHidden % S::kGateK == 0, "H must be a multiple of the gate's k chunk");
  static_assert(S::kTopK >= 1 && S::kTopK <= S::kExperts, "1 <= k <= E");
  static_assert(S::kThreads == 128 || S::kThreads == 256 || (S::kProducer && S::kThreads == 384),
                "one or two warpgroups, or a producer and two (the OS block uses warps 0–2)");
  static_assert(S::kRanks >= 1 && S::kExperts % S::kRanks == 0, "every GPU holds E / P experts");

  // 1024-byte alignment: wgmma's swizzled operand tiles (tile_gemm.cuh) start on 1024-byte boundaries.
  extern __shared__ __align__(1024) unsigned char smem[];
  auto& shared = *reinterpret_cast<SharedStorage<S>*>(smem);
  __shared__ int rowBase[S::kExperts + 1];
  __shared__ bool blockOk;
  __shared__ Task current;

  if (threadIdx.x == 0) {
    trace_first(p, kTraceStart);
    trace_last(p, kTraceLastStart);
  }
  if (blockIdx.x == 0 && threadIdx.x == 0) Watchdog{p}.stall_if(kRoleGate);
  reset_counters<S>(p);
  // The gate runs on the computing warpgroups (with a producer warpgroup, the first two).
  if constexpr (S::kProducer) {
    if (threadIdx.x < S::kMathThreads) gate_tiles<S>(p, shared.gate[threadIdx.x / 128]);
    else if constexpr (S::kAtomicCombine && !kZeroLate<S>)
      zero_output<S>(p, threadIdx.x - S::kMathThreads, S::kThreads - S::kMathThreads, blockIdx.x, gridDim.x);
  } else {
    gate_tiles<S>(p, shared.gate[threadIdx.x / 128]);
  }
#if defined(FLASHMOE_EXP_GATE_ONLY)
  // A profiling experiment (no results on purpose): the kernel ends after the gate's tiles, so that
  // ncu's counters and stall reasons describe the gate GEMM alone.
  if (threadIdx.y == 0) return;
#endif
  if (!grid_barrier(p, kPhaseGate, &blockOk)) return;
  gate_scan<S>(p);
  // Without a producer warpgroup the output is zeroed here, where most blocks wait on the few
  // that scan (with one, by the producer warpgroups: slots.cuh, kZeroLate).
  if constexpr (S::kAtomicCombine && !S::kProducer) zero_output<S>(p, threadIdx.x, S::kThreads, blockIdx.x, gridDim.x);
  if (!grid_barrier(p, kPhaseScan, &blockOk)) return;
  row_bases<S>(p, rowBase);
  // One GPU: every task follows from the row bases, so the OS block takes no share of the slots
  // and does not wait for them: its Scheduler hands the first tasks out while the others write
  // the slots (at 8K the first task started 2.5 µs earlier; fourteenth session). The Processors
  // read their tasks only past the slots' barrier; a GEMM1 task's reads of the slots' tables
  // follow a GEMM0 task's signal. FLASHMOE_OS_AFTER_SLOTS restores the OS block's wait (for A/B).
#if defined(FLASHMOE_OS_AFTER_SLOTS)
  constexpr bool kOSEarly = false;
#else
  constexpr bool kOSEarly = S::kRanks == 1;
#endif
  const bool osBlock = blockIdx.x + 1 == gridDim.x;
  if (!(kOSEarly && osBlock)) gate_slots<S>(p, rowBase, kOSEarly ? gridDim.x - 1 : gridDim.x);
  if (!grid_barrier(p, kPhaseSlots, &blockOk, !(kOSEarly && osBlock))) return;
  if constexpr (S::kRanks > 1) dispatch<S>(p);

  if (blockIdx.x + 1 < gridDim.x) {
    if constexpr (S::kProducer) processor_with_producer<S>(p, shared.processor);
    else processor<S>(p, shared.processor, &current);
  } else {
    // OS block: after OSShared come the Scheduler's per-Processor assignment counts and its
    // per-row-tile release flags (sized by the host: see flashmoe_layout).
    int* assigned = reinterpret_cast<int*>(smem + sizeof(OSShared<S>));
    unsigned char* released = reinterpret_cast<unsigned char*>(assigned + p.processors);
    if (threadIdx.x == 0) {
      shared.os.published = 0;
      shared.os.arrived = 0;
      shared.os.combineReady = 0;
      if constexpr (S::kRanks == 1) publish_local_counts<S>(p, shared.os, rowBase);
    }
    for (int c = threadIdx.x; c < S::kExperts; c += S::kThreads) shared.os.cellCount[c] = -1;
    __syncthreads();
    if ((threadIdx.x >> 5) == 0) scheduler<S>(p, shared.os, assigned, released);
    else subscriber<S>(p, shared.os, rowBase);
  }
  if ((threadIdx.x & 31) == 0) trace_last(p, kTraceEnd);
}

}  // namespace flashmoe

// Sizes the host needs (read with cuModuleGetGlobal): shared storage, the OS block's fixed part,
// and the struct sizes a test compares with Swift's layout.
#define FLASHMOE_LAYOUT(S)                                                                      \
  extern "C" __device__ const unsigned long long flashmoe_layout[6] = {                         \
      sizeof(flashmoe::SharedStorage<S>), sizeof(flashmoe::OSShared<S>), sizeof(flashmoe::Params), \
      sizeof(flashmoe::MailboxSlot), sizeof(flashmoe::ErrorRecord), (unsigned long long)flashmoe::kMailboxDepth};

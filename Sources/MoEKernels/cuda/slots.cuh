// Where each kept pair's row goes, once the gate's capacity scan has given every pair its slot
// (token-major order, gate.cuh), and the per-forward counters the actors share.
#pragma once
#include "storage.cuh"
#include "layout.cuh"
#include "remote.cuh"

namespace flashmoe {

// With the atomic combine and a producer warpgroup, the producer warpgroups zero the output after
// the slots, before their first task, not during the gate, where the 32 MB of stores held the
// gate's loads back 6.5 µs at 8K (FLASHMOE_EXP_SKIP_ZERO); the Scheduler hands out no GEMM1 task
// before every Processor has counted its share (counters[kSharesZeroed]). On an H200 (fifteenth
// session, calls 5–7): 16K 6 % faster, experts 8 / 32 / 128 at 16K faster in five pairs of six,
// 8K 1.4 % faster on average over six pairs (three faster, one equal, two slower), 4K the same.
// FLASHMOE_ZERO_EARLY restores the zeroing during the gate (for A/B), and so do the builds with
// one epilogue for both computing warpgroups (FLASHMOE_WG_TOGETHER, FLASHMOE_COMBINE_BULK:
// processor.cuh's kWarpgroupsApart), which spilled 20 bytes at H = D = 2048 with the zeroing here.
#if defined(FLASHMOE_ZERO_EARLY) || defined(FLASHMOE_WG_TOGETHER) || defined(FLASHMOE_COMBINE_BULK)
template <class S>
constexpr bool kZeroLate = false;
#else
template <class S>
constexpr bool kZeroLate = S::kAtomicCombine && S::kProducer;
#endif

// Before the first grid barrier: zero this forward's counters. Nothing of this forward can touch
// them yet (Processors start after the barriers; a peer sends results only for rows this GPU
// dispatched, after the barriers), and the previous forward ended with the previous kernel.
template <class S>
__device__ void reset_counters(const Params& p) {
  const int stride = gridDim.x * S::kThreads, first = blockIdx.x * S::kThreads + threadIdx.x;
  const int rowTiles = p.maxRows / S::kTileM;
  for (int rt = first; rt < rowTiles; rt += stride) p.rowDone[rt] = 0;
  if (first == 0) p.counters[kGemm1Done] = 0;
  if constexpr (kZeroLate<S>) if (first == 0) p.counters[kSharesZeroed] = 0;
  if constexpr (S::kRanks > 1) {
    const int counters = S::kExperts * (p.cellRows / S::kTileM);
    unsigned* combineCount = p.peers[p.rank].combineCount;
    for (int i = first; i < counters; i += stride) combineCount[i] = 0;
    if constexpr (remote::kPut)
      for (int i = first; i < counters; i += stride) p.combineArrive[i] = 0;
    for (int e = first; e < S::kExperts; e += stride) p.dispatchSent[e] = 0;
  }
}

// Atomic combine (Spec::kAtomicCombine): GEMM1's epilogues add into the output, so it starts at
// zero. With a producer warpgroup the producers store the zeros before their first task
// (kZeroLate, processor.cuh's zero_share; FLASHMOE_ZERO_EARLY: while the computing warpgroups run
// the gate); without one, every thread does after the scan, and the barriers order these stores
// before any GEMM1 task is handed out. `thread` counts from 0 in each block, `threads` per block;
// `block` of `blocks` share the rows.
template <class S>
__device__ void zero_output(const Params& p, int thread, int threads, unsigned block, unsigned blocks) {
#if defined(FLASHMOE_EXP_SKIP_ZERO)
  // A timing experiment (wrong results on purpose): what the zeroing costs the gate's phase.
  return;
#endif
  using T = typename Storage<S::kDType>::T;
  static_assert(S::kHidden * sizeof(T) % 16 == 0, "whole 16-byte chunks per token row");
  uint4* out = static_cast<uint4*>(p.out);
  const size_t chunks = (size_t)p.tokens * S::kHidden * sizeof(T) / 16;
  for (size_t i = (size_t)block * threads + thread; i < chunks; i += (size_t)blocks * threads)
    out[i] = make_uint4(0u, 0u, 0u, 0u);
}

// Row layout of the grouped buffers (one GPU): expert e owns rows [rowBase[e], rowBase[e+1]),
// padded to the tile height so that a row tile never spans two experts (in-place padding, §3.2.1).
template <class S>
__device__ void row_bases(const Params& p, int* rowBase) {
  if (threadIdx.x == 0) {
    int r = 0;
    for (int e = 0; e < S::kExperts; ++e) {
      rowBase[e] = r;
      r += (__ldcg(&p.expertCount[e]) + S::kTileM - 1) / S::kTileM * S::kTileM;
    }
    rowBase[S::kExperts] = r;
  }
  __syncthreads();
}

// Every pair's slot and row; on one GPU the padding rows are marked and each row tile's expert
// recorded, with peers this GPU's own cells get their token map.
// `blocks`: the first `blocks` blocks share the work (on one GPU all but the OS block).
template <class S>
__device__ void gate_slots(const Params& p, const int* rowBase, int blocks) {
  constexpr int E = S::kExperts, K = S::kTopK, TM = S::kTileM, EL = E / S::kRanks;
  const int pairs = p.tokens * K;
  const int stride = blocks * S::kThreads;
  for (int q = blockIdx.x * S::kThreads + threadIdx.x; q < pairs; q += stride) {
    const int e = __ldcg(&p.pairExpert[q]);
    const int tile = (q / K) / S::kGateTokens;
    const int slot = __ldcg(&p.chunkOffset[tile * E + e]) + __ldcg(&p.pairRank[q]);
    if (slot >= p.capacity) {
      p.pairRow[q] = -1;
      continue;
    }
    if constexpr (S::kRanks > 1) {
      // The destination index e · C' + slot: the owner's incoming row on the way out and this
      // GPU's combine row on the way back (MemoryPlan.destinationIndex). For this GPU's own
      // experts it is also the row of its cell (p = rank), whose tokens GEMM0 reads from x.
      const int row = e * p.cellRows + slot;
      p.pairRow[q] = row;
#if defined(FLASHMOE_DISPATCH_BY_CELL)
      p.rowToken[row] = q / K;  // remote experts' rows too: dispatch walks them cell by cell
#else
      if (e / EL == p.rank) p.rowToken[row] = q / K;
#endif
    } else {
      const int row = rowBase[e] + slot;
      p.pairRow[q] = row;
      p.rowToken[row] = q / K;
      if constexpr (S::kAtomicCombine) p.rowWeight[row] = __ldcg(&p.pairWeight[q]);
    }
  }
  if constexpr (S::kRanks == 1) {
    for (int e = blockIdx.x; e < E; e += blocks) {
      for (int r = rowBase[e] + __ldcg(&p.expertCount[e]) + threadIdx.x; r < rowBase[e + 1]; r += S::kThreads) p.rowToken[r] = -1;
      for (int rt = rowBase[e] / TM + threadIdx.x; rt < rowBase[e + 1] / TM; rt += S::kThreads) p.rowTileExpert[rt] = e;
    }
  }
}

}  // namespace flashmoe

// Transport between GPUs (expert parallelism, §3.2): device-initiated one-sided stores into the
// peers' symmetric buffers over NVLink, each followed by a release signal. Indexing follows
// Definition C.2: a source g writes only cells L[target][p = g, ·, b = 1, ·, ·], so no two GPUs ever
// write the same cell (Theorem 3.1; MoECore.SymmetricWrites enumerates and checks every write).
#pragma once
#include "storage.cuh"
#include "layout.cuh"
#include "ptx.cuh"

namespace flashmoe {

// Dispatch: every kept pair's token row goes straight into its owner's incoming cell
// L[o][p = rank, r = 0, b = 1, e_l, slot]. Only real rows cross the link (payload efficiency); the
// receiver zero-pads its tiles itself. One warp per row, 16 bytes per lane per step.
template <class S>
__device__ void dispatch_rows(const Params& p) {
  using T = typename Storage<S::kDType>::T;
  constexpr int H = S::kHidden, K = S::kTopK, EL = S::kExperts / S::kRanks;
  constexpr int kVec = 16 / sizeof(T);
  const int lane = threadIdx.x & 31;
  const int warps = gridDim.x * S::kWarps;
  const int pairs = p.tokens * K;
  const T* x = static_cast<const T*>(p.x);
  for (int q = blockIdx.x * S::kWarps + (threadIdx.x >> 5); q < pairs; q += warps) {
    const int row = __ldcg(&p.pairRow[q]);
    if (row < 0) continue;
    const int e = row / p.cellRows, slot = row % p.cellRows;
    const int owner = e / EL, local = e % EL;
    T* dst = static_cast<T*>(p.peers[owner].dispatchIn) + ((size_t)(p.rank * EL + local) * p.cellRows + slot) * H;
    const T* src = x + (size_t)(q / K) * H;
    for (int c = lane * kVec; c < H; c += 32 * kVec)
      *reinterpret_cast<uint4*>(dst + c) = __ldcg(reinterpret_cast<const uint4*>(src + c));
  }
  __threadfence_system();
}

// After every block's rows are out (grid barrier): one signal per (owner, local expert) carrying the
// row count, also for 0 rows, so each receiver learns its exact task count (SelfCorrectTaskBound).
template <class S>
__device__ void dispatch_signals(const Params& p) {
  constexpr int EL = S::kExperts / S::kRanks;
  if (blockIdx.x != 0) return;
  __threadfence_system();
  for (int e = threadIdx.x; e < S::kExperts; e += S::kThreads) {
    const unsigned rows = (unsigned)__ldcg(&p.expertCount[e]);
    ptx::st_release_sys(&p.peers[e / EL].dispatchSignal[p.rank * EL + e % EL], ((unsigned long long)p.epoch << 32) | rows);
  }
}

}  // namespace flashmoe

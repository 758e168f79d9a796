// Transport between GPUs (expert parallelism, §3.2): device-initiated one-sided stores into the
// peers' symmetric buffers over NVLink, each cell closed by a release signal. Indexing follows
// Definition C.2: a source g writes only cells L[target][p = g, ·, b = 1, ·, ·], so no two GPUs ever
// write the same cell (Theorem 3.1; MoECore.SymmetricWrites enumerates and checks every write).
#pragma once
#include "storage.cuh"
#include "layout.cuh"
#include "ptx.cuh"
#include "trace.cuh"
#include "remote.cuh"

namespace flashmoe {

// Runs after the slots barrier, so every pair's row is known and nothing waits for the whole grid.
// - This GPU's own cells never travel: their rows stay in x, GEMM0 gathers them through rowToken,
//   and the Subscriber publishes them without a signal. Block 0 signals every empty cell at once.
// - The other cells' real rows (payload efficiency: no padding crosses the link) are stored into
//   their owner's incoming cell L[o][p = rank, r = 0, b = 1, e_l, slot] by p.dispatchers blocks
//   just below the OS block, while the others start on the local cells' GEMM0: the NVLink traffic
//   overlaps with compute (the paper's Figure 13). A few blocks already fill the link.
// - Each (owner, local expert) cell is closed by whichever warp stores its last row: a counter
//   per expert, then a release signal carrying the row count (SelfCorrectTaskBound's input).
// One warp sends one row (H elements of this GPU's tokens) to its row of a peer's incoming cell;
// the put transport counts it on arrival.
template <class S, class T>
__device__ __forceinline__ void send_row(const Params& p, T* dst, const T* src, int expert) {
  constexpr int H = S::kHidden, EL = S::kExperts / S::kRanks;
#if defined(FLASHMOE_TRANSPORT_NVSHMEM)
  // x is on the symmetric heap in this mode (a put's source must be, for remote transports).
  remote::put_counted_warp(dst, src, H * sizeof(T), &p.dispatchArrive[p.rank * EL + expert % EL], expert / EL);
#else
  (void)p;
  (void)expert;
  constexpr int kVec = 16 / sizeof(T), kStep = 32 * kVec, kUnroll = 4;
  for (int c0 = (threadIdx.x & 31) * kVec; c0 < H; c0 += kStep * kUnroll) {
    uint4 v[kUnroll];
#pragma unroll
    for (int u = 0; u < kUnroll; ++u)
      if (c0 + u * kStep < H) v[u] = __ldcg(reinterpret_cast<const uint4*>(src + c0 + u * kStep));
#pragma unroll
    for (int u = 0; u < kUnroll; ++u)
      if (c0 + u * kStep < H) *reinterpret_cast<uint4*>(dst + c0 + u * kStep) = v[u];
  }
#endif
}

// After a warp has sent its rows (each lane's `remote` row of expert `e`): every store is out
// before the counts move (fence, then the warp meets); one atomic per distinct expert, and the
// warp that completes an expert's rows closes its cell with a release signal carrying the count.
template <class S>
__device__ __forceinline__ void close_cells(const Params& p, bool remote, int e, unsigned long long tag) {
  constexpr int EL = S::kExperts / S::kRanks;
  const int lane = threadIdx.x & 31;
  __threadfence_system();
  __syncwarp();
  const unsigned same = __match_any_sync(0xffffffffu, remote ? e : -1 - lane);
  if (remote && (same & ((1u << lane) - 1u)) == 0) {
    const unsigned n = __popc(same);
    const unsigned before = atomicAdd(&p.dispatchSent[e], n);
    const unsigned rows = (unsigned)__ldcg(&p.expertCount[e]);
    if (before + n == rows) {
      __threadfence_system();
      remote::signal_cell(&p.peers[e / EL].dispatchSignal[p.rank * EL + e % EL], tag | rows, e / EL);
    }
  }
}

template <class S>
__device__ void dispatch(const Params& p) {
  using T = typename Storage<S::kDType>::T;
  constexpr int H = S::kHidden, E = S::kExperts, EL = E / S::kRanks;
  const unsigned long long tag = (unsigned long long)p.epoch << 32;
  if (blockIdx.x == 0) {
    for (int e = threadIdx.x; e < E; e += S::kThreads) {
      const unsigned rows = (unsigned)__ldcg(&p.expertCount[e]);
      if (e / EL != p.rank && rows == 0)
        remote::signal_cell(&p.peers[e / EL].dispatchSignal[p.rank * EL + e % EL], tag | rows, e / EL);
    }
  }
  const int first = gridDim.x - 1 - p.dispatchers;  // the OS block (the last) never dispatches
  if ((int)blockIdx.x < first || blockIdx.x + 1 == gridDim.x) return;
  const int lane = threadIdx.x & 31;
  const int warp = (blockIdx.x - first) * S::kWarps + (threadIdx.x >> 5);
  const int warps = p.dispatchers * S::kWarps;
  // tf32 on wgmma: the rounded copy, so that the peer's GEMM0 rounds nothing either.
  const T* x = static_cast<const T*>(kRoundedTokens<S> ? p.xRounded : p.x);
#if defined(FLASHMOE_DISPATCH_BY_CELL)
  // Cell order (opt-in, FLASHMOE_DISPATCH_ORDER=cell): the rows of every remote expert, expert by
  // expert, 32 consecutive rows per warp and chunk, chunks dealt round-robin, so a peer's cells
  // complete one after another and its GEMM0 can start on the first while the others travel. In
  // token order every cell completed at the end of dispatch (2-GPU trace, 8K tokens: all cells
  // within 3 µs of the last row). gate_slots wrote every kept pair's token at its row.
  int cursorExpert = 0, cursorBase = 0;  // the first remote expert whose rows reach this chunk
  for (int chunk = warp;; chunk += warps) {
    const int r = chunk * 32 + lane;
    // Advance the warp's cursor to the expert holding the chunk's first row, then each lane from
    // there to its own row's expert (a chunk spans at most 32 rows, so a few experts).
    while (cursorExpert < E) {
      const int n = cursorExpert / EL == p.rank ? 0 : __ldcg(&p.expertCount[cursorExpert]);
      if (chunk * 32 < cursorBase + n) break;
      cursorBase += n;
      ++cursorExpert;
    }
    if (cursorExpert == E) break;
    int e = cursorExpert, base = cursorBase;
    while (e < E) {
      const int n = e / EL == p.rank ? 0 : __ldcg(&p.expertCount[e]);
      if (r < base + n) break;
      base += n;
      ++e;
    }
    const bool remote = e < E;
    const int slot = r - base;
    for (unsigned todo = __ballot_sync(0xffffffffu, remote); todo; todo &= todo - 1) {
      const int j = __ffs(todo) - 1;
      const int ej = __shfl_sync(0xffffffffu, e, j), sj = __shfl_sync(0xffffffffu, slot, j);
      T* dst = static_cast<T*>(p.peers[ej / EL].dispatchIn) + ((size_t)(p.rank * EL + ej % EL) * p.cellRows + sj) * H;
      send_row<S>(p, dst, x + (size_t)__ldcg(&p.rowToken[ej * p.cellRows + sj]) * H, ej);
    }
    close_cells<S>(p, remote, e, tag);
  }
#else
  constexpr int K = S::kTopK;
  const int pairs = p.tokens * K;
  for (int q0 = warp * 32; q0 < pairs; q0 += warps * 32) {
    const int q = q0 + lane;
    const int row = q < pairs ? __ldcg(&p.pairRow[q]) : -1;
    const int e = row >= 0 ? row / p.cellRows : -1;
    const bool remote = e >= 0 && e / EL != p.rank;
    unsigned todo = __ballot_sync(0xffffffffu, remote);
    if (!todo) continue;
    for (; todo; todo &= todo - 1) {
      const int j = __ffs(todo) - 1;
      const int rj = __shfl_sync(0xffffffffu, row, j);
      const int ej = rj / p.cellRows;
      T* dst = static_cast<T*>(p.peers[ej / EL].dispatchIn) + ((size_t)(p.rank * EL + ej % EL) * p.cellRows + rj % p.cellRows) * H;
      send_row<S>(p, dst, x + (size_t)((q0 + j) / K) * H, ej);
    }
    close_cells<S>(p, remote, e, tag);
  }
#endif
  if ((threadIdx.x & 31) == 0) trace_last(p, kTraceDispatch);  // every warp: the last one to finish
}

}  // namespace flashmoe

// The Subscriber actor (Algorithm 4), three warps of the OS block. It decodes what arrived into
// task descriptors and tells the Scheduler how many tasks exist (the task bound). On one GPU every
// token tile is already local once the gate's slots are known, so decoding is the count of GEMM0,
// GEMM1 and Combine tiles; the expert-parallel build adds the dispatch/combine signal sweeps here.
#pragma once
#include "layout.cuh"
#include "watchdog.cuh"
#include "trace.cuh"

namespace flashmoe {

// Subscriber → Scheduler, through shared memory.
template <class S>
struct OSShared {
  volatile int published;
  int rowTiles;
  int gemm0PerRow, gemm1PerRow, combinePerRow;
  int gemm0Total, gemm1Total, combineTotal;
  // GEMM0 tasks run expert by expert, column tile by column tile, row tiles innermost, so that a
  // slice of W1 is read from memory once and reused from L2 by every row tile of its expert.
  int firstRowTile[S::kExperts + 1];  // expert e owns row tiles [firstRowTile[e], firstRowTile[e+1])
  int gemm0Base[S::kExperts + 1];     // GEMM0 tasks of experts (P > 1: of arrivals) before this one
  // Expert parallelism: cells (source · E_local + local expert) in arrival order, their row counts
  // (−1 until arrived), and whether every result of this GPU's tokens is home.
  volatile int arrived;
  volatile int combineReady;
  int arrivedCell[S::kExperts];
  volatile int cellCount[S::kExperts];
};

// Expert parallelism, warp 1: sweep the dispatch signals of every (source, local expert) cell and
// publish arrivals to the Scheduler (Algorithm 4, dispatch flags). This GPU's own cells need no
// signal: their rows stay in x and the slots barrier already made their token map visible, so
// they are published first, at once (the Scheduler counts on own cells being arrivals 0 ..< E_l).
template <class S>
__device__ void subscribe_dispatch(const Params& p, OSShared<S>& os) {
  constexpr int kCells = S::kExperts;  // P · E_local
  constexpr int EL = S::kExperts / S::kRanks;
  const int lane = threadIdx.x & 31;
  const Watchdog dog{p};
  const unsigned long long* signal = p.peers[p.rank].dispatchSignal;
  if (lane == 0) dog.stall_if(kRoleSubscriber);
  __syncwarp();
  for (int i = lane; i < EL; i += 32) {
    const int c = p.rank * EL + i;  // cell (source = rank, i) holds expert rank · E_l + i = c
    os.cellCount[c] = __ldcg(&p.expertCount[c]);
    os.arrivedCell[i] = c;
  }
  __syncwarp();
  __threadfence_block();
  if (lane == 0) os.arrived = EL;
  __syncwarp();
  unsigned long long last = ptx::globaltimer();
  for (unsigned spin = 0;; ++spin) {
    int arrivedNow = 0;
    for (int base = 0; base < kCells; base += 32) {
      const int c = base + lane;
      bool got = false;
      unsigned rows = 0;
      if (c < kCells && os.cellCount[c] < 0) {
        const unsigned long long v = ptx::ld_acquire_sys(&signal[c]);
        got = (unsigned)(v >> 32) == p.epoch;
        rows = (unsigned)v;
        if constexpr (remote::kPut) {
          // Rows come by put-with-signal: the cell is in once all of them have been counted. The
          // count starts again from zero for the next forward, whose puts follow the host's barrier.
          if (got && ptx::ld_acquire_sys(&p.dispatchArrive[c]) < rows) got = false;
          if (got) p.dispatchArrive[c] = 0;
        }
      }
      const unsigned m = __ballot_sync(0xffffffffu, got);
      if (got) {
        if (c / (kCells / S::kRanks) != p.rank) trace_first(p, kTraceFirstRemote);
        os.cellCount[c] = (int)rows;
        os.arrivedCell[os.arrived + __popc(m & ((1u << lane) - 1u))] = c;
      }
      __syncwarp();
      __threadfence_block();
      if (lane == 0 && m) os.arrived = os.arrived + __popc(m);
      __syncwarp();
      arrivedNow += __popc(m);
    }
    if (os.arrived == kCells) {
      if (lane == 0) trace_last(p, kTraceCellsIn);
      return;
    }
    const unsigned long long now = ptx::globaltimer();
    if (arrivedNow) last = now;
    else {
      if (dog.aborted()) return;
      if (now - last > p.timeoutNs) {
        if (lane == 0) dog.fail(kRoleSubscriber, kPhaseDispatch, kCells, (unsigned long long)os.arrived, now - last);
        return;
      }
      __nanosleep(100);
    }
  }
}

// Expert parallelism, warp 2: count the result tiles owners sent back for this GPU's tokens; when
// every expected tile is home, open Combine (Algorithm 4, combine flags).
template <class S>
__device__ void subscribe_combine(const Params& p, OSShared<S>& os) {
  const int lane = threadIdx.x & 31;
  const Watchdog dog{p};
  const int tiles = p.cellRows / S::kTileM, perTile = S::kHidden / S::kTileN;
  const unsigned* count = p.peers[p.rank].combineCount;
  // The bound runs from the last result that came home, not from the start: the whole expert
  // computation happens while this warp waits.
  unsigned long long last = ptx::globaltimer(), seen = 0;
  for (;;) {
    bool all = true;
    unsigned long long done = 0;
    for (int i = lane; i < S::kExperts * tiles; i += 32) {
      const int e = i / tiles, t = i % tiles;
      const int rows = __ldcg(&p.expertCount[e]);
      if (t * S::kTileM >= rows) continue;
      if constexpr (remote::kPut) {
        if (e / (S::kExperts / S::kRanks) != p.rank) {
          // A peer's results come row by row (put-with-signal): rows of this tile × column tiles.
          const unsigned long long want = (unsigned long long)min(S::kTileM, rows - t * S::kTileM) * perTile;
          const unsigned long long c = ptx::ld_acquire_sys(&p.combineArrive[i]);
          all &= c == want;
          done += c;
          continue;
        }
      }
      const unsigned c = ptx::ld_acquire_sys(&count[i]);
      all &= c == (unsigned)perTile;
      done += c;
    }
    if (__all_sync(0xffffffffu, all)) {
      __threadfence_block();
      if (lane == 0) {
        os.combineReady = 1;
        trace_last(p, kTraceResultsIn);
      }
      return;
    }
    for (int o = 16; o; o >>= 1) done += __shfl_xor_sync(0xffffffffu, done, o);
    if (dog.aborted()) return;
    const unsigned long long now = ptx::globaltimer();
    if (done != seen) {
      seen = done;
      last = now;
    } else if (now - last > p.timeoutNs) {
      if (lane == 0) dog.fail(kRoleSubscriber, kPhaseCombine, 0, done, now - last);
      return;
    }
    __nanosleep(200);
  }
}

template <class S>
__device__ void subscriber(const Params& p, OSShared<S>& os, const int* rowBase) {
  const int warp = threadIdx.x >> 5, lane = threadIdx.x & 31;
  if constexpr (S::kRanks > 1) {
    if (warp == 1 && lane == 0) {
      os.gemm0PerRow = S::kFFN / S::kGemm0N;
      os.gemm1PerRow = S::kHidden / S::kTileN;
      os.combinePerRow = (S::kHidden + S::kCombineN - 1) / S::kCombineN;
      os.combineTotal = (p.tokens + S::kTileM - 1) / S::kTileM * os.combinePerRow;
      __threadfence_block();
      os.published = 1;
    }
    __syncwarp();
    if (warp == 1) subscribe_dispatch<S>(p, os);
    else if (warp == 2) subscribe_combine<S>(p, os);
    return;
  }
  // One GPU: the counts were published before the OS block's barrier (publish_local_counts).
  if (warp == 1 && lane == 0) Watchdog{p}.stall_if(kRoleSubscriber);
}

// One GPU: every task count follows from the gate's row bases, which every block holds once the
// slots barrier has passed, so the Subscriber's decoding is done by one thread before the OS
// block's __syncthreads: the Scheduler reads the counts behind a barrier, not a flag (what
// compute-sanitizer's racecheck can see; with the flag it reported 7 false hazards).
template <class S>
__device__ void publish_local_counts(const Params& p, OSShared<S>& os, const int* rowBase) {
  const int rowTiles = rowBase[S::kExperts] / S::kTileM;
  os.rowTiles = rowTiles;
  os.gemm0PerRow = S::kFFN / S::kGemm0N;
  os.gemm1PerRow = S::kHidden / S::kTileN;
  os.combinePerRow = (S::kHidden + S::kCombineN - 1) / S::kCombineN;
  os.gemm0Total = rowTiles * os.gemm0PerRow;
  os.gemm1Total = rowTiles * os.gemm1PerRow;
  // Atomic combine: GEMM1's epilogues combine, so there are no Combine tasks.
  os.combineTotal = S::kAtomicCombine ? 0 : (p.tokens + S::kTileM - 1) / S::kTileM * os.combinePerRow;
  for (int e = 0; e <= S::kExperts; ++e) {
    os.firstRowTile[e] = rowBase[e] / S::kTileM;
    os.gemm0Base[e] = os.firstRowTile[e] * os.gemm0PerRow;
  }
  os.published = 1;
}

}  // namespace flashmoe

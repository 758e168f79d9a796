// The Subscriber actor (Algorithm 4), three warps of the OS block. It decodes what arrived into
// task descriptors and tells the Scheduler how many tasks exist (the task bound). On one GPU every
// token tile is already local once the gate's slots are known, so decoding is the count of GEMM0,
// GEMM1 and Combine tiles; the expert-parallel build adds the dispatch/combine signal sweeps here.
#pragma once
#include "layout.cuh"

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
  int gemm0Base[S::kExperts + 1];     // GEMM0 tasks of experts before e
};

template <class S>
__device__ void subscriber(const Params& p, OSShared<S>& os, const int* rowBase) {
  const int warp = threadIdx.x >> 5, lane = threadIdx.x & 31;
  if (warp != 1 || lane != 0) return;
  const int rowTiles = rowBase[S::kExperts] / S::kTileM;
  os.rowTiles = rowTiles;
  os.gemm0PerRow = S::kFFN / S::kGemm0N;
  os.gemm1PerRow = S::kHidden / S::kTileN;
  os.combinePerRow = (S::kHidden + S::kCombineN - 1) / S::kCombineN;
  os.gemm0Total = rowTiles * os.gemm0PerRow;
  os.gemm1Total = rowTiles * os.gemm1PerRow;
  os.combineTotal = (p.tokens + S::kTileM - 1) / S::kTileM * os.combinePerRow;
  for (int e = 0; e <= S::kExperts; ++e) {
    os.firstRowTile[e] = rowBase[e] / S::kTileM;
    os.gemm0Base[e] = os.firstRowTile[e] * os.gemm0PerRow;
  }
  __threadfence_block();
  os.published = 1;
}

}  // namespace flashmoe
